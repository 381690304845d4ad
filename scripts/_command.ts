/**
 * Runs the external tools of the build scripts (npm, node, npx) and fails loudly when one fails.
 *
 * @module
 */

/** How to run a command. */
export interface RunOptions {
  /** The working directory; defaults to the current one. */
  cwd?: string | URL;
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
  /** Milliseconds after which the command is killed and counted as failed. */
  timeoutMs?: number;
  /** Collect stdout and return it instead of passing it through. */
  capture?: boolean;
}

/** What a command printed, when {@linkcode RunOptions.capture} is set. */
export interface RunResult {
  stdout: string;
}

// npm and npx are batch files on Windows, and Deno.Command does not go through a shell.
const windows = Deno.build.os === "windows";

/** The name of an npm CLI (`npm`, `npx`) for the current OS. */
export function npmCli(name: "npm" | "npx"): string {
  return windows ? `${name}.cmd` : name;
}

/**
 * Runs `command` with `args` to its end and returns its exit code and output, both captured, for
 * a command that is expected to fail or whose output is checked.
 *
 * @throws {Error} When the command cannot start or outlives `timeoutMs`.
 */
export async function runCaptured(
  command: string,
  args: string[],
  options: Omit<RunOptions, "capture"> = {},
): Promise<Outcome> {
  const output = await runToEnd(command, args, options, "piped");
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/**
 * Runs `command` with `args` to its end; a non-zero exit is an error.
 *
 * @throws {Error} When the command cannot start, exits non-zero, or outlives `timeoutMs`.
 */
export async function run(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const capture = options.capture ?? false;
  const output = await runToEnd(command, args, options, capture ? "piped" : "inherit", "inherit");
  if (!output.success) {
    throw new Error(`'${[command, ...args].join(" ")}' failed with exit code ${output.code}`);
  }
  return { stdout: capture ? new TextDecoder().decode(output.stdout) : "" };
}

/** How a command ended, with what it printed, for {@linkcode runCaptured}. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killed after `timeoutMs`; starting it and the timeout are errors. */
async function runToEnd(
  command: string,
  args: string[],
  options: RunOptions,
  stdout: "piped" | "inherit",
  stderr: "piped" | "inherit" = stdout,
): Promise<Deno.CommandOutput> {
  const { cwd, env, timeoutMs = 10 * 60_000 } = options;
  const line = [command, ...args].join(" ");
  const signal = AbortSignal.timeout(timeoutMs);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args,
      cwd,
      env,
      stdin: "null",
      stdout,
      stderr,
      signal,
    }).output();
  } catch (error) {
    throw new Error(`Cannot run '${line}'`, { cause: error });
  }
  if (signal.aborted) {
    throw new Error(`'${line}' was still running after ${timeoutMs / 1000} s and was killed`);
  }
  return output;
}

/** An error's message, followed by those of its causes. */
export function errorMessage(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e !== undefined && parts.length < 5; e = (e as Error).cause) {
    parts.push(e instanceof Error ? e.message : String(e));
    if (!(e instanceof Error)) break;
  }
  return parts.join(": ");
}
