/**
 * The checks of the input that the pools' `map`, `starmap` and `imap` take, shared by the local
 * pools and `DistributedPool`.
 *
 * @module
 */
import { describeValue } from "./_checks.ts";

/** Whether `value` is an async iterable. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === "function";
}

/**
 * Checks a map's input.
 *
 * @throws {TypeError} When it is neither iterable nor async iterable.
 */
export function checkIterable(value: unknown, what: string): void {
  if (
    value === null || value === undefined ||
    (typeof (value as Iterable<unknown>)[Symbol.iterator] !== "function" && !isAsyncIterable(value))
  ) {
    throw new TypeError(
      `${what} 'iterable' must be an iterable or async iterable: received ${describeValue(value)}`,
    );
  }
}

/**
 * Checks `starmap`'s items: each an array of arguments.
 *
 * @throws {TypeError} Naming the first item that is not an array.
 */
export function checkArgLists(items: unknown[], what: string): void {
  for (let i = 0; i < items.length; i++) {
    if (!Array.isArray(items[i])) {
      throw new TypeError(
        `${what} items must be arrays of arguments: item ${i} is ${describeValue(items[i])}`,
      );
    }
  }
}
