/**
 * The fault matrix for ThreadPool and Pool, under spawn and forkserver: faults that a task or a
 * worker can suffer, and what the caller must see. Each fault is one test per kind of pool, with
 * real workers and real processes. The Thread and Process half is in fault_matrix_test.ts.
 *
 * A worker running out of memory under `maxHeapMb` is not here: pools do not take that option yet.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { readdirSync } from "node:fs";
import os from "node:os";
import process from "node:process";
import {
  getContext,
  Pool,
  registerErrorClass,
  ThreadPool,
  TimeoutError,
  transfer,
  WorkerCrashedError,
} from "../mod.ts";
import { childPidsOf, garbageTwice, isPidAlive, runFixture, waitUntil } from "./_helpers.ts";
import { moduleExtension } from "./_runtime.deno.ts";
import { add, echoLarge, exitWith, forever, targetsUrl, unsendable } from "./fixtures/targets.ts";
import {
  echoLargeTransferred,
  keptResultLength,
  poolFaultsUrl,
  PoolTaskError,
  returnFunction,
  returnSymbol,
  spinForever,
  sumOnNestedThreadPool,
  throwPoolTaskError,
  workerIdentity,
} from "./fixtures/pool_faults.ts";

registerErrorClass(PoolTaskError);

type AnyPool = ThreadPool | Pool;

interface Kind {
  /** The start of each test's name. */
  label: string;
  make: (options?: ConstructorParameters<typeof Pool>[0]) => AnyPool;
  processes: boolean;
  /** How a fixture script picks this kind. */
  args: string[];
  /** What pool_parent_busy.ts calls this kind's pool. */
  short: "thread" | "spawn" | "forkserver";
}

const kinds: Kind[] = [
  {
    label: "ThreadPool",
    make: (o) => new ThreadPool({ module: poolFaultsUrl, ...o }),
    processes: false,
    args: ["ThreadPool"],
    short: "thread",
  },
  {
    label: "Pool under spawn",
    make: (o) => new Pool({ module: poolFaultsUrl, startMethod: "spawn", ...o }),
    processes: true,
    args: ["Pool", "--start-method", "spawn"],
    short: "spawn",
  },
  {
    label: "Pool under forkserver",
    make: (o) => new (getContext("forkserver").Pool)({ module: poolFaultsUrl, ...o }),
    processes: true,
    args: ["Pool", "--start-method", "forkserver"],
    short: "forkserver",
  },
];

function register(kind: Kind, name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: `${kind.label}: ${name}`,
    fn,
    // Forkserver spares outlive each test by design, and a child process's channel may close a
    // moment after its exit was reported. The tests check pids instead.
    sanitizeResources: !kind.processes,
    sanitizeOps: !kind.processes,
  });
}

/** Where the targets of tests/fixtures/targets.ts are found. */
const onTargets = { module: targetsUrl };

/** The worker that a task ran on: a process by its pid, a thread by its id. */
function workerKey(kind: Kind, identity: { pid: number; threadId: number }): number {
  return kind.processes ? identity.pid : identity.threadId;
}

/** The live child processes of this one; `ps`, which childPidsOf() runs, is gone by then. */
function childProcesses(): number[] {
  return childPidsOf(process.pid).filter(isPidAlive);
}

function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Reads `PIDS [...]` from a fixture's output. */
function pidsIn(text: string): number[] {
  const match = /PIDS (\[.*\])/.exec(text);
  assert(match, `no PIDS line in ${JSON.stringify(text)}`);
  return JSON.parse(match[1]);
}

// MULTIPROC_CYCLES=10000 runs the full count; the defaults keep CI short.
const cycles = process.env.MULTIPROC_CYCLES ? Number(process.env.MULTIPROC_CYCLES) : undefined;

