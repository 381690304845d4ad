/**
 * The version of multiproc.
 *
 * @module
 */

/**
 * The version of this package, as in `deno.json` and the npm `package.json`.
 *
 * @example Print the version
 * ```ts
 * import { VERSION } from "@multiproc/multiproc";
 *
 * console.log(`multiproc ${VERSION}`);
 * ```
 */
export const VERSION = "0.1.0";
