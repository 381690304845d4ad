/** How tests start a script on this runtime (Node). Its sibling `_runtime.deno.ts` matches it. */
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The runtime that runs the tests: the npm build runs on Node and on Bun. */
export const runtime: "deno" | "node" | "bun" = process.versions.bun ? "bun" : "node";

/** The extension that source modules have on this runtime. */
export const moduleExtension = ".js";

/** The command that runs a script as the user would, with `flags` for Node before it. */
export function scriptCommand(
  path: string,
  flags: string[] = [],
): { command: string; args: string[] } {
  return { command: process.execPath, args: [...flags, path] };
}

/** The command that runs the compiled `multiproc` CLI, as `npx multiproc` does. */
export function cliCommand(
  _options: { write?: boolean } = {},
): { command: string; args: string[] } {
  const cli = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  return { command: process.execPath, args: [cli] };
}
