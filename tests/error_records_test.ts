/**
 * How errors and other thrown values become records that cross to the parent, and come back
 * (src/_error_records.ts), and how arguments that structured clone refuses are found before they
 * are sent (src/_clone_check.ts). The records must survive structured clone, as the channel does.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
} from "@std/assert";
import { captureStderr } from "./_helpers.ts";
import {
  deserializeError,
  deserializeThrown,
  registerErrorClassByName,
  serializeError,
} from "../src/_error_records.ts";
import { findUncloneableArgument } from "../src/_clone_check.ts";
import * as library from "../mod.ts";
import { TimeoutError } from "../mod.ts";

/** What the parent gets back for `thrown`, through a structured clone as over the channel. */
function roundTrip(thrown: unknown): unknown {
  return deserializeThrown(structuredClone(serializeError(thrown)));
}

Deno.test("An error record keeps the class, message, stack, cause chain and fields", () => {
  const inner = new RangeError("inner");
  const error = Object.assign(new TypeError("outer", { cause: inner }), {
    code: "E_OUTER",
    detail: { n: 1 },
    callback: () => 1,
  });
  const back = roundTrip(error);
  assertInstanceOf(back, TypeError);
  assertEquals(back.message, "outer");
  assertEquals(back.stack, error.stack);
  assertInstanceOf(back.cause, RangeError);
  assertEquals((back.cause as Error).message, "inner");
  assertEquals((back as unknown as { code: string }).code, "E_OUTER");
  assertEquals((back as unknown as { detail: unknown }).detail, { n: 1 });
  // A field that cannot cross is left out rather than failing the whole record.
  assert(!("callback" in back));
});

Deno.test("An error record keeps a cause that is no Error as it was", () => {
  const back = roundTrip(new Error("x", { cause: { code: 5 } })) as Error;
  assertEquals(back.cause, { code: 5 });
  const unsendable = roundTrip(new Error("x", { cause: () => 1 })) as Error;
  assertEquals(typeof unsendable.cause, "string");
});

Deno.test("An error whose cause is itself ends its chain rather than looping", () => {
  const error = new Error("loop");
  error.cause = error;
  let back = roundTrip(error) as Error;
  let depth = 0;
  while (back.cause instanceof Error) {
    back = back.cause;
    depth++;
  }
  assert(depth <= 16, `depth ${depth}`);
});

Deno.test("Multiproc's own errors and registered classes come back as themselves", () => {
  assertInstanceOf(roundTrip(new TimeoutError("late")), TimeoutError);
  class LocalError extends Error {
    override name = "LocalErrorForRecordsTest";
  }
  const unregistered = roundTrip(new LocalError("a")) as Error;
  assert(!(unregistered instanceof LocalError));
  assertEquals(unregistered.name, "LocalErrorForRecordsTest");
  registerErrorClassByName({ name: "LocalErrorForRecordsTest", prototype: LocalError.prototype });
  const registered = roundTrip(new LocalError("b"));
  assertInstanceOf(registered, LocalError);
  assertEquals(registered.message, "b");
});

Deno.test("Every error class that the library exports comes back as itself", () => {
  const classes = Object.values(library).filter((value) =>
    typeof value === "function" && value.prototype instanceof Error
  ) as (new (message: string, options: never) => Error)[];
  assert(classes.length >= 10, `found ${classes.length}`);
  for (const ErrorClass of classes) {
    const error = new ErrorClass("m", { ownerId: 1, exitCode: 1 } as never);
    const back = roundTrip(error);
    assertInstanceOf(back, ErrorClass);
    assertEquals((back as Error).name, error.name);
  }
});

Deno.test("A thrown value that is no Error comes back as itself", () => {
  for (const value of [{ code: 5 }, "text", 42, 0, null, undefined, false, 10n, [1, [2]]]) {
    assertEquals(roundTrip(value), value);
  }
  const date = new Date(0);
  assertEquals(roundTrip(date), date);
});

