import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import process from "node:process";
import {
  activeChildren,
  currentProcess,
  getContext,
  getStartMethod,
  parentProcess,
  Pool,
  Process,
  setForkserverPreload,
  setStartMethod,
  type StartMethod,
  Thread,
} from "../mod.ts";
import {
  type Identity,
  identity,
  identityInChild,
  identityInPools,
  identityInThread,
  preloadInGrandchild,
  processApiUrl,
  sleep,
} from "./fixtures/process_api_targets.ts";

// Forkserver spares outlive a test; they are the forkserver's, not leaks.
const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

async function run<R>(process: Process<unknown[], R> | Thread<unknown[], R>): Promise<R> {
  process.start();
  await process.join();
  if (process.error) throw process.error;
  return process.result as R;
}

Deno.test("currentProcess() in the main process is MainProcess with its pid, alive, not a daemon", () => {
  const me = currentProcess();
  assertEquals(me.name, "MainProcess");
  assertEquals(me.pid, process.pid);
  assertEquals(me.daemon, false);
  assertEquals(me.isAlive(), true);
  assertEquals(me.exitCode, null);
  assert(currentProcess() === me, "currentProcess() returns the same object");
  assertEquals(parentProcess(), null);
  // As Python's contexts offer them.
  assert(getContext("forkserver").currentProcess() === me);
  assertEquals(getContext("spawn").parentProcess(), null);
  assertEquals(getContext("spawn").activeChildren(), activeChildren());
});

for (const method of ["spawn", "forkserver"] as StartMethod[]) {
  Deno.test({
    name:
      `currentProcess() in a child is that child's name and pid; parentProcess() is its parent (${method})`,
    ...noSanitizers,
    fn: async () => {
      const child = new (getContext(method).Process)({
        target: identity,
        module: processApiUrl,
        name: "Worker-7",
      });
      const seen = await run(child);
      assertEquals(seen.name, "Worker-7");
      assertEquals(seen.pid, child.pid);
      assertEquals(seen.pid, seen.runtimePid);
      assertEquals([seen.daemon, seen.alive, seen.exitCode], [false, true, null]);
      assertEquals(seen.parent, { name: "MainProcess", pid: process.pid, alive: true });
      // No start method is set here (this file sets one only in its last test): the child reports
      // the one it was started with.
      assertEquals(seen.startMethod, method);
    },
  });
}

Deno.test("currentProcess() in a thread is the process the thread belongs to", async () => {
  const thread = new Thread({ target: identity, module: processApiUrl });
  const seen = await run(thread);
  assertEquals([seen.name, seen.pid, seen.parent], ["MainProcess", process.pid, null]);
  // A thread of a child process belongs to that child, whose parent is this process.
  const child = new Process({ target: identityInThread, module: processApiUrl, name: "Holder" });
  const { own, thread: inThread } = await run(child);
  assertEquals(inThread.name, "Holder");
  assertEquals(inThread.pid, own.pid);
  assertEquals(inThread.parent, { name: "MainProcess", pid: process.pid, alive: true });
});

Deno.test("parentProcess() of a grandchild is the child that started it", async () => {
  const child = new Process({ target: identityInChild, module: processApiUrl, name: "Middle" });
  const { own, child: grandchild } = await run(child);
  assertEquals(grandchild.name, "Grandchild");
  assertEquals(grandchild.parent, { name: "Middle", pid: own.pid, alive: true });
});

Deno.test({
  name: "currentProcess() in a pool worker is its process; parentProcess() the pool's owner",
  ...noSanitizers,
  fn: async () => {
    await using pool = new Pool({ size: 1, module: processApiUrl });
    const seen: Identity[] = [await pool.apply(identity)];
    const nested = await pool.apply(identityInPools);
    const worker = seen[0];
    assert(worker.name !== "MainProcess" && worker.name.length > 0, worker.name);
    assertEquals(worker.pid, worker.runtimePid);
    assertEquals(worker.parent?.name, "MainProcess");
    // Inside that worker: a ThreadPool's worker is the same process, a Pool's is a child of it.
    assertEquals(nested[0].name, worker.name);
    assertEquals(nested[0].pid, worker.pid);
    assertEquals(nested[1].parent?.name, worker.name);
    assertEquals(nested[1].parent?.pid, worker.pid);
  },
});

Deno.test("activeChildren() lists the running Process objects started here", async () => {
  const before = activeChildren().length;
  const children = [300, 30_000].map((ms) =>
    new Process({ target: sleep, args: [ms], module: processApiUrl })
  );
  const idle = new Process({ target: sleep, args: [0], module: processApiUrl });
  assertEquals(activeChildren().length, before);
  for (const child of children) child.start();
  const active = activeChildren();
  assert(children.every((child) => active.includes(child)));
  assert(!active.includes(idle), "a process never started is no child");
  await children[0].join();
  assert(!activeChildren().includes(children[0]), "a finished process is not active");
  assert(activeChildren().includes(children[1]));
  children[1].terminate();
  await children[1].join();
  assertEquals(activeChildren().length, before);
});

Deno.test("Process.close() throws while running; afterwards isAlive(), join() and terminate() throw", async () => {
  const child = new Process({ target: sleep, args: [200], module: processApiUrl });
  child.close(); // never started: allowed
  const running = new Process({ target: sleep, args: [200], module: processApiUrl });
  running.start();
  assertThrows(() => running.close(), Error, "still running");
  assert(running.isAlive());
  await running.join();
  running.close();
  running.close(); // twice: allowed
  assertThrows(() => running.isAlive(), Error, "closed");
  await assertRejects(() => running.join(), Error, "closed");
  assertThrows(() => running.terminate(), Error, "closed");
  assertThrows(() => running.kill(), Error, "closed");
  assertThrows(() => running.start(), Error, "closed");
  assertThrows(() => running.pid, Error, "closed");
  assertEquals(running.exitCode, 0);
  assertThrows(() => child.start(), Error, "closed");
});

Deno.test({
  name: "A child inherits the start method and the forkserver preload of its parent",
  ...noSanitizers,
  fn: async () => {
    const marker = new URL(
      "./fixtures/preload_marker" + processApiUrl.slice(processApiUrl.lastIndexOf(".")),
      import.meta.url,
    );
    setStartMethod("forkserver", { force: true });
    setForkserverPreload([marker]);
    try {
      // Its own child, started with the inherited method, gets the preload too.
      const child = new Process({ target: preloadInGrandchild, module: processApiUrl });
      const seen = await run(child);
      assertEquals(seen.startMethod, "forkserver");
      assertEquals(typeof seen.preloaded, "number", "the grandchild did not run the preload");
      // Threads see their process's setting.
      const thread = new Thread({ target: identity, module: processApiUrl });
      assertEquals((await run(thread)).startMethod, "forkserver");
    } finally {
      setForkserverPreload([]);
      setStartMethod("spawn", { force: true });
    }
    // A spawn child of a spawn parent says spawn.
    const child = new Process({ target: identity, module: processApiUrl });
    assertEquals((await run(child)).startMethod, "spawn");
    assertEquals(getStartMethod(), "spawn");
  },
});
