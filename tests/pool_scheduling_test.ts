/**
 * How ThreadPool and Pool schedule: a task handed ahead to a busy worker and then cancelled never
 * starts, no task waits while a worker idles, `stats().queueLength` counts every waiting task, and
 * the scheduling options (`minWorkers`, `concurrentTasksPerWorker`, `queueStrategy`, `timeoutMs`
 * from the start) do what they say. Real workers and processes; timings only as wide bounds.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getContext, Pool, Process, ThreadPool, TimeoutError, transfer } from "../mod.ts";
import { waitUntil } from "./_helpers.ts";
import {
  byteLength,
  instant,
  meet,
  postOnPort,
  record,
  schedulingTargetsUrl,
  spin,
} from "./fixtures/scheduling_targets.ts";

const module = schedulingTargetsUrl;
type AnyPool = ThreadPool | Pool;
type Maker = (options?: ConstructorParameters<typeof Pool>[0]) => AnyPool;

interface Kind {
  label: string;
  make: Maker;
  processes: boolean;
}

const kinds: Kind[] = [
  { label: "ThreadPool", make: (o) => new ThreadPool({ module, ...o }), processes: false },
  {
    label: "Pool",
    make: (o) => new Pool({ module, startMethod: "spawn", ...o }),
    processes: true,
  },
  {
    label: "Pool (forkserver)",
    make: (o) => new (getContext("forkserver").Pool)({ module, ...o }),
    processes: true,
  },
];

function register(kind: Kind, name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: `${kind.label} ${name}`,
    fn,
    // Forkserver spares outlive each test by design.
    sanitizeResources: !kind.processes,
    sanitizeOps: !kind.processes,
  });
}

function scratchFile(): { path: string; lines: () => string[]; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "multiproc-scheduling-"));
  const path = join(dir, "ran.txt");
  return {
    path,
    lines: () => existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Makes tasks measure as short, so that the pool hands work ahead of time. */
async function warmUp(pool: AnyPool): Promise<void> {
  await Promise.all(Array.from({ length: 200 }, (_, i) => pool.apply(instant, [i])));
}

