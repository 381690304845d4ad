/**
 * The encoding of arguments, results and thrown values between machines and runtimes: JSON text
 * that keeps what structured clone keeps (`undefined`, `NaN`, `-0`, `BigInt`, `Date`, `RegExp`,
 * `Map`, `Set`, typed arrays, `ArrayBuffer`, errors with their class, fields and cause, and objects
 * met twice or in a cycle). Both sides of the queue use it: the client, and the task runner on a
 * node.
 *
 * Rules this file keeps:
 * - It depends on no engine's serializer: a Node 20 client and a Deno node (different V8 versions)
 *   read each other's text.
 * - Strings, finite numbers, booleans and null stand for themselves; every other value is an array
 *   whose first element is a tag, so a plain value costs nothing to tag.
 * - What cannot cross (functions, symbols, shared objects, weak collections, promises) is refused
 *   at once with a TypeError that says where inside the value it sits.
 *
 * @module
 */
import type { SerializedError } from "../_protocol.ts";
import { deserializeError, serializeError } from "../_error_records.ts";
import { maybeHandleOf } from "../_shared.ts";
import { describeValue } from "../_checks.ts";

type Encoded = string | number | boolean | null | Encoded[];

const typedArrays: Record<string, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

/** Raised by {@linkcode encode} for a value that cannot cross; `path` says where it sits. */
export class UnsendableValueError extends TypeError {
  /** Where inside the value: `""` for the value itself, `.a[2]` for a nested one. */
  readonly path: string;
  /** The value that cannot cross. */
  readonly culprit: unknown;
  constructor(message: string, path: string, culprit: unknown) {
    super(message);
    this.name = "TypeError";
    this.path = path;
    this.culprit = culprit;
  }
}

/**
 * Encodes `value` as JSON text.
 *
 * @throws {UnsendableValueError} When the value holds something that cannot cross machines.
 */
export function encode(value: unknown): string {
  return JSON.stringify(new Encoder().encode(value, ""));
}

/** Decodes text made by {@linkcode encode}. */
export function decode(text: string): unknown {
  return new Decoder().decode(JSON.parse(text) as Encoded);
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

class Encoder {
  // Each object gets an index when first met, so that a second meeting (or a cycle) refers to it.
  #seen = new Map<object, number>();

  encode(value: unknown, path: string): Encoded {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        if (Number.isFinite(value) && !Object.is(value, -0)) return value;
        return ["n", String(Object.is(value, -0) ? "-0" : value)];
      case "undefined":
        return ["u"];
      case "bigint":
        return ["b", value.toString()];
      case "function":
      case "symbol":
        throw new UnsendableValueError(
          `${describeValue(value)} cannot be sent to another machine`,
          path,
          value,
        );
    }
    if (value === null) return null;
    const object = value as object;
    const index = this.#seen.get(object);
    if (index !== undefined) return ["r", index];
    this.#seen.set(object, this.#seen.size);
    if (maybeHandleOf(object) !== undefined) {
      throw new UnsendableValueError(
        `a shared ${
          object.constructor?.name ?? "object"
        } cannot be sent to another machine: shared objects live in one machine's memory; pass its contents, or use a DistributedPool task's result instead`,
        path,
        object,
      );
    }
    if (Array.isArray(object)) {
      const out: Encoded[] = ["a"];
      for (let i = 0; i < object.length; i++) out.push(this.encode(object[i], `${path}[${i}]`));
      return out;
    }
    if (object instanceof Date) return ["d", object.getTime()];
    if (object instanceof RegExp) return ["x", object.source, object.flags];
    if (object instanceof Map) {
      const out: Encoded[] = ["m"];
      for (const [key, entry] of object) {
        out.push(
          this.encode(key, `${path}.keys()`),
          this.encode(entry, `${path}.get(${describeValue(key)})`),
        );
      }
      return out;
    }
    if (object instanceof Set) {
      const out: Encoded[] = ["s"];
      for (const entry of object) out.push(this.encode(entry, `${path}.values()`));
      return out;
    }
    if (object instanceof ArrayBuffer) return ["B", toBase64(new Uint8Array(object))];
    if (ArrayBuffer.isView(object)) {
      const bytes = new Uint8Array(object.buffer, object.byteOffset, object.byteLength);
      const type = object instanceof DataView ? "DataView" : object.constructor.name;
      return ["t", type, toBase64(bytes)];
    }
    if (object instanceof Error) return ["e", this.#error(object, path)];
    if (
      object instanceof WeakMap || object instanceof WeakSet || object instanceof WeakRef ||
      object instanceof Promise
    ) {
      throw new UnsendableValueError(
        `${describeValue(object)} cannot be sent to another machine`,
        path,
        object,
      );
    }
    if (object instanceof Boolean || object instanceof Number || object instanceof String) {
      return ["p", this.encode(object.valueOf(), path)];
    }
    // Structured clone keeps own enumerable string keys of any other object, as a plain object.
    const out: Encoded[] = ["o"];
    for (const key of Object.keys(object)) {
      out.push(key, this.encode((object as Record<string, unknown>)[key], `${path}.${key}`));
    }
    return out;
  }

  #error(error: Error, path: string): Encoded {
    const record = serializeError(error);
    // The cause first, then the fields, in the order that the decoder meets them.
    let cause: Encoded = ["u"];
    const hasCause = "cause" in error;
    if (hasCause) {
      cause = this.#tryEncode(error.cause, `${path}.cause`) ?? String(error.cause);
    }
    // Pairs of key and encoded value, untagged: they are no object of their own.
    const fields: Encoded[] = [];
    for (const key of Object.keys(error)) {
      if (key === "cause" || key === "stack" || key === "message" || key === "name") continue;
      // A field that cannot cross is dropped, as structured clone of an error drops it.
      const field = this.#tryEncode((error as unknown as Record<string, unknown>)[key], path);
      if (field !== undefined) fields.push(key, field);
    }
    return [record.name, record.message, record.stack ?? null, hasCause, cause, fields];
  }

  /** Encodes `value`, or forgets what it met and gives undefined when it cannot cross. */
  #tryEncode(value: unknown, path: string): Encoded | undefined {
    const size = this.#seen.size;
    try {
      return this.encode(value, path);
    } catch {
      for (const [object, index] of this.#seen) if (index >= size) this.#seen.delete(object);
      return undefined;
    }
  }
}

