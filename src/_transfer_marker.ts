/**
 * The marker that `transfer()` makes, and how the pool recognises it on either side.
 *
 * @module
 */
import type { TransferList } from "./_protocol.ts";

/**
 * A symbol from the global registry, so that markers made by another copy of the library (a
 * target's own import of multiproc, say) are recognised too.
 */
export const TRANSFER: unique symbol = Symbol.for("multiproc.transfer") as never;

/** What `transfer()` returns: a value and the objects to move along with it. */
export interface TransferMarker {
  readonly [TRANSFER]: true;
  readonly value: unknown;
  readonly list: TransferList;
}

/** Whether `value` is a marker made by `transfer()`. */
export function isTransfer(value: unknown): value is TransferMarker {
  return typeof value === "object" && value !== null &&
    (value as Record<symbol, unknown>)[TRANSFER] === true;
}
