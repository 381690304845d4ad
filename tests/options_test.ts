/**
 * Every public options object refuses a key that no option has, naming it: one table, so that an
 * API added later without the check shows up here. Each call is made for real, on real objects.
 */
import { assertRejects, assertStringIncludes } from "@std/assert";
import {
  asCompleted,
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  JoinableQueue,
  Lock,
  Pipe,
  Pool,
  Process,
  Queue,
  RLock,
  Semaphore,
  setStartMethod,
  SharedArray,
  SimpleQueue,
  Thread,
  ThreadPool,
  Value,
  wait,
} from "../mod.ts";
import { add, targetsUrl } from "./fixtures/targets.ts";

const BAD = { notAnOption: 1 } as never;
const identity = (x: number) => x;

/** Runs `call` and expects a TypeError, thrown or as a rejection, that names the unknown key. */
async function refusesUnknownKey(what: string, call: () => unknown): Promise<void> {
  const error = await assertRejects(async () => await call(), TypeError, undefined, what);
  assertStringIncludes(error.message, "'notAnOption'", what);
}

Deno.test("Every constructor and function that takes options refuses an unknown key", async () => {
  const cases: [string, () => unknown][] = [
    ["Thread", () => new Thread({ target: add, ...BAD as object })],
    ["Process", () => new Process({ target: add, ...BAD as object })],
    ["ThreadPool", () => new ThreadPool(BAD)],
    ["Pool", () => new Pool(BAD)],
    ["Queue", () => new Queue(BAD)],
    ["JoinableQueue", () => new JoinableQueue(BAD)],
    ["Semaphore", () => new Semaphore(BAD)],
    ["BoundedSemaphore", () => new BoundedSemaphore(BAD)],
    ["Condition", () => new Condition(BAD)],
    ["Barrier", () => new Barrier(2, BAD)],
    ["Value", () => new Value("i32", 0, BAD)],
    ["SharedArray", () => new SharedArray("i32", 1, BAD)],
    ["Pipe", () => Pipe(BAD)],
    ["setStartMethod", () => setStartMethod("spawn", BAD)],
    ["wait", () => wait([Promise.resolve(1)], BAD)],
    ["asCompleted", () => asCompleted([Promise.resolve(1)], BAD)],
  ];
  for (const [what, call] of cases) await refusesUnknownKey(what, call);
});

Deno.test("Every method that takes options refuses an unknown key", async () => {
  await using pool = new ThreadPool({ size: 1, module: targetsUrl });
  const queue = new JoinableQueue<number>();
  const simple = new SimpleQueue<number>();
  const lock = new Lock();
  const rlock = new RLock();
  const semaphore = new Semaphore();
  const event = new Event();
  const condition = new Condition();
  const barrier = new Barrier(1);
  const [a] = Pipe();
  const future = pool.submit(add, [1, 2]);
  await future;
  const cases: [string, () => unknown][] = [
    ["ThreadPool.apply()", () => pool.apply(add, [1, 2], BAD)],
    ["ThreadPool.submit()", () => pool.submit(add, [1, 2], BAD)],
    ["ThreadPool.map()", () => pool.map(identity, [1], BAD)],
    ["ThreadPool.starmap()", () => pool.starmap(add, [[1, 2]], BAD)],
    ["ThreadPool.imap()", () => pool.imap(identity, [1], BAD)],
    ["ThreadPool.imapUnordered()", () => pool.imapUnordered(identity, [1], BAD)],
    ["Future.result()", () => future.result(BAD)],
    ["Future.exception()", () => future.exception(BAD)],
    ["Queue.put()", () => queue.put(1, BAD)],
    ["Queue.get()", () => queue.get(BAD)],
    ["Queue.join()", () => queue.join(BAD)],
    ["Queue.shutdown()", () => queue.shutdown(BAD)],
    ["SimpleQueue.get()", () => simple.get(BAD)],
    ["Lock.acquire()", () => lock.acquire(BAD)],
    ["Lock.hold()", () => lock.hold(BAD)],
    ["RLock.acquire()", () => rlock.acquire(BAD)],
    ["Semaphore.acquire()", () => semaphore.acquire(BAD)],
    ["Event.wait()", () => event.wait(BAD)],
    ["Condition.acquire()", () => condition.acquire(BAD)],
    ["Condition.wait()", () => condition.wait(BAD)],
    ["Condition.waitFor()", () => condition.waitFor(() => true, BAD)],
    ["Barrier.wait()", () => barrier.wait(BAD)],
    ["Connection.recv()", () => a.recv(BAD)],
    ["ThreadPool.close()", () => pool.close(BAD)],
    ["ThreadPool.shutdown()", () => pool.shutdown(BAD)],
  ];
  for (const [what, call] of cases) await refusesUnknownKey(what, call);
});
