/** How tests start a script on this runtime (Deno). Its sibling `_runtime.node.ts` matches it. */

/** The runtime that runs the tests. */
export const runtime: "deno" | "node" = "deno";

/** The extension that source modules have on this runtime. */
export const moduleExtension = ".ts";

/**
 * The command that runs a script as the user would. The grant is what spawning needs and no more:
 * no net permission, so that a channel that needed one would fail the test.
 */
export function scriptCommand(path: string): { command: string; args: string[] } {
  return {
    command: Deno.execPath(),
    args: ["run", "--quiet", "--allow-read", "--allow-env", "--allow-run", path],
  };
}