for (const kind of kinds) {
  const { make } = kind;

  register(
    kind,
    "never starts a task handed ahead to a busy worker and then cancelled",
    async () => {
      const file = scratchFile();
      try {
        await using pool = make({ size: 1 });
        await warmUp(pool);
        const busy = pool.submit(spin, [400]);
        await waitUntil(() => pool.stats().busyWorkers === 1, 5000);
        const cancelled = pool.submit(record, [file.path, "cancelled"]);
        const controller = new AbortController();
        const aborted = pool.apply(record, [file.path, "aborted"], { signal: controller.signal });
        const kept = pool.submit(record, [file.path, "kept"]);
        // Let the dispatch hand them ahead to the busy worker.
        await new Promise((resolve) => setTimeout(resolve, 50));
        assertEquals(pool.stats().queueLength, 3, "three tasks wait behind the busy one");
        assert(cancelled.cancel(), "cancel() of a task that has not begun");
        controller.abort(new Error("not wanted"));
        await assertRejects(() => aborted, Error, "not wanted");
        assertEquals(await busy, 400);
        assertEquals(await kept, "kept");
        // Any task that was going to run has run by now.
        assertEquals(await pool.apply(record, [file.path, "after"]), "after");
        assertEquals(file.lines(), ["kept", "after"]);
        assert(cancelled.cancelled());
      } finally {
        file.remove();
      }
    },
  );

  register(kind, "lets no task wait behind a long one while a worker idles", async () => {
    await using pool = make({ size: 2, minWorkers: 2 });
    await warmUp(pool);
    const started = performance.now();
    const long = pool.apply(spin, [1500]);
    let longDone = 0;
    long.then(() => longDone = performance.now());
    const doneAt: number[] = [];
    const quick = [1, 2, 3].map((n) =>
      pool.apply(instant, [n]).then((value) => {
        doneAt.push(performance.now() - started);
        return value;
      })
    );
    assertEquals(await Promise.all(quick), [1, 2, 3]);
    await long;
    for (const at of doneAt) {
      assert(at < 750, `an instant task ended ${at.toFixed(0)} ms after the start`);
    }
    assert(longDone - started >= 1400, "the long task ran its length");
  });

  register(kind, "stats().queueLength counts tasks that a busy worker holds", async () => {
    await using pool = make({ size: 1 });
    await warmUp(pool);
    const busy = pool.apply(spin, [400]);
    await waitUntil(() => pool.stats().busyWorkers === 1, 5000);
    const waiting = [1, 2, 3].map((n) => pool.apply(instant, [n]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stats = pool.stats();
    assertEquals(stats.queueLength, 3);
    assertEquals(stats.busyWorkers, 1);
    await busy;
    assertEquals(await Promise.all(waiting), [1, 2, 3]);
    assertEquals(pool.stats().queueLength, 0);
  });

  register(kind, "starts minWorkers at construction and keeps them", async () => {
    await using pool = make({ size: 3, minWorkers: 2, idleTimeoutMs: 10 });
    assertEquals(pool.stats().workers, 2, "started by the constructor");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertEquals(pool.stats().workers, 2, "idleTimeoutMs keeps minWorkers");
    assertEquals(await pool.map(instant, [1, 2, 3, 4]), [1, 2, 3, 4]);
    assertThrows(() => make({ size: 2, minWorkers: 3 }), RangeError, "'minWorkers'");
    assertThrows(() => make({ minWorkers: -1 }), RangeError, "'minWorkers'");
  });

  register(kind, "with concurrentTasksPerWorker runs awaiting tasks side by side", async () => {
    await using pool = make({ size: 1, concurrentTasksPerWorker: 2 });
    const [a, b] = await Promise.all([
      pool.apply(meet, ["a", "b", 5000]),
      pool.apply(meet, ["b", "a", 5000]),
    ]);
    assert(a && b, "both tasks met inside the one worker");
    await using single = make({ size: 1 });
    const first = await single.apply(meet, ["c", "d", 200]);
    assert(!first, "one task at a time: the second has not begun while the first waits");
    assertThrows(
      () => make({ concurrentTasksPerWorker: 0 }),
      RangeError,
      "'concurrentTasksPerWorker'",
    );
  });

  register(kind, "with queueStrategy 'lifo' runs the newest waiting task first", async () => {
    const file = scratchFile();
    try {
      await using pool = make({ size: 1, queueStrategy: "lifo" });
      const busy = pool.apply(spin, [300]);
      await waitUntil(() => pool.stats().busyWorkers === 1, 5000);
      const labels = ["a", "b", "c"];
      const tasks = labels.map((label) => pool.apply(record, [file.path, label]));
      await busy;
      await Promise.all(tasks);
      assertEquals(file.lines(), ["c", "b", "a"]);
      assertThrows(() => make({ queueStrategy: "random" as "fifo" }), TypeError, "'queueStrategy'");
    } finally {
      file.remove();
    }
  });

  register(kind, "counts timeoutMs from when the task begins", async () => {
    await using pool = make({ size: 1 });
    const busy = pool.apply(spin, [600]);
    // Waits 600 ms behind the busy task, then runs for a few: well within 300 ms of running.
    const waited = pool.apply(instant, ["ran"], { timeoutMs: 300 });
    assertEquals(await waited, "ran");
    await busy;
    await assertRejects(
      () => pool.apply(spin, [2000], { timeoutMs: 200 }),
      TimeoutError,
      "200 ms",
    );
  });

  register(kind, "refuses initArgs that cannot be cloned at construction", () => {
    const error = assertThrows(
      () => make({ initializer: instant, initArgs: [1, { f: () => 1 }] }),
      TypeError,
      "'initArgs' argument 1 (at .f)",
    );
    assertStringIncludes(error.message, "not cloneable");
    return Promise.resolve();
  });
}

Deno.test("ThreadPool moves a transferred MessagePort to the task", async () => {
  await using pool = new ThreadPool({ size: 1, module });
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<unknown>((resolve) => port1.onmessage = (e) => resolve(e.data));
  assertEquals(await pool.apply(postOnPort, [transfer(port2, [port2]), "hello"]), true);
  assertEquals(await received, "hello");
  port1.close();
});

Deno.test("Pool and Process refuse a SharedArrayBuffer, naming Value, SharedArray and Thread", async () => {
  const shared = new Uint8Array(new SharedArrayBuffer(8));
  await using pool = new Pool({ size: 1, module, startMethod: "spawn" });
  const error = await assertRejects(() => pool.apply(byteLength, [shared]), TypeError);
  for (const word of ["argument 0", "SharedArrayBuffer", "Value", "SharedArray", "Thread"]) {
    assertStringIncludes(error.message, word);
  }
  assertThrows(
    () => pool.submit(byteLength, [{ nested: [shared.buffer] }] as unknown as [Uint8Array]),
    TypeError,
    "(at .nested[0])",
  );
  const process = new Process({ target: byteLength, args: [shared], module });
  assertThrows(() => process.start(), TypeError, "SharedArrayBuffer");
  // A thread shares it.
  await using threads = new ThreadPool({ size: 1, module });
  assertEquals(await threads.apply(byteLength, [shared]), 8);
  // The pool still works.
  assertEquals(await pool.apply(byteLength, [new Uint8Array(3)]), 3);
});
