/**
 * Numbers shared between threads and processes, as Python's `multiprocessing.Value` and `Array`:
 * {@linkcode Value} holds one number, {@linkcode SharedArray} a typed array of them. Both keep their
 * data in a `SharedArrayBuffer`, with a lock to guard updates such as `+=`.
 *
 * In a child process, where memory cannot be shared, the object is a copy kept coherent through
 * the parent's broker by a documented rule: the copy is fetched when the process acquires the
 * object's lock and when it is revived; changes are sent back when the process releases the lock,
 * when it calls `flush()`, and when its task ends; setting `Value.value` is sent at once. Only the
 * bytes that changed are sent, so processes that write different elements do not undo each other.
 *
 * @module
 */
import { checkOptions, describeValue } from "./_checks.ts";
import { lockHandleOf, lockMirrorOf } from "./_lock_access.ts";
import { onTaskEnd } from "./_revive.ts";
import { handleOf, Shared, type SharedKind } from "./_shared.ts";
import { type Lock, RLock } from "./synchronize.ts";

function checkLock(lock: unknown): Lock | RLock {
  if (!lockHandleOf(lock)) {
    throw new TypeError(
      `'lock' must be a boolean, a Lock or an RLock: received ${describeValue(lock)}`,
    );
  }
  return lock as Lock | RLock;
}

const TYPES = {
  i8: Int8Array,
  u8: Uint8Array,
  u8c: Uint8ClampedArray,
  i16: Int16Array,
  u16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
  i64: BigInt64Array,
  u64: BigUint64Array,
  f32: Float32Array,
  f64: Float64Array,
} as const;

/** A short type code: `"i32"`, `"f64"`, `"u8"`, … */
export type TypeCode =
  | "i8"
  | "u8"
  | "u8c"
  | "i16"
  | "u16"
  | "i32"
  | "u32"
  | "i64"
  | "u64"
  | "f32"
  | "f64";

const ALIASES: Record<Exclude<TypeName, TypeCode>, TypeCode> = {
  int8: "i8",
  uint8: "u8",
  uint8clamped: "u8c",
  int16: "i16",
  uint16: "u16",
  int32: "i32",
  uint32: "u32",
  bigint64: "i64",
  biguint64: "u64",
  int64: "i64",
  uint64: "u64",
  float32: "f32",
  float64: "f64",
  // Python's array codes, with C's sizes on 64-bit Linux.
  b: "i8",
  B: "u8",
  h: "i16",
  H: "u16",
  i: "i32",
  I: "u32",
  l: "i64",
  L: "u64",
  q: "i64",
  Q: "u64",
  f: "f32",
  d: "f64",
};

/** A type code or name: `"i32"`, `"int32"`, Python's `"i"`, … */
export type TypeName =
  | TypeCode
  | "int8"
  | "uint8"
  | "uint8clamped"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bigint64"
  | "biguint64"
  | "float32"
  | "float64"
  | "b"
  | "B"
  | "h"
  | "H"
  | "i"
  | "I"
  | "l"
  | "L"
  | "q"
  | "Q"
  | "f"
  | "d";

/** The names of the 64-bit integer types, whose elements are bigints. */
export type BigTypeName =
  | "i64"
  | "u64"
  | "int64"
  | "uint64"
  | "bigint64"
  | "biguint64"
  | "l"
  | "L"
  | "q"
  | "Q";

/** The typed array of a type code: a `BigInt64Array` or `BigUint64Array` for 64-bit integers. */
export type TypedArrayOf<T extends TypeName> = T extends BigTypeName
  ? BigInt64Array | BigUint64Array
  :
    | Int8Array
    | Uint8Array
    | Uint8ClampedArray
    | Int16Array
    | Uint16Array
    | Int32Array
    | Uint32Array
    | Float32Array
    | Float64Array;

/** The element type of a type code: `bigint` for 64-bit integers, `number` otherwise. */
export type ElementOf<T extends TypeName> = T extends BigTypeName ? bigint : number;

const RANGES: Partial<Record<TypeCode, [number | bigint, number | bigint]>> = {
  i8: [-128, 127],
  u8: [0, 255],
  u8c: [0, 255],
  i16: [-32768, 32767],
  u16: [0, 65535],
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
  u64: [0n, 2n ** 64n - 1n],
};

