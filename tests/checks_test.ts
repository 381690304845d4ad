/**
 * The checks of arguments and options: every public options object refuses unknown keys and
 * non-objects, values are shown as written, and timeouts of `Infinity` or past `setTimeout`'s limit
 * wait rather than fire at once. Real threads, processes and pools throughout.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  asCompleted,
  Barrier,
  BoundedSemaphore,
  Condition,
  JoinableQueue,
  Pipe,
  Pool,
  Process,
  Queue,
  Semaphore,
  setStartMethod,
  SharedArray,
  Thread,
  ThreadPool,
  Value,
  wait,
} from "../mod.ts";
import { checkOptions, describeValue, nearestName, setLongTimeout } from "../src/_checks.ts";
import { add, delayed, targetsUrl } from "./fixtures/targets.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const BEYOND_SET_TIMEOUT = 2 ** 31;

Deno.test("describeValue() shows strings quoted and numbers as written", () => {
  assertEquals(describeValue("10"), '"10"');
  assertEquals(describeValue(10), "10");
  assertEquals(describeValue(10n), "10n");
  assertEquals(describeValue(-0), "-0");
  assertEquals(describeValue(Infinity), "Infinity");
  assertEquals(describeValue(null), "null");
  assertEquals(describeValue([1, 2]), "array of length 2");
  assertEquals(describeValue(new Map()), "object Map");
  assertEquals(describeValue(function named() {}), "function named");
});

Deno.test("nearestName() finds a likely typo and nothing for a stranger", () => {
  const known = ["size", "maxQueue", "timeoutMs", "args", "module"];
  assertEquals(nearestName("sise", known), "size");
  assertEquals(nearestName("argz", known), "args");
  assertEquals(nearestName("tiemoutMs", known), "timeoutMs");
  assertEquals(nearestName("maxqueue", known), "maxQueue");
  assertEquals(nearestName("colour", known), undefined);
});

Deno.test("checkOptions() refuses a number, a boolean, null and an array", () => {
  for (const value of [1000, false, null, [1]]) {
    const error = assertThrows(
      () => checkOptions(value as never, "Queue.get()", ["timeoutMs"], "pass { timeoutMs: 1000 }"),
      TypeError,
      "Queue.get() options must be an object",
    );
    assertStringIncludes(error.message, "pass { timeoutMs: 1000 }");
  }
  assertEquals(checkOptions(undefined, "x", []), {});
});

Deno.test("setLongTimeout() never fires for Infinity, waits past 2**31 ms, and clears", async () => {
  let fired = 0;
  const never = setLongTimeout(() => fired++, Infinity);
  const long = setLongTimeout(() => fired++, BEYOND_SET_TIMEOUT);
  const cleared = setLongTimeout(() => fired++, 1);
  cleared.clear();
  await sleep(50);
  assertEquals(fired, 0);
  never.clear();
  long.clear();
  await new Promise<void>((resolve) => setLongTimeout(resolve, 1));
  assertThrows(() => setLongTimeout(() => {}, -1), RangeError);
});

for (const Kind of [Thread, Process]) {
  const kind = Kind.name;

  Deno.test(`${kind} refuses an unknown option, naming the nearest known one`, () => {
    const error = assertThrows(
      () => new Kind({ target: add, argz: [1, 2] } as never),
      TypeError,
      "'argz'",
    );
    assertStringIncludes(error.message, "did you mean 'args'");
  });

  Deno.test(`${kind} refuses options that are not an object`, () => {
    assertThrows(() => new Kind(5 as never), TypeError, "options must be an object: received 5");
  });

  Deno.test(`${kind} names a 'module' that is no URL or path`, () => {
    assertThrows(
      () => new Kind({ target: add, module: 5 as never }),
      TypeError,
      "'module' must be a URL or a path of a module: received 5",
    );
  });

  Deno.test(`${kind} shows a string where a boolean goes as a string`, () => {
    assertThrows(
      () => new Kind({ target: add, daemon: "true" as never, module: targetsUrl }),
      TypeError,
      `'daemon' must be a boolean: received "true"`,
    );
  });

  Deno.test(`${kind} refuses a name that is not a string, at creation and when set`, () => {
    assertThrows(() => new Kind({ target: add, name: 5 as never }), TypeError, "'name'");
    const worker = new Kind({ target: add, args: [1, 2], module: targetsUrl });
    assertThrows(() => worker.name = 5 as never, TypeError, "'name' must be a string: received 5");
    assertThrows(() => worker.name = undefined as never, TypeError, "received undefined");
    worker.name = "renamed";
    assertEquals(worker.name, "renamed");
  });

  Deno.test(`${kind}.join() refuses a timeout that is not a number with a TypeError`, async () => {
    const worker = new Kind({ target: add, args: [1, 2], module: targetsUrl });
    worker.start();
    await assertRejects(() => worker.join("10" as never), TypeError, `received "10"`);
    await assertRejects(() => worker.join(NaN), RangeError, "'timeoutMs'");
    await worker.join();
  });

  Deno.test(`${kind}.join(Infinity) and join(2**31) wait for the end`, async () => {
    for (const timeoutMs of [Infinity, BEYOND_SET_TIMEOUT]) {
      const worker = new Kind({ target: delayed, args: [1, 300], module: targetsUrl });
      worker.start();
      await worker.join(timeoutMs);
      assert(!worker.isAlive(), `join(${timeoutMs}) returned while alive`);
      assertEquals(worker.result, 1);
    }
  });
}

Deno.test("Process refuses a maxHeapMb that V8 cannot take", () => {
  for (const maxHeapMb of [1e21, 2 ** 53]) {
    assertThrows(
      () => new Process({ target: add, maxHeapMb }),
      RangeError,
      "'maxHeapMb' must be a positive integer of megabytes up to",
    );
  }
  assertThrows(
    () => new Process({ target: add, maxHeapMb: "64" as never }),
    TypeError,
    `received "64"`,
  );
  assertThrows(() => new Pool({ maxHeapMb: 1e21 }), RangeError, "'maxHeapMb'");
});

for (const Kind of [ThreadPool, Pool]) {
  const kind = Kind.name;

  Deno.test(`${kind} refuses an unknown option, naming the nearest known one`, () => {
    const error = assertThrows(() => new Kind({ sise: 4 } as never), TypeError, "'sise'");
    assertStringIncludes(error.message, "did you mean 'size'");
    assertThrows(() => new Kind({ colour: "red" } as never), TypeError, "its options are 'size'");
    assertThrows(
      () => new Kind({ processes: 4 } as never),
      TypeError,
      "did you mean 'size', as multiproc names Python's 'processes'?",
    );
    assertThrows(() => new Kind({ maxtasksperchild: 4 } as never), TypeError, "'maxTasksPerChild'");
    assertThrows(() => new Kind(4 as never), TypeError, "received 4; pass { size: 4 }");
  });

  Deno.test(`${kind} shows a string where a number goes as a string`, () => {
    assertThrows(
      () => new Kind({ size: "10" as never }),
      TypeError,
      `'size' must be a positive integer: received "10"`,
    );
  });
}

Deno.test("ThreadPool refuses 'startMethod', which only Pool takes", () => {
  assertThrows(() => new ThreadPool({ startMethod: "spawn" } as never), TypeError, "'startMethod'");
});

Deno.test("ThreadPool task calls refuse unknown options and non-objects", async () => {
  await using pool = new ThreadPool({ size: 1, module: targetsUrl });
  assertThrows(
    () => pool.submit(add, [1, 2], { timeout: 10 } as never),
    TypeError,
    "did you mean 'timeoutMs'",
  );
  await assertRejects(() => pool.apply(add, [1, 2], 1000 as never), TypeError, "received 1000");
  await assertRejects(
    () => pool.map((x: number) => x, [1], 8 as never),
    TypeError,
    "pass { chunksize: 8 }",
  );
  await assertRejects(
    () => pool.map((x: number) => x, [1], { chunkSize: 2 } as never),
    TypeError,
    "did you mean 'chunksize'",
  );
  assertThrows(
    () => pool.imap((x: number) => x, [1], { bufferSize: 2 } as never),
    TypeError,
    "'buffersize'",
  );
  // map() takes no buffersize: only imap() runs ahead of its consumer.
  await assertRejects(() => pool.map((x: number) => x, [1], { buffersize: 2 } as never), TypeError);
});

Deno.test("ThreadPool.submit() with timeoutMs Infinity or 2**31 runs to the end", async () => {
  await using pool = new ThreadPool({ size: 2, module: targetsUrl });
  const results = await Promise.all([
    pool.submit(delayed, ["a", 200], { timeoutMs: Infinity }),
    pool.submit(delayed, ["b", 200], { timeoutMs: BEYOND_SET_TIMEOUT }),
  ]);
  assertEquals(results, ["a", "b"]);
});

Deno.test("Pool.submit() with timeoutMs Infinity runs to the end", async () => {
  await using pool = new Pool({ size: 1, module: targetsUrl });
  assertEquals(await pool.submit(delayed, ["a", 100], { timeoutMs: Infinity }), "a");
});

Deno.test("ThreadPool with idleTimeoutMs Infinity keeps its workers", async () => {
  await using pool = new ThreadPool({ size: 1, idleTimeoutMs: Infinity, module: targetsUrl });
  assertEquals(await pool.apply(add, [1, 2]), 3);
  await sleep(50);
  assertEquals(pool.stats().workers, 1);
});

Deno.test("wait() and asCompleted() with timeoutMs Infinity or 2**31 wait for the futures", async () => {
  for (const timeoutMs of [Infinity, BEYOND_SET_TIMEOUT]) {
    const late = sleep(100).then(() => "late");
    const { done, notDone } = await wait([late], { timeoutMs });
    assertEquals([done.size, notDone.size], [1, 0]);
    const seen: string[] = [];
    for await (const p of asCompleted([sleep(100).then(() => "x")], { timeoutMs })) {
      seen.push(await p);
    }
    assertEquals(seen, ["x"]);
  }
  await assertRejects(() => wait([], { timeout: 5 } as never), TypeError, "'timeoutMs'");
  assertThrows(() => asCompleted([], { timeoutMS: 5 } as never), TypeError, "'timeoutMs'");
});

Deno.test("Shared objects refuse unknown options and options that are not objects", () => {
  assertThrows(() => new Queue({ maxSize: 2 } as never), TypeError, "did you mean 'maxsize'");
  assertThrows(() => new JoinableQueue({ max: 2 } as never), TypeError, "'max'");
  assertThrows(() => new Semaphore({ valeu: 2 } as never), TypeError, "did you mean 'value'");
  assertThrows(() => new BoundedSemaphore({ vlaue: 2 } as never), TypeError, "'value'");
  assertThrows(() => new Condition({ lok: 1 } as never), TypeError, "did you mean 'lock'");
  assertThrows(() => new Barrier(2, { timeout: 5 } as never), TypeError, "'timeoutMs'");
  assertThrows(() => new Barrier(2, { timeoutMs: "5" } as never), TypeError, `received "5"`);
  assertThrows(() => new Value("i32", 0, { locked: true } as never), TypeError, "'lock'");
  assertThrows(() => new SharedArray("i32", 2, { lck: true } as never), TypeError, "'lock'");
  assertThrows(() => Pipe({ duplx: false } as never), TypeError, "did you mean 'duplex'");
  assertThrows(() => Pipe(5 as never), TypeError, "received 5");
  assertThrows(() => setStartMethod("spawn", true as never), TypeError, "pass { force: true }");
  assertThrows(
    () => setStartMethod("spawn", { froce: true } as never),
    TypeError,
    "did you mean 'force'",
  );
});
