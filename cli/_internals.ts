/**
 * The library's private parts that the command line uses, in one place so that the seam stays
 * narrow and visible. Everything else comes from the library's public modules. The library itself
 * imports nothing from `cli/`.
 *
 * @module
 */

// Whether this module is the program that the user ran, on Deno and on Node alike (Node 20 has no
// `import.meta.main`).
export { mainModuleUrl } from "../src/_platform.deno.ts";
// `--start-method` is checked with the library's own rule and message, at parse time.
export { checkStartMethod } from "../src/_start_methods.ts";
// `bench start` and `bench gil` time a forkserver start with its spares ready, not their refill.
export { spareCounts } from "../src/_forkserver.ts";