function typeCodeOf(type: unknown): TypeCode {
  if (typeof type === "string") {
    if (Object.hasOwn(TYPES, type)) return type as TypeCode;
    if (Object.hasOwn(ALIASES, type)) return ALIASES[type as keyof typeof ALIASES];
  }
  throw new TypeError(
    `Unknown type code ${describeValue(type)}: use one of ${
      Object.keys(TYPES).map((code) => `'${code}'`).join(", ")
    } (or a name such as 'int32', or Python's 'i', 'd', …)`,
  );
}

/** Checks that `value` fits `code`, and returns it as the element type. */
function checkElement(code: TypeCode, value: unknown, what: string): number | bigint {
  const range = RANGES[code];
  if (code === "i64" || code === "u64") {
    const big = typeof value === "number" && Number.isInteger(value) ? BigInt(value) : value;
    if (typeof big !== "bigint" || big < range![0] || big > range![1]) {
      throw new RangeError(
        `${what} is out of range for '${code}' (${range![0]} to ${range![1]}): received ${
          describeValue(value)
        }`,
      );
    }
    return big;
  }
  if (typeof value !== "number" || Number.isNaN(value) && range) {
    throw new RangeError(
      `${what} must be a number for '${code}': received ${describeValue(value)}`,
    );
  }
  if (range && (!Number.isInteger(value) || value < range[0] || value > range[1])) {
    throw new RangeError(
      `${what} is out of range for '${code}' (integers ${range[0]} to ${
        range[1]
      }): received ${value}`,
    );
  }
  return value;
}

/** Options for {@linkcode Value} and {@linkcode SharedArray}. */
export interface SharedValueOptions {
  /**
   * The lock that guards updates: `true` (the default) for a new {@linkcode RLock}, a Lock or
   * RLock of your own, or `false` for none (Python's `RawValue`).
   */
  lock?: boolean | Lock | RLock;
}

function lockOf(option: SharedValueOptions["lock"]): Lock | RLock | undefined {
  if (option === undefined || option === true) return new RLock();
  if (option === false) return undefined;
  return checkLock(option);
}

/** The bytes of a Value or SharedArray, in shared memory. */
interface BytesState {
  bytes: Uint8Array;
}

type BytesConfig = { code: TypeCode; length: number; lock?: Lock | RLock };

/** What a child process keeps: a copy of the bytes, and the bytes as last fetched or sent. */
class BytesMirror {
  readonly bytes: Uint8Array;
  readonly snapshot: Uint8Array;
  readonly handle: BytesHandle;
  // Kept alive with the object, since onTaskEnd holds the hook weakly.
  readonly flush = () => this.send();

  constructor(handle: BytesHandle, seed: Uint8Array) {
    this.handle = handle;
    // A copy, since Node's IPC hands bytes over as a view at any offset, which a wider typed
    // array cannot be laid over.
    this.bytes = new Uint8Array(seed);
    this.snapshot = seed.slice();
    const lock = handle.config.lock;
    if (lock) {
      lockMirrorOf(lockHandleOf(lock)!)?.companions.add({
        afterAcquire: () => this.fetch(),
        beforeRelease: this.flush,
      });
    }
    onTaskEnd(this.flush);
  }

  /** Sends the bytes that changed since the last fetch or send. */
  send(): void {
    const { bytes, snapshot } = this;
    const runs: Array<[number, Uint8Array]> = [];
    let i = 0;
    while (i < bytes.length) {
      if (bytes[i] === snapshot[i]) {
        i++;
        continue;
      }
      const start = i;
      while (i < bytes.length && bytes[i] !== snapshot[i]) i++;
      runs.push([start, bytes.slice(start, i)]);
    }
    if (runs.length === 0) return;
    snapshot.set(bytes);
    this.handle.cast("write", runs);
  }

  /** Fetches the current bytes. */
  async fetch(): Promise<void> {
    const fresh = await this.handle.call("read");
    this.bytes.set(fresh);
    this.snapshot.set(fresh);
  }

  /** What this process's own children start from. */
  seed(): Uint8Array {
    return this.bytes.slice();
  }
}

const bytesOps = {
  read: (state: BytesState): Uint8Array => state.bytes.slice(),
  write: (state: BytesState, _caller: unknown, runs: Array<[number, Uint8Array]>): void => {
    for (const [offset, bytes] of runs) state.bytes.set(bytes, offset);
  },
};

type BytesHandle = Shared<BytesState, BytesConfig, typeof bytesOps>;