class Decoder {
  #objects: unknown[] = [];

  decode(value: Encoded): unknown {
    if (!Array.isArray(value)) return value;
    switch (value[0]) {
      case "n":
        return Number(value[1]);
      case "u":
        return undefined;
      case "b":
        return BigInt(value[1] as string);
      case "r":
        return this.#objects[value[1] as number];
      case "a": {
        const out: unknown[] = [];
        this.#objects.push(out);
        for (let i = 1; i < value.length; i++) out.push(this.decode(value[i]));
        return out;
      }
      case "d":
        return this.#keep(new Date(value[1] as number));
      case "x":
        return this.#keep(new RegExp(value[1] as string, value[2] as string));
      case "m": {
        const out = this.#keep(new Map());
        for (let i = 1; i < value.length; i += 2) {
          out.set(this.decode(value[i]), this.decode(value[i + 1]));
        }
        return out;
      }
      case "s": {
        const out = this.#keep(new Set());
        for (let i = 1; i < value.length; i++) out.add(this.decode(value[i]));
        return out;
      }
      case "B":
        return this.#keep(fromBase64(value[1] as string).buffer);
      case "t": {
        const bytes = fromBase64(value[2] as string);
        const type = value[1] as string;
        if (type === "DataView") return this.#keep(new DataView(bytes.buffer));
        const Ctor = Object.hasOwn(typedArrays, type) ? typedArrays[type] : Uint8Array;
        return this.#keep(new Ctor(bytes.buffer as ArrayBuffer));
      }
      case "p": {
        const index = this.#objects.length;
        this.#objects.push(undefined);
        const boxed = Object(this.decode(value[1]));
        this.#objects[index] = boxed;
        return boxed;
      }
      case "e":
        return this.#error(value[1] as Encoded[]);
      case "o": {
        const out: Record<string, unknown> = {};
        this.#objects.push(out);
        this.#defineOwn(out, value, 1);
        return out;
      }
    }
    throw new TypeError(`Cannot decode a value tagged ${describeValue(value[0])}`);
  }

  #keep<T>(object: T): T {
    this.#objects.push(object);
    return object;
  }

  #error(parts: Encoded[]): Error {
    const [name, message, stack, hasCause, cause, fields] = parts;
    const record: SerializedError = {
      multiprocError: true,
      name: name as string,
      message: message as string,
      stack: (stack as string | null) ?? undefined,
    };
    const index = this.#objects.length;
    this.#objects.push(undefined);
    const error = deserializeError(record);
    this.#objects[index] = error;
    if (hasCause) {
      Object.defineProperty(error, "cause", {
        value: this.decode(cause),
        writable: true,
        configurable: true,
      });
    }
    this.#defineOwn(error, fields as Encoded[], 0);
    return error;
  }

  /**
   * Sets the key and value pairs of `pairs`, from `start` on, as own enumerable keys of `target`,
   * each value decoded in turn. Through defineProperty, so that a key such as "__proto__" stays an
   * own key.
   */
  #defineOwn(target: object, pairs: Encoded[], start: number): void {
    for (let i = start; i < pairs.length; i += 2) {
      Object.defineProperty(target, pairs[i] as string, {
        value: this.decode(pairs[i + 1]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
}
