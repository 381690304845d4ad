/**
 * The storage under the queues and pipes: a ring of serialized items in a growable
 * `SharedArrayBuffer`, guarded by an owned mutex, with counters that waiters sleep on.
 *
 * Items are serialized to bytes: as JSON when JSON keeps them exactly (plain objects, arrays,
 * strings, finite numbers, booleans, null), which is several times faster than `node:v8` on Deno,
 * and with `node:v8`'s structured-clone serializer otherwise (Maps, Dates, typed arrays, bigints…).
 *
 * @module
 */
import { v8 } from "./_v8.deno.ts";
import {
  MUTEX_WORDS,
  mutexLockAsync,
  mutexLockSync,
  mutexOwner,
  mutexTryLock,
  mutexUnlock,
  type OwnerAware,
  trackOwnerAware,
} from "./_atomics.ts";

/** Word indexes of the ring's header. */
export const H = {
  COUNT: MUTEX_WORDS,
  HEAD: MUTEX_WORDS + 1,
  TAIL: MUTEX_WORDS + 2,
  USED: MUTEX_WORDS + 3,
  CAPACITY: MUTEX_WORDS + 4,
  /** Bumped when an item is put; getters sleep on it. */
  GET_SEQ: MUTEX_WORDS + 5,
  /** Bumped when an item is taken; putters of a full queue sleep on it. */
  PUT_SEQ: MUTEX_WORDS + 6,
  GET_WAITERS: MUTEX_WORDS + 7,
  PUT_WAITERS: MUTEX_WORDS + 8,
  /** Items put and not yet marked done, for JoinableQueue; join() sleeps on it. */
  UNFINISHED: MUTEX_WORDS + 9,
  WORDS: MUTEX_WORDS + 10,
} as const;

const INITIAL_BYTES = 64 * 1024;
const MAX_BYTES = 256 * 1024 * 1024;
const TAG_JSON = 1;
const TAG_V8 = 2;

// Growable SharedArrayBuffers are ES2024; typed here for the npm build's ES2023 library.
interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  grow(byteLength: number): void;
}
const GrowableSharedArrayBuffer = SharedArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => GrowableSharedArrayBuffer;