function bytesKind(kind: string, type: { prototype: object }) {
  const spec: SharedKind<BytesState, BytesConfig, typeof bytesOps> = {
    kind,
    type,
    share: (state) => state.bytes.buffer,
    attach: (buffer) => ({ bytes: new Uint8Array(buffer as SharedArrayBuffer) }),
    ops: bytesOps,
    // The child starts from the current data, so that reads before any lock see something recent.
    seed: (state) => state.bytes.slice(),
    revivedRemote: (handle, seed) => handle.mirror = new BytesMirror(handle, seed as Uint8Array),
  };
  Shared.define(spec);
  return spec;
}

function newBytes(
  object: object,
  kind: SharedKind<BytesState, BytesConfig, typeof bytesOps>,
  code: TypeCode,
  length: number,
  lock: Lock | RLock | undefined,
): void {
  const bytes = new Uint8Array(allocate(length * TYPES[code].BYTES_PER_ELEMENT, code, length));
  Shared.create(object, kind, lock ? { code, length, lock } : { code, length }, { bytes });
}

function allocate(byteLength: number, code: TypeCode, length: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(byteLength);
  } catch (error) {
    throw new RangeError(
      `Cannot allocate ${length} elements of '${code}' (${byteLength} bytes) in shared memory: ${
        error instanceof Error ? error.message : String(error)
      }; use a smaller length`,
      { cause: error },
    );
  }
}

// The typed array over an object's bytes, kept on the object itself: `.value` reads it each time.
const VIEW = Symbol("multiproc.view");

/** The typed array over the object's bytes: shared memory, or this child process's copy. */
function viewOf<T extends TypeName>(object: object): TypedArrayOf<T> {
  const view = (object as { [VIEW]?: TypedArrayOf<T> })[VIEW];
  return view ?? makeView(object) as TypedArrayOf<T>;
}

