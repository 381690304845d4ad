/**
 * The frames of a child process's channel, which both its ends use: each is a 4-byte big-endian
 * length followed by that many bytes. The child's first frame is the parent's one-time token, as
 * raw bytes; every later one is a message: a tag byte, then JSON where JSON keeps the message
 * exactly (the test that the queues' ring uses), else V8's serialization (`node:v8`, which keeps
 * what structured clone keeps, as Node's "advanced" IPC did). JSON spares a Deno child Node's
 * compatibility layer, which `node:v8` needs, and is faster on Deno.
 *
 * Rules this file keeps:
 * - Nothing here touches a socket: the parent's and the child's sides feed bytes in and write the
 *   frames out, each with its runtime's own sockets.
 * - A large payload is copied once on each side: serialized into its own buffer, then read into
 *   one buffer of its announced length.
 *
 * @module
 */
import { jsonSafe } from "./_ring.ts";
import type { V8Serializer } from "./_v8.deno.ts";

/** The bytes of the length that opens each frame. */
const HEADER_BYTES = 4;

// Below this size a frame goes out as one buffer, in one write; above, the copy would cost more
// than the second write.
const JOIN_BELOW_BYTES = 64 * 1024;

/** The number of random bytes in the token that a child proves itself with. */
export const TOKEN_BYTES = 32;

/**
 * The token as the text that a child on Node's IPC channel puts beside each of its messages (see
 * `ipcChannel` in `_process_parent.ts`): hex, which every serialization keeps as it is.
 */
export function ipcToken(token: Uint8Array): string {
  return Array.from(token, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The chunks as one buffer, in order. */
export function joinBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((size, chunk) => size + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * Everything that a blocking `read` gives until its end (`null`): the child's stdin, which the
 * parent closes once it has written the token.
 */
export function readToEnd(read: (buffer: Uint8Array) => number | null): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const buffer = new Uint8Array(256);
    const count = read(buffer);
    if (count === null) return joinBytes(chunks);
    chunks.push(buffer.subarray(0, count));
  }
}

/** Anything with a Node-style `write`: a socket, a pipe, a child's stdin. */
export interface ChunkWriter {
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): unknown;
}

/**
 * Writes `buffers` to `writer` at once, in order, so that nothing else comes between them.
 *
 * @returns A promise that resolves once the last is out, or rejects with its error.
 */
export function writeInOrder(writer: ChunkWriter, buffers: readonly Uint8Array[]): Promise<void> {
  return new Promise((resolve, reject) => {
    buffers.forEach((buffer, i) =>
      writer.write(
        buffer,
        i < buffers.length - 1 ? undefined : (error) => error ? reject(error) : resolve(),
      )
    );
  });
}

const TAG_JSON = 0;
const TAG_V8 = 1;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A message as the buffers of one frame, in order; undefined when it needs V8's serialization
 * and `serializer` is undefined (not loaded yet).
 *
 * @throws {Error} When the message cannot be serialized (a function, a host object): the
 * runtime's `DataCloneError`, at once.
 */
export function encodeMessage(
  message: unknown,
  serializer: V8Serializer | undefined,
): Uint8Array[] | undefined {
  if (jsonSafe(message)) return frame(encoder.encode(JSON.stringify(message)), TAG_JSON);
  return serializer && frame(serializer.serialize(message), TAG_V8);
}

/** A payload as the buffers of one frame, after `tag` where one is given. */
export function frame(payload: Uint8Array, tag?: number): Uint8Array[] {
  const prefix = tag === undefined ? HEADER_BYTES : HEADER_BYTES + 1;
  const header = new Uint8Array(prefix);
  new DataView(header.buffer).setUint32(0, prefix - HEADER_BYTES + payload.length);
  if (tag !== undefined) header[HEADER_BYTES] = tag;
  if (payload.length >= JOIN_BELOW_BYTES) return [header, payload];
  const joined = new Uint8Array(prefix + payload.length);
  joined.set(header);
  joined.set(payload, prefix);
  return [joined];
}

/** Whether a message's frame needs V8's serialization to be read. */
export function needsV8(payload: Uint8Array): boolean {
  return payload[0] === TAG_V8;
}

/** The message that a frame's payload holds; `serializer` where it {@linkcode needsV8}. */
export function decodeMessage(payload: Uint8Array, serializer?: V8Serializer): unknown {
  const body = payload.subarray(1);
  if (payload[0] === TAG_JSON) return JSON.parse(decoder.decode(body));
  if (payload[0] !== TAG_V8 || !serializer) {
    throw new TypeError(`A frame with tag ${payload[0]} cannot be read here`);
  }
  return serializer.deserialize(body);
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
   * @param onFrame Called with each whole payload, in order; a payload may be a view of the chunk
   * pushed, to be used before `onFrame` returns.
   * @param maxBytes The largest payload accepted; a longer one makes {@linkcode push} throw.
   */
  constructor(onFrame: (payload: Uint8Array) => void, maxBytes = 2 ** 32 - 1) {
    this.#onFrame = onFrame;
    this.#maxBytes = maxBytes;
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
        // A whole frame inside the chunk needs no copy.
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

/**
 * The kinds of message on a channel relay's pipes (see `_relay_parent.ts`). Each is a frame whose
 * payload is the kind, the channel's number (4 bytes, big-endian), then its bytes, if any.
 */
export const RelayKind = {
  /** Parent to relay: listen for a child that proves the token given. */
  EXPECT: 1,
  /** Both ways: bytes of one child's channel. */
  DATA: 2,
  /** Parent to relay: stop listening, and cut the child's connection. */
  CLOSE: 3,
  /** Relay to parent: the child may connect now. */
  LISTENING: 4,
  /** Relay to parent: nothing could listen for that child. */
  FAILED: 5,
  /** Relay to parent: the child has proved its token. */
  JOINED: 6,
  /** Relay to parent: the child's connection has closed. */
  END: 7,
} as const;

/** The bytes before a relay message's own: its frame's length, its kind and its channel. */
const RELAY_HEADER_BYTES = HEADER_BYTES + 5;

/** A relay message as the buffers of one frame: `data` goes out as it is, not copied. */
export function relayFrame(kind: number, channel: number, data?: Uint8Array): Uint8Array[] {
  const header = new Uint8Array(RELAY_HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, RELAY_HEADER_BYTES - HEADER_BYTES + (data?.length ?? 0));
  header[HEADER_BYTES] = kind;
  view.setUint32(HEADER_BYTES + 1, channel);
  return data === undefined || data.length === 0 ? [header] : [header, data];
}

/**
 * Reads relay messages from a stream of bytes: calls `onMessage` with each one's kind, channel and
 * bytes (a view, to be used before `onMessage` returns).
 *
 * @throws {RangeError} From `push`, when a frame is too short to be a relay message.
 */
export function relayReader(
  onMessage: (kind: number, channel: number, data: Uint8Array) => void,
): FrameReader {
  return new FrameReader((payload) => {
    if (payload.length < RELAY_HEADER_BYTES - HEADER_BYTES) {
      throw new RangeError(`A relay frame of ${payload.length} bytes is too short`);
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    onMessage(payload[0], view.getUint32(1), payload.subarray(5));
  });
}
