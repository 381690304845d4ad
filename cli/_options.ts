/**
 * The options of the `multiproc` commands: how each is declared, parsed, checked and shown in the
 * usage text. `demo` and every `bench` subcommand declare theirs the same way.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A command-line mistake: the CLI prints it with the usage and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** One option of a command. */
export interface OptionSpec {
  /** The long name, without the dashes. */
  name: string;
  /** What the value stands for in the usage (`N`, `FILE`); a flag without a value has none. */
  placeholder?: string;
  /** One line for the usage. */
  description: string;
  /** The value when the option is not given, as it would be typed; flags default to false. */
  default?: string;
  /** Turns the typed value into a setting; throws a {@linkcode UsageError} for a bad one. */
  parse?: (text: string) => unknown;
}

/** The parsed settings of a command, by option name. */
export type Settings = Record<string, unknown>;

/** The outcome of {@linkcode parseOptions}. */
export type ParsedOptions =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; settings: Settings; positional: string[] };

/**
 * Parses `args` against `specs`, with `-h/--help` and `-V/--version` besides.
 *
 * @throws {UsageError} For an unknown option or a value that its `parse` refuses.
 */
export function parseOptions(args: string[], specs: readonly OptionSpec[]): ParsedOptions {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean", short: "V" },
  };
  for (const spec of specs) {
    options[spec.name] = { type: spec.placeholder === undefined ? "boolean" : "string" };
  }
  // Not strict: unknown options and missing values are reported here, in the command's words.
  const { tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const given = new Map<string, string | true>();
  const positional: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      positional.push(token.value);
    } else if (token.kind === "option") {
      if (!Object.hasOwn(options, token.name)) {
        throw new UsageError(`Unknown option '${token.rawName}'`);
      }
      given.set(token.name, options[token.name].type === "string" ? token.value ?? "" : true);
    }
  }
  if (given.has("help")) return { kind: "help" };
  if (given.has("version")) return { kind: "version" };
  const settings: Settings = {};
  for (const spec of specs) {
    const value = given.get(spec.name);
    if (spec.placeholder === undefined) {
      settings[spec.name] = value === true;
      continue;
    }
    // A repeated option: the last one wins, as in most commands.
    const text = typeof value === "string" ? value : spec.default;
    settings[spec.name] = text === undefined ? undefined : spec.parse ? spec.parse(text) : text;
  }
  return { kind: "run", settings, positional };
}

/** The usage lines of `specs`, aligned: `  --name VALUE   Description (default …)`. */
export function formatOptions(specs: readonly OptionSpec[]): string[] {
  return specs.map((spec) => {
    const left = `  --${spec.name}${spec.placeholder ? ` ${spec.placeholder}` : ""}`;
    const text = spec.default === undefined
      ? spec.description
      : `${spec.description} (default ${spec.default})`;
    return `${left.padEnd(24)}${text}`;
  });
}

/**
 * A parser for an integer option within bounds.
 *
 * @param option The option's name, for the message.
 * @param bounds The smallest and largest values accepted.
 */
export function integerOption(
  option: string,
  bounds: { min: number; max?: number },
): (text: string) => number {
  const kind = bounds.min === 0 ? "a non-negative integer" : "a positive integer";
  return (text) => {
    if (!/^\d+$/.test(text) || Number(text) < bounds.min) {
      throw new UsageError(`'--${option}' must be ${kind}: received '${text}'`);
    }
    const value = Number(text);
    if (bounds.max !== undefined && value > bounds.max) {
      throw new UsageError(`'--${option}' must be at most ${bounds.max}: received '${text}'`);
    }
    return value;
  };
}

/** A parser for a comma-separated list of positive integers, such as `1,8,32`. */
export function integerListOption(
  option: string,
  bounds: { max: number },
): (text: string) => number[] {
  return (text) => {
    const items = text.split(",").map((item) => item.trim());
    if (items.some((item) => !/^\d+$/.test(item) || Number(item) < 1)) {
      throw new UsageError(
        `'--${option}' must be a comma-separated list of positive integers: received '${text}'`,
      );
    }
    const values = items.map(Number);
    const tooLarge = values.find((value) => value > bounds.max);
    if (tooLarge !== undefined) {
      throw new UsageError(
        `'--${option}' values must be at most ${bounds.max}: received '${text}'`,
      );
    }
    return values;
  };
}

/** A parser for a file name, which must not be empty. */
export function fileOption(option: string): (text: string) => string {
  return (text) => {
    if (text === "") throw new UsageError(`'--${option}' needs a file name: received ''`);
    return text;
  };
}
