/** Helpers shared by the tests: run a fixture script, watch pids. */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format } from "node:util";
import { cliCommand, moduleExtension, scriptCommand } from "./_runtime.deno.ts";
import { setStartMethod, type StartMethod } from "../mod.ts";

/** The path of a fixture module by its base name, with this runtime's extension. */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}${moduleExtension}`, import.meta.url));
}

/** What a finished script left behind. */
export interface ScriptOutput {
  code: number | null;
  signal: string | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stdoutText: string;
  stderrText: string;
}

/** How to run a script to its end. */
export interface RunOptions {
  timeoutMs?: number;
  onStdout?: (text: string, kill: () => void) => void;
  /** Variables to set or replace in the child's environment. */
  env?: Record<string, string>;
  /** Runtime flags before the script, in place of the default grant (see `scriptCommand`). */
  runtimeFlags?: string[];
}

/** Runs a fixture script to its end and collects its output as bytes. */
export function runFixture(
  name: string,
  args: string[] = [],
  options: RunOptions = {},
): Promise<ScriptOutput> {
  const { command, args: baseArgs } = scriptCommand(fixturePath(name), options.runtimeFlags);
  return runToEnd(command, [...baseArgs, ...args], options);
}

/**
 * Runs the `multiproc` CLI with `args` to its end, as a user would: from source on Deno, the
 * compiled bin on Node.
 */
export function runCli(
  args: string[],
  options: RunOptions & { write?: boolean } = {},
): Promise<ScriptOutput> {
  const { command, args: baseArgs } = cliCommand({ write: options.write });
  return runToEnd(command, [...baseArgs, ...args], options);
}

function runToEnd(command: string, args: string[], options: RunOptions): Promise<ScriptOutput> {
  const env = options.env ? { ...process.env, ...options.env } : undefined;
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
  const stdout: Uint8Array[] = [];
  const stderr: Uint8Array[] = [];
  const kill = () => child.kill("SIGKILL");
  child.stdout!.on("data", (chunk: Uint8Array) => {
    stdout.push(chunk);
    options.onStdout?.(new TextDecoder().decode(concat(stdout)), kill);
  });
  child.stderr!.on("data", (chunk: Uint8Array) => stderr.push(chunk));
  const timer = setTimeout(kill, options.timeoutMs ?? 30_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    const finish = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      clearTimeout(grace);
      const out = concat(stdout);
      const err = concat(stderr);
      resolve({
        code,
        signal,
        stdout: out,
        stderr: err,
        stdoutText: new TextDecoder().decode(out),
        stderrText: new TextDecoder().decode(err),
      });
    };
    let grace: ReturnType<typeof setTimeout> | undefined;
    child.on("close", finish);
    // An orphaned grandchild could hold the pipes open for ever; the test that looks for orphans
    // must then fail rather than hang, so the script's own exit is enough after a moment.
    child.on("exit", (code, signal) => {
      grace = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, 3000);
    });
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** True while a process exists and is not a zombie waiting to be reaped. */
export function isPidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state follows the parenthesised command name, which may itself hold spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Polls `condition` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return condition();
}

/** The bytes 0-255 twice, with invalid UTF-8 and what looks like framing, to test passthrough. */
export const garbageBytes: Uint8Array = (() => {
  const bytes = new Uint8Array(600);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) % 256;
  bytes.set(new TextEncoder().encode('{"type":"result","value":1}\n'), 512);
  return bytes;
})();

/** The garbage twice over: what a fixture that writes it twice leaves on its stdout or stderr. */
export const garbageTwice: Uint8Array = (() => {
  const twice = new Uint8Array(garbageBytes.length * 2);
  twice.set(garbageBytes);
  twice.set(garbageBytes, garbageBytes.length);
  return twice;
})();

/** Whether the module at `url` is the script that was run, on either runtime. */
export function isMainScript(url: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === url;
  } catch {
    return false;
  }
}

/**
 * The pids of the live children of `pid`. Asks `ps`, because Deno lets only fully privileged
 * scripts read /proc, and the fixture scripts run with the least that spawning needs.
 */
export function childPidsOf(pid: number): number[] {
  let output: string;
  try {
    output = execFileSync("ps", ["-o", "pid=,stat=,comm=", "--ppid", String(pid)], {
      encoding: "utf8",
    });
  } catch (error) {
    // ps exits with 1 when there is no such process.
    if ((error as { status?: number }).status === 1) return [];
    throw error;
  }
  return output.trim().split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([child, stat, command]) =>
      child && !stat.startsWith("Z") &&
      // Asked about this process, ps lists itself among its children.
      !(pid === process.pid && command === "ps")
    )
    .map(([child]) => Number(child));
}

/** Applies `--start-method NAME` from the command line, for fixture scripts. */
export function applyStartMethodArgument(): void {
  const index = process.argv.indexOf("--start-method");
  if (index >= 0) setStartMethod(process.argv[index + 1] as StartMethod);
}

/**
 * Runs `fn` with this process's stderr captured, and returns what was written there instead of
 * showing it: the traceback that a failing target prints, as Python's does, and whatever a child
 * process prints, which the library passes through this process. A test that expects such output
 * captures it and asserts on it, so that red text in a run means a failure.
 */
export async function captureStderr<T>(
  fn: () => T | Promise<T>,
): Promise<{ value: T; stderr: string }> {
  const chunks: string[] = [];
  const stream = process.stderr;
  const write = stream.write;
  const consoleError = console.error;
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    chunks.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
    const callback = rest.find((arg) => typeof arg === "function") as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof stream.write;
  // Deno's console writes to the descriptor itself, not through process.stderr.
  console.error = (...args: unknown[]) => chunks.push(`${format(...args)}\n`);
  try {
    const value = await fn();
    return { value, stderr: chunks.join("") };
  } finally {
    stream.write = write;
    console.error = consoleError;
  }
}