for (const kind of kinds) {
  const { make } = kind;

  register(
    kind,
    "a task that throws rejects with its class, message, stack and cause",
    async () => {
      await using pool = make({ size: 1 });
      const before = await pool.apply(workerIdentity);
      const error = await assertRejects(
        () => pool.apply(throwPoolTaskError, ["bad input 7"]),
        PoolTaskError,
      );
      assertEquals(error.name, "PoolTaskError");
      assertEquals(error.message, "bad input 7");
      assertEquals((error as PoolTaskError).retryable, false);
      // The stack is the worker's, where the error was thrown.
      assertStringIncludes(error.stack!, "throwPoolTaskError");
      assertStringIncludes(error.stack!, "pool_faults");
      assertInstanceOf(error.cause, TypeError);
      assertEquals((error.cause as Error).message, "what went wrong first");
      await assertRejects(
        () => pool.map(throwPoolTaskError, ["in a map"]),
        PoolTaskError,
        "in a map",
      );
      // The same worker goes on serving.
      assertEquals(await pool.apply(add, [2, 3], onTargets), 5);
      assertEquals(workerKey(kind, await pool.apply(workerIdentity)), workerKey(kind, before));
    },
  );

  register(kind, "a task whose module throws on import rejects naming the module", async () => {
    await using pool = make({ size: 1 });
    const before = await pool.apply(workerIdentity);
    const broken = new URL(`./throws_on_import${moduleExtension}`, poolFaultsUrl).href;
    const { unreachableTarget } = { unreachableTarget: () => 1 };
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await assertRejects(
        () => pool.apply(unreachableTarget, [], { module: broken }),
        Error,
      );
      assertStringIncludes(error.message, "throws_on_import");
      assertInstanceOf(error.cause, Error);
      assertStringIncludes(error.cause.message, "always fails to import");
    }
    // Other modules' tasks still run, on the same worker.
    assertEquals(await pool.apply(add, [4, 5], onTargets), 9);
    assertEquals(workerKey(kind, await pool.apply(workerIdentity)), workerKey(kind, before));
  });

  register(
    kind,
    "a task that exits with code 3 rejects with WorkerCrashedError, and the worker is replaced",
    async () => {
      await using pool = make({ size: 1 });
      const before = await pool.apply(workerIdentity);
      const error = await assertRejects(
        () => pool.apply(exitWith, [3], onTargets),
        WorkerCrashedError,
      );
      assertEquals(error.exitCode, 3);
      assertEquals(error.signal, null);
      assertStringIncludes(error.message, "exited with code 3");
      const after = await pool.apply(workerIdentity);
      assertNotEquals(workerKey(kind, after), workerKey(kind, before));
      if (kind.processes) {
        assert(await waitUntil(() => !isPidAlive(before.pid), 2000), `${before.pid} is alive`);
      }
      assertEquals(await pool.apply(add, [2, 2], onTargets), 4);
    },
  );

  // A thread cannot be sent a signal of its own: SIGKILL ends the whole process that it runs in,
  // the parent included. A ThreadPool worker's hard stop is its terminate(), which the endless
  // loop below exercises; there is no SIGKILL test for ThreadPool.
  if (kind.processes) {
    register(
      kind,
      "a worker killed with SIGKILL rejects its task with -9, and the worker is replaced",
      async () => {
        await using pool = make({ size: 1 });
        const { pid } = await pool.apply(workerIdentity);
        const hanging = pool.submit(forever, [], onTargets);
        assert(await waitUntil(() => hanging.running(), 10_000), "the task never ran");
        process.kill(pid, "SIGKILL");
        const error = await assertRejects(() => hanging, WorkerCrashedError);
        assertEquals(error.exitCode, -9);
        assertEquals(error.signal, "SIGKILL");
        assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
        const after = await pool.apply(workerIdentity);
        assertNotEquals(after.pid, pid);
        assertEquals(await pool.apply(add, [1, 2], onTargets), 3);
      },
    );
  }

  if (kind.processes) {
    register(
      kind,
      "a worker killed while idle: the tasks sent next never started there, and all run",
      async () => {
        await using pool = make({ size: 1 });
        const { pid } = await pool.apply(workerIdentity);
        // Killed from outside just before a dispatch: the parent learns of it only later, and
        // may send tasks to the dead worker (and ask its handle to hold the event loop) meanwhile.
        process.kill(pid, "SIGKILL");
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => pool.apply(add, [i, 1], onTargets)),
        );
        for (const [i, result] of results.entries()) {
          assertEquals(result.status, "fulfilled", `task ${i}: ${JSON.stringify(result)}`);
          assertEquals((result as PromiseFulfilledResult<number>).value, i + 1);
        }
        const after = await pool.apply(workerIdentity);
        assertNotEquals(after.pid, pid);
        assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
      },
    );

    register(
      kind,
      "a SharedArrayBuffer argument is refused with the fix, and the parent goes on",
      async () => {
        await using pool = make({ size: 1 });
        const shared = new Int32Array(new SharedArrayBuffer(16));
        const error = await assertRejects(
          () => pool.apply(add, [shared as unknown as number, 1], onTargets),
          TypeError,
          "SharedArrayBuffer",
        );
        assertMatch(error.message, /Value.*SharedArray.*Thread/);
        assertEquals(await pool.apply(add, [1, 2], onTargets), 3);
      },
    );
  }

  if (kind.processes) {
    // A thread started in a child process inherits its command line, which marks a child process.
    register(kind, "a ThreadPool inside a worker process runs its own tasks", async () => {
      await using pool = make({ size: 1 });
      assertEquals(await pool.apply(sumOnNestedThreadPool, [[1, 2, 3, 4]]), 20);
    });
  }

  register(
    kind,
    "an endless synchronous loop with timeoutMs rejects with TimeoutError and its worker is stopped",
    async () => {
      await using pool = make({ size: 1 });
      const before = await pool.apply(workerIdentity);
      await assertRejects(
        () => pool.apply(spinForever, [], { timeoutMs: 200 }),
        TimeoutError,
        "200 ms",
      );
      if (kind.processes) {
        assert(await waitUntil(() => !isPidAlive(before.pid), 2000), `${before.pid} is alive`);
      }
      // The next task gets a fresh worker, and a result.
      const after = await pool.apply(workerIdentity);
      assertNotEquals(workerKey(kind, after), workerKey(kind, before));
      assertEquals(await pool.apply(add, [20, 22], onTargets), 42);
      assertEquals(pool.stats().workers, 1);
    },
  );

  register(
    kind,
    "binary garbage on a worker's stdout and stderr passes through and harms no result",
    async () => {
      const out = await runFixture("pool_passthrough", kind.args);
      assertEquals(out.code, 0, out.stderrText);
      assertEquals(out.stdout, garbageTwice);
      assertEquals(out.stderr, garbageTwice);
    },
  );

  if (kind.processes) {
    register(kind, "a 100 MB argument and a 100 MB result arrive whole", async () => {
      await using pool = make({ size: 1 });
      const big = new Uint8Array(100 * 1024 * 1024).fill(1);
      const result = await pool.apply(echoLarge, [big], onTargets);
      assertEquals(result.length, big.length);
      assertEquals(result[0], (big.length / 4096) % 251);
      assertEquals(result[12_345_678], 0);
      assertEquals(result[result.length - 1], 7);
      // Copied to the process, so the caller keeps its own.
      assertEquals(big.byteLength, 100 * 1024 * 1024);
      assertEquals(await pool.apply(add, [1, 1], onTargets), 2);
    });
  } else {
    register(kind, "a 100 MB argument and a 100 MB result move without a copy", async () => {
      await using pool = make({ size: 1 });
      const big = new Uint8Array(100 * 1024 * 1024).fill(1);
      // A regression here used to take minutes: the guard makes it a failure.
      const future = pool.submit(echoLargeTransferred, [transfer(big, [big.buffer])], {
        timeoutMs: 60_000,
      });
      // Detached as soon as the task is sent, before it has run: moved, not copied.
      assert(await waitUntil(() => big.byteLength === 0, 10_000), "the argument was not moved");
      const result = await future;
      assertEquals(result.length, 100 * 1024 * 1024);
      assertEquals(result[0], (result.length / 4096) % 251);
      assertEquals(result[12_345_678], 0);
      assertEquals(result[result.length - 1], 7);
      // The worker's own view of the result is detached too: the result moved back.
      assertEquals(await pool.apply(keptResultLength), 0);
    });
  }

  register(
    kind,
    "a result that cannot be cloned rejects naming its type, and the worker survives",
    async () => {
      await using pool = make({ size: 1 });
      const before = await pool.apply(workerIdentity);
      // A regression here used to leave the task pending for ever: the guard makes it a failure.
      const guard = { timeoutMs: 60_000 };
      const fnError = await assertRejects(() => pool.apply(returnFunction, [], guard), TypeError);
      assertStringIncludes(fnError.message, "return value");
      assertStringIncludes(fnError.message, "function notCloneable");
      const symbolError = await assertRejects(() => pool.apply(returnSymbol, [], guard), TypeError);
      assertMatch(symbolError.message, /symbol\(not cloneable\)/i);
      const nested = await assertRejects(() => pool.apply(unsendable, [], onTargets), TypeError);
      assertStringIncludes(nested.message, "function");
      assertStringIncludes(nested.message, ".callback");
      // The same worker answers the next task.
      assertEquals(workerKey(kind, await pool.apply(workerIdentity)), workerKey(kind, before));
    },
  );

  register(
    kind,
    "killing the parent with SIGKILL while pools are busy leaves no worker process behind",
    async () => {
      const labels = ["thread", "spawn", "forkserver"];
      let parent = 0;
      let workers: Record<string, number[]> = {};
      let children: number[] = [];
      let gone: Promise<boolean> | undefined;
      const everyPid = () => [...workers.spawn, ...workers.forkserver, ...children];
      // Generous: the script starts three pools and their workers on a busy machine.
      const out = await runFixture("pool_parent_busy", [], {
        timeoutMs: 60_000,
        onStdout: (text, kill) => {
          if (gone) return;
          const found: Record<string, number[]> = {};
          for (const [, label, pid] of text.matchAll(/WORKER (\w+) (\d+)/g)) {
            (found[label] ??= []).push(Number(pid));
          }
          const parentMatch = /PARENT (\d+)/.exec(text);
          if (!parentMatch || !/PIDS \[.*\]/.test(text)) return;
          if (!labels.every((label) => found[label]?.length === 2)) return;
          parent = Number(parentMatch[1]);
          workers = found;
          children = pidsIn(text);
          kill();
          // Within 2 s of the kill.
          gone = waitUntil(() => everyPid().every((pid) => !isPidAlive(pid)), 2000);
        },
      });
      assertEquals(out.signal, "SIGKILL", out.stderrText);
      assert(gone, "the pools never got busy");
      assert(await gone, `still alive: ${everyPid().filter(isPidAlive).join(", ")}`);
      if (kind.short === "thread") {
        // Threads run in the parent's own process, which the kill ended.
        assertEquals(workers.thread, [parent, parent]);
      } else {
        assertEquals(new Set(workers[kind.short]).size, 2);
        assert(workers[kind.short].every((pid) => pid !== parent));
      }
    },
  );

  register(
    kind,
    "process.exit() while the pool is busy ends the script and leaves no worker behind",
    async () => {
      const out = await runFixture("pool_exit", ["--exit-while-busy", ...kind.args], {
        timeoutMs: 30_000,
      });
      assertEquals(out.signal, null, "the script was still running at its deadline");
      assertEquals(out.code, 0, out.stderrText);
      const pids = pidsIn(out.stdoutText);
      assert(!kind.processes || pids.length >= 2, `expected worker pids, got ${pids}`);
      assert(
        await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000),
        `still alive: ${pids.filter(isPidAlive).join(", ")}`,
      );
    },
  );

  register(
    kind,
    "a script whose main code ends while the pool is busy finishes the task, then ends",
    async () => {
      const out = await runFixture("pool_exit", ["--end-while-busy", ...kind.args], {
        timeoutMs: 30_000,
      });
      assertEquals(out.signal, null, "the idle pool kept the script alive");
      assertEquals(out.code, 0, out.stderrText);
      assertStringIncludes(out.stdoutText, "TASK 7\n");
      const pids = pidsIn(out.stdoutText);
      assert(
        await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000),
        `still alive: ${pids.filter(isPidAlive).join(", ")}`,
      );
    },
  );

  register(kind, "close() and join() finish every queued task before the script ends", async () => {
    const out = await runFixture("pool_exit", ["--close-join", ...kind.args], {
      timeoutMs: 30_000,
    });
    assertEquals(out.code, 0, out.stderrText);
    const lines = out.stdoutText.trim().split("\n");
    const tasks = lines.filter((line) => line.startsWith("TASK ")).sort();
    assertEquals(tasks, [0, 1, 2, 3, 4, 5].map((n) => `TASK ${n}`));
    assertEquals(lines.at(-2), "RESULTS [0,1,2,3,4,5]");
    assertEquals(lines.at(-1), "JOINED");
    const pids = pidsIn(out.stdoutText);
    assert(
      await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000),
      `still alive: ${pids.filter(isPidAlive).join(", ")}`,
    );
  });

  // A worker starts in 100-300 ms here, a process in 200-500 ms: the defaults keep this short.
  const count = kind.processes
    ? (cycles === undefined ? 16 : Math.max(10, Math.round(cycles / 3)))
    : (cycles ?? 40);
  register(
    kind,
    `${count} tasks with maxTasksPerChild 1 leave no descriptors, processes or memory behind`,
    async () => {
      const run = async (tasks: number) => {
        const pool = make({ size: 2, maxTasksPerChild: 1 });
        const identities = await Promise.all(
          Array.from({ length: tasks }, () => pool.apply(workerIdentity)),
        );
        pool.close();
        await pool.join();
        return identities;
      };
      await run(4);
      const fds = openDescriptors();
      const children = childProcesses();
      const rss = process.memoryUsage().rss;
      const identities = await run(count);
      // One worker per task.
      assertEquals(new Set(identities.map((id) => workerKey(kind, id))).size, count);
      if (kind.processes) {
        const pids = identities.map((id) => id.pid);
        assert(
          await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 5000),
          `still alive: ${pids.filter(isPidAlive).join(", ")}`,
        );
      }
      // Forkserver spares are the only children that may be new: the forkserver keeps as many as
      // the largest burst of starts that it has seen, up to its cap.
      const spareCap = kind.short === "forkserver" ? Math.max(8, 2 * os.availableParallelism()) : 0;
      const newChildren = () => childProcesses().filter((pid) => !children.includes(pid));
      assert(
        await waitUntil(() => newChildren().length <= spareCap, 5000),
        `new child processes: ${newChildren().join(", ")}`,
      );
      // Each new spare holds a few descriptors (its channel, its stderr pipe).
      const allowed = () => fds + 2 + 4 * newChildren().length;
      assert(
        await waitUntil(() => openDescriptors() <= allowed(), 5000),
        `descriptors grew from ${fds} to ${openDescriptors()}`,
      );
      const grownMb = (process.memoryUsage().rss - rss) / (1024 * 1024);
      assert(grownMb < 256, `RSS grew by ${grownMb.toFixed(0)} MB over ${count} workers`);
    },
  );
}
