/**
 * Types of `@std/cli/parse-args` (Deno std 1.x), for its untyped copy in the npm package
 * `deno-std`. Kept free of type parameters: callers narrow the values they read.
 *
 * @module
 */

/** Options of {@linkcode parseArgs}. */
export interface ParseOptions {
  /**
   * When true, the arguments after `--` go to `"--"` of the result instead of `_`.
   *
   * @default {false}
   */
  "--"?: boolean;
  /** Other names of an option: `{ h: "help" }` makes `-h` set `help` too. */
  alias?: Record<string, string | readonly string[]>;
  /** Options that are booleans; `true` treats every `--flag` without a value as one. */
  boolean?: boolean | string | readonly string[];
  /** Values of the options that the arguments do not set. */
  default?: Record<string, unknown>;
  /**
   * When true, everything after the first positional argument goes to `_`.
   *
   * @default {false}
   */
  stopEarly?: boolean;
  /** Options that are always strings, even when they look like numbers. */
  string?: string | readonly string[];
  /** Options that may repeat; their values are collected into an array. */
  collect?: string | readonly string[];
  /** Options that `--no-<name>` sets to false. */
  negatable?: string | readonly string[];
  /**
   * Called with each argument that no option names; returning false leaves it out of the result.
   */
  unknown?: (arg: string, key?: string, value?: unknown) => unknown;
}

/** The result of {@linkcode parseArgs}. */
export interface Args {
  /** The positional arguments. */
  _: Array<string | number>;
  /** The arguments after `--`, when the `"--"` option is set. */
  "--"?: string[];
  /** The options, by name. */
  [key: string]: unknown;
}

/**
 * Parses command line arguments into an object of options and an array of positional arguments.
 *
 * @param args The arguments, without the program name (`Deno.args`, `process.argv.slice(2)`).
 * @param options How to read them.
 * @returns The options by name, and the positional arguments in `_`.
 */
export declare function parseArgs(args: string[], options?: ParseOptions): Args;
