/**
 * `parseArgs` of `@std/cli`, typed. JSR cannot be reached from where this is built, so the code
 * comes from the npm package `deno-std`, which repackages the std modules as plain JavaScript;
 * `parse_args.d.ts` restores the types. Switching to JSR only changes `deno.json`.
 *
 * @module
 */
// @ts-types="./parse_args.d.ts"
export * from "npm:deno-std@1.4.0/cli/parse_args.js";
