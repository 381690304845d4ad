/**
 * The fault matrix for Thread and Process, under spawn and forkserver: faults that a child can
 * suffer, and what the parent must see. Crashes, exits, errors and garbage output are covered by
 * the shared behaviour tests; these add the faults that need more set-up.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { moduleExtension, runtime } from "./_runtime.deno.ts";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Event, getContext, Queue, Thread, transfer } from "../mod.ts";
import { childPidsOf, isPidAlive, runFixture, waitUntil } from "./_helpers.ts";
import {
  add,
  echoLarge,
  forever,
  markAndReturnMoved,
  targetsUrl,
  workerPid,
} from "./fixtures/targets.ts";

// Forkserver spares outlive each test by design; they are stopped when the test run exits.
const test = (name: string, fn: () => Promise<void>, ignore = false) =>
  Deno.test({ name, fn, ignore, sanitizeOps: false, sanitizeResources: false });

for (const method of ["spawn", "forkserver"] as const) {
  const suffix = method === "spawn" ? "" : " under forkserver";
  const ContextProcess = getContext(method).Process;

  test(`Process killed with SIGKILL from outside ends with -9${suffix}`, async () => {
    const child = new ContextProcess({ target: forever, module: targetsUrl });
    child.start();
    process.kill(child.pid!, "SIGKILL");
    await child.join();
    assertEquals(child.exitCode, -9);
    assert(await waitUntil(() => !isPidAlive(child.pid!), 2000));
  });

  test(`Process takes a 100 MB argument and returns a 100 MB result${suffix}`, async () => {
    const big = new Uint8Array(100 * 1024 * 1024).fill(1);
    const child = new ContextProcess({ target: echoLarge, args: [big], module: targetsUrl });
    child.start();
    await child.join();
    assertEquals(child.exitCode, 0, String(child.error));
    const result = child.result as Uint8Array;
    assertEquals(result.length, big.length);
    assertEquals(result[0], (big.length / 4096) % 251);
    assertEquals(result[result.length - 1], 7);
  });
}

test("Thread takes a 100 MB argument and returns a 100 MB result", async () => {
  const big = new Uint8Array(100 * 1024 * 1024).fill(1);
  const thread = new Thread({ target: echoLarge, args: [big], module: targetsUrl });
  thread.start();
  await thread.join();
  assertEquals(thread.exitCode, 0, String(thread.error));
  assertEquals((thread.result as Uint8Array).length, big.length);
});

test("Thread moves a transferred 100 MB argument and result instead of copying them", async () => {
  const big = new Uint8Array(100 * 1024 * 1024).fill(1);
  const thread = new Thread({
    target: markAndReturnMoved,
    args: [transfer(big, [big.buffer])],
    module: targetsUrl,
  });
  thread.start();
  // Moved: the parent's buffer is detached at once.
  assertEquals(big.byteLength, 0);
  await thread.join();
  assertEquals(thread.exitCode, 0, String(thread.error));
  const result = thread.result as Uint8Array;
  assertEquals(result.length, 100 * 1024 * 1024);
  assertEquals([result[0], result[1], result[result.length - 1]], [9, 1, 1]);
});

test("Process takes a transfer() argument as a copy", async () => {
  const bytes = new Uint8Array([1, 2, 3]);
  const child = new (getContext("spawn").Process)({
    target: markAndReturnMoved,
    args: [transfer(bytes, [bytes.buffer])],
    module: targetsUrl,
  });
  child.start();
  await child.join();
  assertEquals(child.exitCode, 0, String(child.error));
  // A process cannot share the buffer: the parent keeps its own, the child sends back its copy.
  assertEquals([...bytes], [1, 2, 3]);
  assertEquals([...(child.result as Uint8Array)], [9, 2, 3]);
});

function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

// MULTIPROC_CYCLES=10000 runs the full count; the default keeps CI short.
const cycles = Number(process.env.MULTIPROC_CYCLES ?? 100);

test("Thread start/join cycles leave no descriptors behind", async () => {
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const thread = new Thread({ target: (n: number) => n + 1, args: [i] });
      thread.start();
      await thread.join();
      assertEquals(thread.result, i + 1);
    }
  };
  await run(10);
  const fds = openDescriptors();
  await run(cycles);
  // Workers release their descriptors asynchronously; give them a moment.
  assert(
    await waitUntil(() => openDescriptors() <= fds + 2, 3000),
    `descriptors grew from ${fds} to ${openDescriptors()}`,
  );
});

for (const method of ["spawn", "forkserver"] as const) {
  const ContextProcess = getContext(method).Process;
  test(
    `Process start/join cycles leave no descriptors or child processes behind${
      method === "spawn" ? "" : " under forkserver"
    }`,
    async () => {
      const run = async (count: number) => {
        const pids: number[] = [];
        for (let i = 0; i < count; i++) {
          const child = new ContextProcess({ target: (n: number) => n * 2, args: [i] });
          child.start();
          await child.join();
          assertEquals(child.result, i * 2);
          pids.push(child.pid!);
        }
        return pids;
      };
      await run(3);
      const fds = openDescriptors();
      const before = childPidsOf(process.pid);
      const pids = await run(Math.max(5, Math.round(cycles / 5)));
      assert(
        await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 3000),
        `still alive: ${pids.filter(isPidAlive).join(", ")}`,
      );
      // The forkserver (of this test or of an earlier one in this file) may make new spares; each
      // holds its channel and stderr pipe. Any other new descriptor is a leak.
      const newChildren = () => childPidsOf(process.pid).filter((pid) => !before.includes(pid));
      assert(
        await waitUntil(() => openDescriptors() <= fds + 2 + 4 * newChildren().length, 3000),
        `descriptors grew from ${fds} to ${openDescriptors()} with ${newChildren().length} new spares`,
      );
    },
  );
}

for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
  test(`Children spinning on the CPU end within 2 s of their parent's ${signal}`, async () => {
    let pids: number[] = [];
    let gone: Promise<boolean> | undefined;
    const out = await runFixture("parent_spin", [], {
      timeoutMs: 60_000,
      onStdout: (text) => {
        if (gone) return;
        const spinning = [...text.matchAll(/SPINNING (\d+)/g)].map((match) => Number(match[1]));
        const parent = /PARENT (\d+)/.exec(text);
        // A spawned and a forkserver Process, a Pool worker, and a Process started from a Thread,
        // all inside their loop.
        if (!parent || new Set(spinning).size < 4) return;
        pids = [...new Set([...spinning, ...childPidsOf(Number(parent[1]))])];
        process.kill(Number(parent[1]), signal);
        gone = waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000);
      },
    });
    assertEquals(out.signal, signal, out.stderrText);
    assert(gone, `the children never spun: ${out.stdoutText}`);
    assert(await gone, `still alive: ${pids.filter(isPidAlive).join(", ")}`);
  });
}

test("The channel folder of a parent killed while its child joined is removed by the next parent", async () => {
  // The parent may make a sealed channel: on Deno that takes write and net access (all of -A).
  const runtimeFlags = runtime === "deno" ? ["-A"] : undefined;
  const killed = await runFixture("channel_killed_parent", ["kill"], {
    timeoutMs: 60_000,
    runtimeFlags,
  });
  assertEquals(killed.signal, "SIGKILL", killed.stderrText);
  const pid = /PARENT (\d+)/.exec(killed.stdoutText)?.[1];
  assert(pid, killed.stdoutText);
  const left = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`multiproc-${pid}-`));
  // Killed before its child could join, the parent could not remove the folder itself.
  assertEquals(left().length, 1, "the killed parent left no channel folder");
  const next = await runFixture("channel_killed_parent", [], { timeoutMs: 60_000, runtimeFlags });
  assertStringIncludes(next.stdoutText, "RESULT 5", next.stderrText);
  assertEquals(left(), []);
});

test("Grandchildren spinning on the CPU end within 2 s of the SIGKILL of the program", async () => {
  const folder = mkdtempSync(join(tmpdir(), "multiproc-grandchildren-"));
  try {
    let pids: number[] = [];
    let gone: Promise<boolean> | undefined;
    const out = await runFixture("grandparent_spin", [folder], {
      timeoutMs: 60_000,
      // The usual grant, and writing, for the grandchildren's markers: children inherit only the
      // permissions that their parent holds in full.
      runtimeFlags: runtime === "deno"
        ? ["--allow-read", "--allow-env", "--allow-run", "--allow-write"]
        : undefined,
      onStdout: (text) => {
        if (gone) return;
        const spinning = new Set([...text.matchAll(/SPINNING (\d+)/g)].map((match) => match[1]));
        const parent = /PARENT (\d+)/.exec(text);
        // Two children, each spinning once its own child (a grandchild here) spins.
        if (!parent || spinning.size < 4) return;
        pids = [...spinning].map(Number);
        process.kill(Number(parent[1]), "SIGKILL");
        gone = waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000);
      },
    });
    assertEquals(out.signal, "SIGKILL", out.stderrText);
    assert(gone, `the processes never all spun: ${out.stdoutText}`);
    assert(await gone, `still alive: ${pids.filter(isPidAlive).join(", ")}`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

for (const method of ["spawn", "forkserver"] as const) {
  const suffix = method === "spawn" ? "" : " under forkserver";
  const ContextProcess = getContext(method).Process;

  test(`Consumer killed in get(): an item handed to it and never received goes back on the queue${suffix}`, async () => {
    const q = new Queue<string>();
    const started = new Event();
    const consumer = new ContextProcess({
      target: async (q: Queue<string>, started: Event) => {
        started.set();
        return await q.get();
      },
      args: [q, started],
    });
    consumer.start();
    await started.wait({ timeoutMs: 20_000 });
    // Its get() reaches the parent's broker right after the set.
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.kill(consumer.pid!, "SIGKILL");
    // The put lands before the parent has seen the death: the waiting get() takes the item and
    // answers a child that is gone.
    await q.put("precious");
    await consumer.join();
    assertEquals(consumer.exitCode, -9);
    assertEquals(await q.get({ timeoutMs: 5000 }), "precious");
    assert(q.empty());
  });
}

/** Whether a process has died but not yet been reaped by its parent: a zombie. */
function isZombie(pid: number): boolean {
  try {
    return /^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("A forkserver spare killed before use is skipped: the Process runs its target", async () => {
  const ForkProcess = getContext("forkserver").Process;
  const warm = new ForkProcess({ target: add, args: [1, 1], module: targetsUrl });
  warm.start();
  await warm.join();
  let spares: number[] = [];
  assert(await waitUntil(() => (spares = childPidsOf(process.pid)).length > 0, 10_000));
  for (const pid of spares) process.kill(pid, "SIGKILL");
  // Dead, and not yet reaped: this process's event loop has not seen them exit. Waited for without
  // yielding to it, so that the next start finds them just as a start right after their death.
  const deadline = Date.now() + 5000;
  while (!spares.every(isZombie) && Date.now() < deadline) { /* the kernel ends them meanwhile */ }
  const child = new ForkProcess({ target: add, args: [2, 3], module: targetsUrl });
  child.start();
  await child.join();
  assertEquals(child.exitCode, 0, String(child.error));
  assertEquals(child.result, 5);
  assert(!spares.includes(child.pid!), "a dead spare was handed out");
});

test("Forkserver spares killed before use are skipped: a Pool's workers run all its tasks", async () => {
  const ForkPool = getContext("forkserver").Pool;
  {
    // Its workers end with it, and the forkserver makes spares for the next ones.
    await using warm = new ForkPool({ size: 2, module: targetsUrl });
    assertEquals(await warm.apply(add, [1, 1]), 2);
  }
  let spares: number[] = [];
  assert(await waitUntil(() => (spares = childPidsOf(process.pid)).length > 0, 10_000));
  for (const pid of spares) process.kill(pid, "SIGKILL");
  // Dead and not yet reaped, as in the Process test above: the pool starts its workers at once.
  const deadline = Date.now() + 5000;
  while (!spares.every(isZombie) && Date.now() < deadline) { /* the kernel ends them meanwhile */ }
  await using pool = new ForkPool({ size: 2, module: targetsUrl });
  const results = await Promise.allSettled(
    Array.from({ length: 6 }, (_, i) => pool.apply(add, [i, 1])),
  );
  assertEquals(
    results.map((result) => result.status === "fulfilled" ? result.value : String(result.reason)),
    [1, 2, 3, 4, 5, 6],
  );
  const pids = await Promise.all([pool.apply(workerPid), pool.apply(workerPid)]);
  assert(pids.every((pid) => !spares.includes(pid)), "a dead spare was handed out");
  assertEquals(pool.stats().tasksFailed, 0);
});

test("Every kind of worker leaves nothing in the temporary folder", async () => {
  const temp = mkdtempSync(join(tmpdir(), "multiproc-temp-"));
  try {
    // Both runtimes, and so the library and its children, make temporary files under TMPDIR.
    const out = await runFixture("temp_probe", [], {
      env: { TMPDIR: temp, TMP: temp, TEMP: temp },
      timeoutMs: 60_000,
    });
    assertEquals(out.code, 0, out.stderrText);
    // Bun has no permission model: there the probe runs "inherit" children only.
    const results = runtime === "bun" ? 8 : 14;
    assertEquals(/RESULTS (.*)/.exec(out.stdoutText)?.[1], JSON.stringify(Array(results).fill(3)));
    // Children die with the script; give their exits a moment.
    await waitUntil(() => readdirSync(temp).length === 0, 2000);
    assertEquals(readdirSync(temp), []);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
});

test(
  "A test file whose module makes a scratch folder leaves none behind, spares included",
  async () => {
    const temp = mkdtempSync(join(tmpdir(), "multiproc-temp-"));
    try {
      // The permissions tests make their files when their module loads, and every forkserver spare
      // imports that module (the main one) too.
      const file = fileURLToPath(new URL(`./permissions_test${moduleExtension}`, import.meta.url));
      const name = "Process permissions grant the listed paths and nothing else under forkserver";
      const args = runtime === "deno"
        ? ["test", "-A", "--quiet", file, "--filter", name]
        : ["--test", "--test-force-exit", `--test-name-pattern=${name}`, file];
      // Node's test runner would report to the running one instead of printing, were it told that
      // it runs inside one.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env;
      const run = spawnSync(process.execPath, args, {
        env: { ...env, TMPDIR: temp, TMP: temp, TEMP: temp },
        encoding: "utf8",
        timeout: 120_000,
      });
      assertEquals(run.status, 0, run.stdout + run.stderr);
      assertStringIncludes(run.stdout, "permissions grant the listed paths");
      await waitUntil(() => readdirSync(temp).length === 0, 2000);
      assertEquals(readdirSync(temp), []);
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
    // The permissions tests, whose module this runs, do not run on Bun, which has no permission model.
  },
  runtime === "bun",
);
