/**
 * ThreadPool and Pool on real workers and processes: the pool API's shared semantics
 * (`_pool_behaviour.ts`, which DistributedPool runs too) and what local workers add, registered once
 * for each kind (and a few again under forkserver).
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import process from "node:process";
import {
  BrokenPoolError,
  CancelledError,
  getContext,
  Pool,
  Process,
  registerErrorClass,
  ThreadPool,
  transfer,
  WorkerCrashedError,
} from "../mod.ts";
import { captureStderr, isPidAlive, runFixture, waitUntil } from "./_helpers.ts";
import { testPoolBehaviour } from "./_pool_behaviour.ts";
import {
  add,
  delayed,
  exitWith,
  failInit,
  forever,
  getToken,
  setToken,
  sharedMemory,
  stderrThenForever,
  targetsUrl,
  TaskFailedError,
  throwLater,
  workerPid,
} from "./fixtures/targets.ts";

registerErrorClass(TaskFailedError);

const module = targetsUrl;
type AnyPool = ThreadPool | Pool;
type Maker = (options?: ConstructorParameters<typeof Pool>[0]) => AnyPool;

interface Kind {
  label: string;
  make: Maker;
  processes: boolean;
  suffix: string;
}

const kinds: Kind[] = [
  {
    label: "ThreadPool",
    make: (o) => new ThreadPool({ module, ...o }),
    processes: false,
    suffix: "",
  },
  {
    label: "Pool",
    make: (o) => new Pool({ module, startMethod: "spawn", ...o }),
    processes: true,
    suffix: "",
  },
];
const forkserver: Kind = {
  label: "Pool",
  make: (o) => new (getContext("forkserver").Pool)({ module, ...o }),
  processes: true,
  suffix: " under forkserver",
};

function register(kind: Kind, name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: `${kind.label}${name}${kind.suffix}`,
    fn,
    // Forkserver spares outlive each test by design, and Deno may keep the channel of a child that
    // exited by itself for a moment after its exit. Tests check pids instead.
    sanitizeResources: !kind.processes,
    sanitizeOps: !kind.processes,
  });
}

for (const kind of kinds) {
  const { make } = kind;

  testPoolBehaviour({
    label: kind.label,
    suffix: kind.suffix,
    sanitize: !kind.processes,
    cancelsRunning: true,
    withPool: async (options, fn) => {
      await using pool = make(options);
      await fn(pool);
    },
  });

  register(kind, " rejects only the task whose worker exits, and replaces the worker", async () => {
    await using pool = make({ size: 1 });
    const before = pool.submit(add, [1, 1]);
    const crashing = pool.submit(exitWith, [3]);
    const after = [pool.submit(add, [2, 2]), pool.submit(add, [3, 3])];
    assertEquals(await before, 2);
    const error = await assertRejects(() => crashing, WorkerCrashedError);
    assertEquals(error.exitCode, 3);
    assertEquals(error.signal, null);
    assertEquals(await Promise.all(after), [4, 6]);
  });

  register(
    kind,
    ".join() after close() waits for the tasks that a crashed worker held",
    async () => {
      const pool = make({ size: 1 });
      const crashing = pool.submit(exitWith, [1]);
      const after = pool.submit(add, [2, 3]);
      pool.close();
      await pool.join();
      assert(crashing.done() && after.done(), "join() returned with a task pending");
      await assertRejects(() => crashing, WorkerCrashedError);
      assertEquals(await after, 5);
    },
  );

  register(
    kind,
    ".join() after close() retires a worker started for a task that a busy one took",
    async () => {
      const pool = make({ size: 2 });
      const first = pool.submit(forever);
      const second = pool.submit(delayed, [2, 500]);
      assert(await waitUntil(() => first.running(), 10_000), "the first task never ran");
      // Held by the first task's worker, behind it.
      const third = pool.submit(add, [1, 2]);
      pool.close();
      // The third task goes back to the queue; a worker starts for it, but the second task's
      // worker takes it ahead, and the new one is left with nothing to do.
      assert(first.cancel());
      let timer: ReturnType<typeof setTimeout> | undefined;
      const joined = await Promise.race([
        pool.join().then(() => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 20_000)),
      ]);
      clearTimeout(timer);
      if (!joined) await pool.terminate();
      assert(joined, "join() did not return");
      assertEquals(await second, 2);
      assertEquals(await third, 3);
    },
  );

  register(kind, " does not reject anything for an error thrown outside a task", async () => {
    await using pool = make({ size: 1 });
    const { stderr } = await captureStderr(async () => {
      assertEquals(await pool.apply(throwLater), 1);
      // The error ends the worker. A task sent while it dies could be taken for the one that it
      // ran (a process cannot tell which it had started), so the next one waits for the exit.
      assert(await waitUntil(() => pool.stats().workers === 0, 10_000), "the worker lived on");
    });
    // A worker process reports its uncaught error on its stderr, as the runtime does.
    if (kind.processes) assertStringIncludes(stderr, "thrown outside any task");
    assertEquals(pool.stats().tasksFailed, 0);
    assertEquals(await pool.apply(add, [1, 2]), 3);
  });

  register(
    kind,
    " with onCrash 'break' rejects every pending task with BrokenPoolError",
    async () => {
      const pool = make({ size: 2, onCrash: "break" });
      const futures = [
        pool.submit(exitWith, [5]),
        ...Array.from({ length: 6 }, () => pool.submit(delayed, [1, 2000])),
      ];
      for (const future of futures) await assertRejects(() => future, BrokenPoolError);
      const error = await futures[0].catch((e) => e as Error) as Error;
      assertInstanceOf(error.cause, WorkerCrashedError);
      assertThrows(() => pool.submit(add, [1, 2]), BrokenPoolError);
      await pool.terminate();
    },
  );

  register(kind, " breaks when the initializer fails, and runs it once per worker", async () => {
    const broken = make({ size: 1, initializer: failInit });
    const error = await assertRejects(() => broken.apply(add, [1, 2]), BrokenPoolError);
    assertInstanceOf(error.cause, RangeError);
    await broken.terminate();
    await using pool = make({
      size: 1,
      initializer: setToken,
      initArgs: ["w"],
      maxTasksPerChild: 2,
    });
    const tokens: unknown[] = [];
    for (let i = 0; i < 6; i++) tokens.push(await pool.apply(getToken));
    assert(tokens.every((token) => typeof token === "string" && token.startsWith("w-")));
    // Two tasks per worker, then a fresh worker with its own initializer run.
    assertEquals(new Set(tokens).size, 3);
    assertEquals(tokens[0], tokens[1]);
  });

  register(kind, " settles every task exactly once through cancels and crashes", async () => {
    await using pool = make({ size: 2 });
    const settled = new Map<number, number>();
    const futures = Array.from({ length: 300 }, (_, i) => {
      const future = i === 150 ? pool.submit(exitWith, [7]) : pool.submit(add, [i, 0]);
      const count = () => settled.set(i, (settled.get(i) ?? 0) + 1);
      future.then(count, count);
      return future;
    });
    for (let i = 0; i < futures.length; i += 7) futures[i].cancel();
    const outcomes = await Promise.allSettled(futures);
    assert(await waitUntil(() => settled.size === 300, 1000));
    assert([...settled.values()].every((n) => n === 1));
    outcomes.forEach((outcome, i) => {
      if (outcome.status === "fulfilled") assertEquals(outcome.value, i);
      else if (i !== 150) assertInstanceOf(outcome.reason, CancelledError);
    });
    const stats = pool.stats();
    assertEquals(stats.tasksCompleted + stats.tasksFailed + stats.tasksCancelled, 300);
  });

  register(kind, " refuses bad input with clear errors", async () => {
    assertThrows(
      () => make({ size: 0 }),
      RangeError,
      "'size' must be a positive integer: received 0",
    );
    assertThrows(() => make({ size: -2 }), RangeError, "received -2");
    assertThrows(() => make({ maxQueue: 1.5 }), RangeError, "'maxQueue'");
    assertThrows(() => make({ onCrash: "explode" as "break" }), TypeError, "'onCrash'");
    assertThrows(() => make({ idleTimeoutMs: -1 }), RangeError, "'idleTimeoutMs'");
    const pool = make({ size: 1 });
    await assertRejects(
      () => pool.map((x: number) => x, 42 as unknown as number[]),
      TypeError,
      "'iterable' must be an iterable",
    );
    await assertRejects(
      () => pool.map((x: number) => x, [1], { chunksize: 0 }),
      RangeError,
      "'chunksize' must be a positive integer: received 0",
    );
    assertThrows(
      () => pool.submit((a: unknown, b: unknown) => [a, b], [1, { callback: () => 1 }]),
      TypeError,
      "argument 1 (at .callback)",
    );
    await assertRejects(
      () => pool.apply((f: unknown) => f, [Symbol("s")]),
      TypeError,
      "argument 0",
    );
    const outside = 3;
    const plain = kind.processes ? new Pool({ size: 1 }) : new ThreadPool({ size: 1 });
    assertThrows(() => plain.submit((x: number) => x + outside, [1]), TypeError, "'outside'");
    plain.close();
    assertThrows(() => pool.submit(add, 5 as unknown as [number, number]), TypeError, "'args'");
    await assertRejects(() => pool.join(), Error, "close() or terminate()");
    pool.close();
    assertThrows(() => pool.submit(add, [1, 2]), Error, "closed");
    await assertRejects(() => pool.apply(add, [1, 2]), Error, "closed");
    await pool.join();
  });

  register(kind, ".terminate() rejects pending tasks and leaves no worker behind", async () => {
    const pool = make({ size: 2 });
    const pids = kind.processes ? await Promise.all([1, 2].map(() => pool.apply(workerPid))) : [];
    const pending = [pool.submit(forever), pool.submit(forever), pool.submit(add, [1, 2])];
    await pool.terminate();
    for (const future of pending) await assertRejects(() => future, BrokenPoolError);
    assertEquals(pool.stats().workers, 0);
    for (const pid of pids) {
      assert(pid !== process.pid);
      assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
    }
  });
}

Deno.test("Pool reports a worker killed from outside with its signal and stderr tail", async () => {
  await using pool = new Pool({ size: 1, module, startMethod: "spawn" });
  const pid = await pool.apply(workerPid);
  const hanging = pool.submit(stderrThenForever, ["last words before the kill"]);
  const { value: error, stderr } = await captureStderr(async () => {
    assert(await waitUntil(() => hanging.running(), 10_000));
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.kill(pid, "SIGKILL");
    return await assertRejects(() => hanging, WorkerCrashedError);
  });
  // What the worker wrote passed through this process on its way to the terminal.
  assertStringIncludes(stderr, "last words before the kill");
  assertEquals(error.exitCode, -9);
  assertEquals(error.signal, "SIGKILL");
  assertStringIncludes(error.stderrTail, "last words before the kill");
  assertStringIncludes(error.message, "SIGKILL");
  assertEquals(await pool.apply(add, [1, 2]), 3);
});

Deno.test("ThreadPool moves transferred buffers to the worker without copying", async () => {
  await using pool = new ThreadPool({ size: 1 });
  const bytes = new Uint8Array(1 << 16).fill(2);
  const sum = (data: Uint8Array) => data.reduce((a, b) => a + b, 0);
  assertEquals(await pool.apply(sum, [transfer(bytes, [bytes.buffer])]), 2 << 16);
  assertEquals(bytes.byteLength, 0);
  const back = await pool.apply((n: number) => new Uint8Array(n).fill(1), [8]);
  assertEquals(back, new Uint8Array(8).fill(1));
});

Deno.test("await using a Pool leaves no process behind", async () => {
  let pids: number[];
  {
    await using pool = new Pool({ size: 2, module, startMethod: "spawn" });
    pids = await Promise.all([pool.apply(workerPid), pool.apply(workerPid)]);
  }
  for (const pid of pids) {
    assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
  }
});

for (const name of ["ThreadPool", "Pool"]) {
  Deno.test(`${name} that is idle and never closed does not keep the program alive`, async () => {
    const out = await runFixture("idle_pool", [name], { timeoutMs: 20_000 });
    assertEquals(out.signal, null, "the script was still running at its deadline");
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stdoutText, "RESULT 3");
  });
}

register(forkserver, ".map() keeps input order", async () => {
  await using pool = forkserver.make({ size: 2 });
  assertEquals(await pool.map((x: number) => x + 1, [1, 2, 3, 4, 5]), [2, 3, 4, 5, 6]);
});

register(
  forkserver,
  " rejects only the task whose worker exits, and replaces the worker",
  async () => {
    await using pool = forkserver.make({ size: 1 });
    const crashing = pool.submit(exitWith, [4]);
    const after = pool.submit(add, [2, 2]);
    assertEquals((await assertRejects(() => crashing, WorkerCrashedError)).exitCode, 4);
    assertEquals(await after, 4);
  },
);

register(forkserver, ".terminate() leaves no process behind", async () => {
  const pool = forkserver.make({ size: 2 });
  const pids = await Promise.all([pool.apply(workerPid), pool.apply(workerPid)]);
  const pending = pool.submit(forever);
  await pool.terminate();
  await assertRejects(() => pending, BrokenPoolError);
  for (const pid of pids) {
    assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
  }
});

Deno.test("A SharedArrayBuffer returned by a Pool task or a Process is refused with the fix, and a ThreadPool task returns it", async () => {
  const pool = new Pool({ size: 1, module });
  try {
    const error = await assertRejects(() => pool.submit(sharedMemory));
    assertStringIncludes((error as Error).message, "SharedArrayBuffer");
    assertStringIncludes((error as Error).message, "SharedArray");
    assertEquals(await pool.apply(add, [1, 2]), 3, "the worker goes on serving");
  } finally {
    await pool.terminate();
  }
  const child = new Process({ target: sharedMemory, module });
  const { stderr } = await captureStderr(async () => {
    child.start();
    await child.join();
  });
  assertEquals(child.exitCode, 1);
  assertStringIncludes(String(child.error?.message), "SharedArrayBuffer");
  assertStringIncludes(stderr, "SharedArrayBuffer");
  const threads = new ThreadPool({ size: 1, module });
  try {
    assertInstanceOf(await threads.submit(sharedMemory), SharedArrayBuffer);
  } finally {
    await threads.terminate();
  }
});
