/**
 * {@linkcode transfer}: move `ArrayBuffer`s and `MessagePort`s to a worker instead of copying them.
 *
 * @module
 */
import { describeValue } from "./_checks.ts";
import { TRANSFER, type TransferMarker } from "./_transfer_marker.ts";

/**
 * Marks an argument (or a task's return value) so that the objects in `transferables` move to the
 * other side instead of being copied: zero-copy between threads, where the sender's buffers become
 * detached (length 0). Between processes everything is copied and the list is ignored.
 *
 * Wrap a whole argument: `pool.apply(fn, [transfer(buffer, [buffer])])` or
 * `new Thread({ target, args: [transfer(buffer, [buffer])] })`; a target returns
 * `transfer(result, [result.buffer])` to move its result back. Inside the value, the buffers may
 * sit anywhere (a typed array's `.buffer`, a field of an object).
 *
 * @param value The argument or return value.
 * @param transferables The `ArrayBuffer`s and `MessagePort`s inside `value` to move.
 * @returns A marker that stands for `value`; it is typed as `value` so that it fits the target's
 * parameter types.
 * @throws {TypeError} When `transferables` is not an array of objects.
 * @example Move a buffer to a worker without copying it
 * ```ts
 * import { ThreadPool, transfer } from "@multiproc/multiproc";
 *
 * await using pool = new ThreadPool({ size: 1 });
 * const bytes = new Uint8Array(1024).fill(1);
 * const sum = (data: Uint8Array) => data.reduce((a, b) => a + b, 0);
 * console.log(await pool.apply(sum, [transfer(bytes, [bytes.buffer])])); // 1024
 * console.log(bytes.byteLength); // 0: the buffer moved
 * ```
 */
export function transfer<T>(value: T, transferables: readonly object[]): T {
  if (!Array.isArray(transferables)) {
    throw new TypeError(
      `'transferables' must be an array of ArrayBuffers or MessagePorts: received ${
        describeValue(transferables)
      }`,
    );
  }
  for (let i = 0; i < transferables.length; i++) {
    if (typeof transferables[i] !== "object" || transferables[i] === null) {
      throw new TypeError(
        `'transferables[${i}]' must be an ArrayBuffer or a MessagePort: received ${
          describeValue(transferables[i])
        }`,
      );
    }
  }
  const marker: TransferMarker = { [TRANSFER]: true, value, list: transferables };
  return marker as T;
}
