/**
 * The frames of a child process's channel, which both its ends use: each message is a 4-byte
 * big-endian length followed by that many bytes of V8's serialization (`node:v8`, which Deno, Node
 * and Bun all provide and which keeps what structured clone keeps, as Node's "advanced" IPC did).
 * The child's first frame is the parent's one-time token, as raw bytes.
 *
 * Rules this file keeps:
 * - Nothing here touches a socket: the parent's and the child's sides feed bytes in and write the
 *   frames out, each with its runtime's own sockets.
 * - A large payload is copied once on each side: serialized into its own buffer, then read into
 *   one buffer of its announced length.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";

/** The bytes of the length that opens each frame. */
const HEADER_BYTES = 4;

// Below this size a frame goes out as one buffer, in one write; above, the copy would cost more
// than the second write.
const JOIN_BELOW_BYTES = 64 * 1024;

/** The number of random bytes in the token that a child proves itself with. */
export const TOKEN_BYTES = 32;

/**
 * A message as the buffers of one frame, in order.
 *
 * @throws {Error} When the message cannot be serialized (a function, a host object): the
 * runtime's `DataCloneError`, at once.
 */
export function encodeMessage(message: unknown): Uint8Array[] {
  return frame(serialize(message));
}

/** Raw bytes (the token) as the buffers of one frame. */
export function frame(payload: Uint8Array): Uint8Array[] {
  const header = new Uint8Array(HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, payload.length);
  if (payload.length >= JOIN_BELOW_BYTES) return [header, payload];
  const joined = new Uint8Array(HEADER_BYTES + payload.length);
  joined.set(header);
  joined.set(payload, HEADER_BYTES);
  return [joined];
}

/** The message that a frame's payload holds. */
export function decodeMessage(payload: Uint8Array): unknown {
  return deserialize(payload);
}

/**
 * Cuts a stream of bytes into frames, whatever the sizes of the chunks it comes in.
 */
export class FrameReader {
  #header = new Uint8Array(HEADER_BYTES);
  #headerFilled = 0;
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #maxBytes: number;
  #onFrame: (payload: Uint8Array) => void;

  /**
   * @param onFrame Called with each whole payload, in order.
   * @param maxBytes The largest payload accepted; a longer one makes {@linkcode push} throw.
   */
  constructor(onFrame: (payload: Uint8Array) => void, maxBytes = 2 ** 32 - 1) {
    this.#onFrame = onFrame;
    this.#maxBytes = maxBytes;
  }

  /** Sets the largest payload accepted from now on. */
  set maxBytes(value: number) {
    this.#maxBytes = value;
  }

  /**
   * Takes the next bytes of the stream.
   *
   * @throws {RangeError} When a frame announces more than the largest payload accepted.
   */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#payload === undefined) {
        const take = Math.min(HEADER_BYTES - this.#headerFilled, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFilled);
        this.#headerFilled += take;
        at += take;
        if (this.#headerFilled < HEADER_BYTES) return;
        this.#headerFilled = 0;
        const length = new DataView(this.#header.buffer).getUint32(0);
        if (length > this.#maxBytes) {
          throw new RangeError(`A frame of ${length} bytes is over the limit of ${this.#maxBytes}`);
        }
        // A whole small frame inside the chunk needs no copy.
        if (chunk.length - at >= length) {
          const payload = chunk.subarray(at, at + length);
          at += length;
          this.#onFrame(payload);
          continue;
        }
        this.#payload = new Uint8Array(length);
        this.#payloadFilled = 0;
      }
      const payload = this.#payload;
      const take = Math.min(payload.length - this.#payloadFilled, chunk.length - at);
      payload.set(chunk.subarray(at, at + take), this.#payloadFilled);
      this.#payloadFilled += take;
      at += take;
      if (this.#payloadFilled < payload.length) return;
      this.#payload = undefined;
      this.#onFrame(payload);
    }
  }
}