/** The shared buffers of a ring, as they cross to a thread. */
export interface RingBuffers {
  header: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether JSON keeps `value` exactly, as structured clone would (see the module's notes). */
export function jsonSafe(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object": {
      if (value === null) return true;
      if (depth > 32) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !jsonSafe(value[i], depth + 1)) return false;
        }
        // JSON keeps only the elements: an array with properties of its own (or of a subclass)
        // goes through structured clone, which keeps them.
        return Object.getPrototypeOf(value) === Array.prototype &&
          Object.keys(value).length === value.length;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (!jsonSafe((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Serializes an item: a tag byte and the payload. */
export function encodeItem(item: unknown): { tag: number; payload: Uint8Array } {
  if (jsonSafe(item, 0)) return { tag: TAG_JSON, payload: encoder.encode(JSON.stringify(item)) };
  try {
    return { tag: TAG_V8, payload: v8().serialize(item) };
  } catch (error) {
    throw new TypeError(
      `The item cannot be put on the queue: ${
        error instanceof Error ? error.message : String(error)
      }; put data that structured clone accepts`,
      { cause: error },
    );
  }
}

/** Rebuilds an item from its tag and payload. */
export function decodeItem(tag: number, payload: Uint8Array): unknown {
  return tag === TAG_JSON ? JSON.parse(decoder.decode(payload)) : v8().deserialize(payload);
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

/** A ring of items in shared memory. Its methods that touch items expect the mutex held. */
export class Ring implements OwnerAware {
  readonly header: Int32Array;
  readonly dataBuffer: GrowableSharedArrayBuffer;
  readonly bytes: Uint8Array;

  constructor(buffers?: RingBuffers) {
    if (buffers) {
      this.header = new Int32Array(buffers.header);
      this.dataBuffer = buffers.data as GrowableSharedArrayBuffer;
    } else {
      this.header = new Int32Array(new SharedArrayBuffer(H.WORDS * 4));
      this.dataBuffer = new GrowableSharedArrayBuffer(INITIAL_BYTES, { maxByteLength: MAX_BYTES });
      this.header[H.CAPACITY] = INITIAL_BYTES;
    }
    // A view without a length follows the buffer as it grows, in every thread.
    this.bytes = new Uint8Array(this.dataBuffer);
    trackOwnerAware(this);
  }

  get buffers(): RingBuffers {
    return { header: this.header.buffer as SharedArrayBuffer, data: this.dataBuffer };
  }

  tryLock(owner: number): boolean {
    return mutexTryLock(this.header, 0, owner);
  }

  lockSync(owner: number): void {
    mutexLockSync(this.header, 0, owner);
  }

  lock(owner: number, signal?: AbortSignal): Promise<boolean> {
    return mutexLockAsync(this.header, 0, owner, Infinity, signal);
  }

  unlock(): void {
    mutexUnlock(this.header, 0);
  }

  /** The mutex guards only short copies, never a wait; a dead holder's hold is simply undone. */
  releaseOwnedBy(owner: number): void {
    if (mutexOwner(this.header, 0) === owner) mutexUnlock(this.header, 0);
  }

  get count(): number {
    return Atomics.load(this.header, H.COUNT);
  }

  /** Appends an item (mutex held). */
  push(tag: number, payload: Uint8Array): void {
    const h = this.header;
    const need = 5 + payload.length;
    if (h[H.USED] === 0) h[H.HEAD] = h[H.TAIL] = 0;
    let at = this.#place(need);
    if (at < 0) {
      this.#grow(need);
      at = this.#place(need);
    }
    const bytes = this.bytes;
    writeU32(bytes, at, payload.length + 1);
    bytes[at + 4] = tag;
    bytes.set(payload, at + 5);
    h[H.TAIL] = at + need;
    h[H.USED] += need;
    Atomics.add(h, H.COUNT, 1);
  }

  /** Where an item of `need` bytes goes, or -1 when it does not fit; may wrap the tail. */
  #place(need: number): number {
    const h = this.header;
    const capacity = h[H.CAPACITY];
    const head = h[H.HEAD];
    const tail = h[H.TAIL];
    const used = h[H.USED];
    const wrapped = tail < head || (tail === head && used > 0);
    if (wrapped) return head - tail >= need ? tail : -1;
    if (capacity - tail >= need) return tail;
    if (head >= need) {
      // The end is too short: mark it skipped and go on from the start.
      if (capacity - tail >= 4) writeU32(this.bytes, tail, 0);
      h[H.USED] += capacity - tail;
      h[H.TAIL] = 0;
      return 0;
    }
    return -1;
  }

  #grow(need: number): void {
    const h = this.header;
    const capacity = h[H.CAPACITY];
    const next = Math.min(MAX_BYTES, Math.max(capacity * 2, capacity + need * 2));
    if (next - capacity < need) {
      throw new RangeError(
        `The queue holds more than ${MAX_BYTES} bytes: take items off before putting more`,
      );
    }
    this.dataBuffer.grow(next);
    const head = h[H.HEAD];
    const tail = h[H.TAIL];
    if (h[H.USED] > 0 && tail <= head) {
      // Wrapped: move the older part to the new end, so that the free space is in one piece.
      const moved = capacity - head;
      this.bytes.copyWithin(next - moved, head, capacity);
      h[H.HEAD] = next - moved;
    }
    h[H.CAPACITY] = next;
  }

  /** Takes the oldest item (mutex held, count > 0). */
  shift(): { tag: number; payload: Uint8Array } {
    const h = this.header;
    const capacity = h[H.CAPACITY];
    let head = h[H.HEAD];
    let length = capacity - head >= 4 ? readU32(this.bytes, head) : 0;
    if (length === 0) {
      h[H.USED] -= capacity - head;
      head = 0;
      length = readU32(this.bytes, 0);
    }
    const tag = this.bytes[head + 4];
    const payload = this.bytes.slice(head + 5, head + 4 + length);
    h[H.HEAD] = head + 4 + length;
    h[H.USED] -= 4 + length;
    Atomics.sub(h, H.COUNT, 1);
    return { tag, payload };
  }
}