Deno.test("A thrown value that cannot be cloned comes back as an Error that shows it", () => {
  const back = roundTrip({ callback: () => 1 });
  assertInstanceOf(back, Error);
  assertEquals(
    back.message,
    "Non-error value thrown, which cannot be sent: object Object with keys 'callback'",
  );
  const symbol = roundTrip(Symbol("s"));
  assertInstanceOf(symbol, Error);
  assertEquals(symbol.message, "Non-error value thrown, which cannot be sent: Symbol(s)");
  const bare = roundTrip(Object.assign(Object.create(null), { f: () => 1 }));
  assertInstanceOf(bare, Error);
});

Deno.test("serializeError() never throws, whatever was thrown", () => {
  const hostile = new Proxy({}, {
    get() {
      throw new Error("get");
    },
    ownKeys() {
      throw new Error("ownKeys");
    },
    getPrototypeOf() {
      throw new Error("getPrototypeOf");
    },
  });
  const record = serializeError(hostile);
  assertEquals(record.multiprocError, true);
  structuredClone(record);
  const badError = new Error("x");
  Object.defineProperty(badError, "code", {
    enumerable: true,
    get() {
      throw new Error("code");
    },
  });
  assertInstanceOf(deserializeError(structuredClone(serializeError(badError))), Error);
});

Deno.test("findUncloneableArgument() names the argument and the path to the culprit", () => {
  const fn = () => 1;
  assertEquals(findUncloneableArgument([1, "a", { b: [0, 1] }]), undefined);
  assertEquals(findUncloneableArgument([1, { a: [0, fn] }]), {
    index: 1,
    path: ".a[1]",
    culprit: fn,
  });
  const key = { k: 1 };
  assertEquals(
    findUncloneableArgument([new Map<unknown, unknown>([["x", 1], ["y", { deep: fn }]])]),
    { index: 0, path: '.get("y").deep', culprit: fn },
  );
  assertEquals(findUncloneableArgument([new Map([[fn, 1]])])?.path, ".keys()");
  assertEquals(findUncloneableArgument([new Set([1, key, fn])])?.path, ".values()");
  const symbol = Symbol("s");
  assertEquals(findUncloneableArgument([{ s: symbol }])?.culprit, symbol);
  for (const refused of [new WeakMap(), new WeakSet(), Promise.resolve(1), new WeakRef(key)]) {
    assertStrictEquals(findUncloneableArgument([[refused]])?.culprit, refused);
  }
});

Deno.test("findUncloneableArgument() passes what structured clone takes, cycles included", () => {
  const cyclic: Record<string, unknown> = { n: 1 };
  cyclic.self = cyclic;
  const values = [
    cyclic,
    new Uint8Array(1 << 20),
    new ArrayBuffer(8),
    new Date(0),
    /re/g,
    new Error("e"),
    new Map([[1, new Set([2])]]),
    [[[]]],
  ];
  assertEquals(findUncloneableArgument(values), undefined);
  for (const value of values) structuredClone(value);
});

Deno.test({
  name:
    "An error that holds shared memory comes back from a Process and a Pool without it, instead of being lost",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Structured clone takes a SharedArrayBuffer, a child process's channel does not: a record
    // that held one failed to send, and the error (or the whole pool task) was lost.
    const throwShared = () => {
      throw Object.assign(new Error("holds shared memory"), {
        code: 7,
        buf: new SharedArrayBuffer(4),
      });
    };
    const throwSharedValue = () => {
      throw { code: 5, view: new Int32Array(new SharedArrayBuffer(8)) };
    };
    const child = new library.Process({ target: throwShared });
    const { stderr } = await captureStderr(async () => {
      child.start();
      await child.join();
    });
    assertStringIncludes(stderr, "holds shared memory");
    assertEquals(child.exitCode, 1);
    assertInstanceOf(child.error, Error);
    assertEquals(child.error.message, "holds shared memory");
    assertEquals((child.error as Error & { code?: number }).code, 7);
    assertEquals("buf" in child.error, false);
    await using pool = new library.Pool({ size: 1 });
    const error = await assertRejects(() => pool.submit(throwShared));
    assertEquals([(error as Error).message, (error as { code?: number }).code], [
      "holds shared memory",
      7,
    ]);
    const value = await assertRejects(() => pool.submit(throwSharedValue));
    assertInstanceOf(value, Error);
    assertStringIncludes(value.message, "'view'");
    // The worker and its channel are whole: the next task runs.
    assertEquals(await pool.submit((x: number) => x + 1, [1]), 2);
  },
});