function makeView(object: object): TypedArrayOf<TypeName> {
  const handle = handleOf<BytesHandle>(object);
  const bytes = handle.local?.bytes ?? (handle.mirror as BytesMirror).bytes;
  const { code, length } = handle.config;
  const view = new TYPES[code](bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
  Object.defineProperty(object, VIEW, { value: view });
  return view as TypedArrayOf<TypeName>;
}

function mirrorOf(object: object): BytesMirror | undefined {
  return handleOf<BytesHandle>(object).mirror as BytesMirror | undefined;
}

/**
 * One number in shared memory, as Python's `multiprocessing.Value`. Read and write it through
 * `.value`; guard read-modify-write updates (`v.value += 1`) with its lock from `getLock()`.
 *
 * @typeParam T The type code.
 * @example Four threads add 100 each, under the value's lock
 * ```ts
 * import { Thread, Value } from "@multiproc/multiproc";
 *
 * const total = new Value("i32", 0);
 * const threads = [1, 2, 3, 4].map(() =>
 *   new Thread({
 *     target: async (total: Value<"i32">) => {
 *       for (let i = 0; i < 100; i++) {
 *         using _held = await total.getLock().hold();
 *         total.value += 1;
 *       }
 *     },
 *     args: [total],
 *   })
 * );
 * for (const t of threads) t.start();
 * for (const t of threads) await t.join();
 * console.log(total.value); // 400
 * ```
 */
export class Value<T extends TypeName = TypeName> {
  /**
   * Creates a shared number.
   *
   * @param type A type code (`"i32"`, `"f64"`, `"u8"`, `"i64"`, …), a name (`"int32"`) or one of
   * Python's codes (`"i"`, `"d"`).
   * @param initial The initial value (a bigint, or a safe integer, for 64-bit types); 0 by default.
   * @param options `lock: false` for no lock, or a lock of your own.
   * @throws {TypeError} For an unknown type code, naming the valid ones.
   * @throws {RangeError} When `initial` does not fit the type.
   */
  constructor(type: T, initial?: ElementOf<T>, options: SharedValueOptions = {}) {
    const { lock } = checkOptions(options, "Value", ["lock"]);
    const code = typeCodeOf(type);
    const value = checkElement(code, initial ?? 0, "The initial value");
    newBytes(this, VALUE, code, 1, lockOf(lock));
    (viewOf(this) as { [i: number]: number | bigint })[0] = value;
  }

  /** The type code. */
  get type(): TypeCode {
    return handleOf<BytesHandle>(this).config.code;
  }

  /** The number. In a child process, as last fetched (see the module's rule). */
  get value(): ElementOf<T> {
    return viewOf<T>(this)[0] as ElementOf<T>;
  }

  /**
   * Sets the number.
   *
   * @throws {RangeError} When `value` does not fit the type.
   */
  set value(value: ElementOf<T>) {
    (viewOf(this) as { [i: number]: number | bigint })[0] = checkElement(
      this.type,
      value,
      "The value",
    );
    mirrorOf(this)?.send();
  }

  /**
   * The lock that guards this value.
   *
   * @returns The lock.
   * @throws {Error} When the value was created with `lock: false`.
   */
  getLock(): Lock | RLock {
    const { lock } = handleOf<BytesHandle>(this).config;
    if (!lock) throw new Error("This Value was created with 'lock: false'");
    return lock;
  }
}

const VALUE = bytesKind("value", Value);

/**
 * A typed array in shared memory, as Python's `multiprocessing.Array` (renamed so as not to shadow
 * the global `Array`). Read and write elements through `.array`, a typed-array view; guard
 * updates that several workers make to the same elements with its lock from `getLock()`.
 *
 * @typeParam T The type code.
 * @example
 * ```ts
 * import { SharedArray, Thread } from "@multiproc/multiproc";
 *
 * const squares = new SharedArray("f64", [1, 2, 3, 4]);
 * const t = new Thread({
 *   target: (squares: SharedArray<"f64">) => {
 *     for (let i = 0; i < squares.length; i++) squares.array[i] **= 2;
 *   },
 *   args: [squares],
 * });
 * t.start();
 * await t.join();
 * console.log([...squares.array]); // [1, 4, 9, 16]
 * ```
 */
export class SharedArray<T extends TypeName = TypeName> {
  /**
   * Creates a shared typed array.
   *
   * @param type A type code (`"i32"`, `"f64"`, …), a name, or one of Python's codes.
   * @param lengthOrValues The length (filled with zeros), or the initial values.
   * @param options `lock: false` for no lock, or a lock of your own.
   * @throws {TypeError} For an unknown type code, naming the valid ones, or when
   * `lengthOrValues` is neither a length nor an array of values.
   * @throws {RangeError} For a negative length, or a value that does not fit the type.
   */
  constructor(
    type: T,
    lengthOrValues: number | ArrayLike<ElementOf<T>>,
    options: SharedValueOptions = {},
  ) {
    const { lock } = checkOptions(options, "SharedArray", ["lock"]);
    {
      const code = typeCodeOf(type);
      let values: ArrayLike<unknown> | undefined;
      let length: number;
      if (typeof lengthOrValues === "number") {
        if (!Number.isInteger(lengthOrValues) || lengthOrValues < 0) {
          throw new RangeError(
            `'length' must be a non-negative integer: received ${describeValue(lengthOrValues)}`,
          );
        }
        length = lengthOrValues;
      } else if (
        typeof lengthOrValues === "object" && lengthOrValues !== null &&
        typeof lengthOrValues.length === "number"
      ) {
        values = lengthOrValues;
        length = values.length;
      } else {
        throw new TypeError(
          `'lengthOrValues' must be a length or an array of values: received ${
            describeValue(lengthOrValues)
          }`,
        );
      }
      newBytes(this, SHARED_ARRAY, code, length, lockOf(lock));
      if (values) {
        const view = viewOf(this) as { [i: number]: number | bigint };
        for (let i = 0; i < length; i++) view[i] = checkElement(code, values[i], `Value ${i}`);
      }
    }
  }

  /** The type code. */
  get type(): TypeCode {
    return handleOf<BytesHandle>(this).config.code;
  }

  /** The number of elements. */
  get length(): number {
    return handleOf<BytesHandle>(this).config.length;
  }

  /** The elements, as a typed array over the shared memory (a copy in a child process). */
  get array(): TypedArrayOf<T> {
    return viewOf<T>(this);
  }

  /**
   * The lock that guards this array.
   *
   * @returns The lock.
   * @throws {Error} When the array was created with `lock: false`.
   */
  getLock(): Lock | RLock {
    const { lock } = handleOf<BytesHandle>(this).config;
    if (!lock) throw new Error("This SharedArray was created with 'lock: false'");
    return lock;
  }

  /**
   * In a child process, sends the changes made so far to the parent; elsewhere, nothing to do.
   * Changes are also sent when the lock is released and when the task ends.
   */
  flush(): void {
    mirrorOf(this)?.send();
  }

  /**
   * In a child process, fetches the current elements from the parent; elsewhere, nothing to do.
   * This happens by itself each time the process acquires the array's lock.
   *
   * @returns A promise that resolves once the elements are current.
   */
  refresh(): Promise<void> {
    return mirrorOf(this)?.fetch() ?? Promise.resolve();
  }
}

const SHARED_ARRAY = bytesKind("shared-array", SharedArray);
