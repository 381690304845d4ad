import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { Lock, Process, SharedArray, Thread, Value } from "../mod.ts";
import { addUnderLock } from "./fixtures/targets.ts";

type Kind = typeof Thread | typeof Process;

async function runAll(
  Kind: Kind,
  count: number,
  target: (...args: never[]) => unknown,
  args: unknown[],
) {
  const workers = Array.from(
    { length: count },
    (_, i) => new Kind({ target: target as (...args: unknown[]) => unknown, args: [...args, i] }),
  );
  for (const worker of workers) worker.start();
  for (const worker of workers) await worker.join();
  for (const worker of workers) assertEquals(worker.error, undefined, String(worker.error?.stack));
  return workers.map((worker) => worker.result);
}

Deno.test("Value under its lock: N threads adding 1 M times each give exactly N×M", async () => {
  const total = new Value("i32", 0);
  await runAll(Thread, 4, addUnderLock, [total, 500]);
  assertEquals(total.value, 2000);
});

Deno.test("Value under its lock: N processes adding 1 M times each give exactly N×M", async () => {
  const total = new Value("i32", 0);
  await runAll(Process, 3, addUnderLock, [total, 40]);
  assertEquals(total.value, 120);
});

Deno.test("Value's lock works with using, and threads and processes share one value", async () => {
  const total = new Value("f64", 0.5);
  // Targets cannot use `using` themselves: compiled for Node, it calls helpers from outside them.
  const add = async (total: Value<"f64">, times: number) => {
    for (let i = 0; i < times; i++) {
      const held = await total.getLock().hold();
      try {
        total.value += 1;
      } finally {
        held[Symbol.dispose]();
      }
    }
  };
  const workers = [
    new Thread({ target: add, args: [total, 100] }),
    new Process({ target: add, args: [total, 30] }),
  ];
  for (const worker of workers) worker.start();
  for (let i = 0; i < 50; i++) {
    using _held = await total.getLock().hold();
    total.value += 1;
  }
  for (const worker of workers) await worker.join();
  assertEquals(total.value, 180.5);
});

Deno.test("SharedArray written in threads is seen by the parent, in place", async () => {
  const squares = new SharedArray("f64", [1, 2, 3, 4]);
  await runAll(Thread, 2, (squares: SharedArray<"f64">, half: number) => {
    for (let i = half * 2; i < half * 2 + 2; i++) squares.array[i] **= 2;
  }, [squares]);
  assertEquals([...squares.array], [1, 4, 9, 16]);
});

Deno.test("SharedArray written by processes in disjoint parts merges their changes", async () => {
  const cells = new SharedArray("i32", 6);
  await runAll(Process, 3, (cells: SharedArray<"i32">, part: number) => {
    cells.array[part * 2] = part + 1;
    cells.array[part * 2 + 1] = (part + 1) * 10;
  }, [cells]);
  assertEquals([...cells.array], [1, 10, 2, 20, 3, 30]);
});

Deno.test("Value passed twice to one thread is one object there", async () => {
  const value = new Value("u8", 7);
  const [same] = await runAll(
    Thread,
    1,
    (a: Value, b: Value, list: Value[]) => a === b && a === list[0],
    [
      value,
      value,
      [value],
    ],
  );
  assert(same);
});

Deno.test("Value rejects an unknown type code and lists the valid ones", () => {
  const error = assertThrows(() => new Value("i33" as "i32", 0), TypeError);
  assertStringIncludes(error.message, 'Unknown type code "i33"');
  assertStringIncludes(error.message, "'i32'");
  assertStringIncludes(error.message, "'f64'");
});

Deno.test("Value rejects a value out of range for its type", () => {
  assertThrows(() => new Value("u8", 256), RangeError, "out of range for 'u8'");
  assertThrows(() => new Value("i32", 1.5), RangeError, "'i32'");
  const small = new Value("i8", 0);
  assertThrows(() => small.value = -129, RangeError, "-129");
  assertThrows(() => new Value("i64", 2n ** 63n), RangeError, "'i64'");
  assertEquals(new Value("i64", 2n ** 62n).value, 2n ** 62n);
  assertEquals(new Value("d", 0.25).value, 0.25);
});

Deno.test("SharedArray rejects a negative length, and Value without a lock has none", () => {
  assertThrows(() => new SharedArray("i32", -1), RangeError, "received -1");
  assertThrows(() => new Value("i32", 0, { lock: false }).getLock(), Error, "'lock: false'");
  const lock = new Lock();
  assert(new Value("i32", 0, { lock }).getLock() === lock);
});

Deno.test("SharedArray too large for memory says how many bytes it asked for and what to do", () => {
  const error = assertThrows(() => new SharedArray("i32", 1e12), RangeError);
  assertStringIncludes(error.message, "1000000000000 elements of 'i32' (4000000000000 bytes)");
  assertStringIncludes(error.message, "use a smaller length");
  assertThrows(() => new SharedArray("i32", 4, { lokc: false } as never), TypeError, "'lock'");
  assertThrows(() => new Value("i32", 1, { lock: 5 } as never), TypeError, "received 5");
});
