/** How tests start a script on this runtime (Node). Its sibling `_runtime.deno.ts` matches it. */
import process from "node:process";

/** The runtime that runs the tests. */
export const runtime: "deno" | "node" = "node";

/** The extension that source modules have on this runtime. */
export const moduleExtension = ".js";

/** The command that runs a script as the user would. */
export function scriptCommand(path: string): { command: string; args: string[] } {
  return { command: process.execPath, args: [path] };
}
