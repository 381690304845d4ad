/** How tests start a script on this runtime (Deno). Its sibling `_runtime.node.ts` matches it. */
import { fileURLToPath } from "node:url";

/** The runtime that runs the tests. */
export const runtime: "deno" | "node" | "bun" = "deno";

/** The extension that source modules have on this runtime. */
export const moduleExtension = ".ts";

/**
 * The command that runs a script as the user would. The grant is what spawning needs and no more:
 * no net permission, so that a channel that needed one would fail the test. `flags` replace it.
 */
export function scriptCommand(
  path: string,
  flags: string[] = ["--allow-read", "--allow-env", "--allow-run"],
): { command: string; args: string[] } {
  return { command: Deno.execPath(), args: ["run", "--quiet", ...flags, path] };
}

/**
 * The command that runs the `multiproc` CLI from source, as its README says, with write access
 * only when a test asks for a file such as an SVG chart.
 */
export function cliCommand(options: { write?: boolean } = {}): { command: string; args: string[] } {
  const cli = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
  return {
    command: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-env",
      "--allow-run",
      ...(options.write ? ["--allow-write"] : []),
      cli,
    ],
  };
}
