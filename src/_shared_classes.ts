/**
 * The modules of the shared-object classes, loaded in a child that receives one of their objects,
 * so that each registers how its objects come back to life.
 *
 * Rules this file keeps:
 * - Only the child side imports it: `_revive.ts` sits below these classes and is handed this
 *   loader, so that no import runs from the reviving machinery back up to the classes.
 * - The imports are dynamic: a child that receives no shared object does not pay for them.
 *
 * @module
 */

let loaded: Promise<unknown> | undefined;

/** Imports every module that defines a shared-object class, once. */
export function loadSharedClasses(): Promise<unknown> {
  return loaded ??= Promise.all([
    import("./synchronize.ts"),
    import("./shared_value.ts"),
    import("./queue.ts"),
    import("./pipe.ts"),
  ]);
}
