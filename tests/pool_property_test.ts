/**
 * Property-based tests of ThreadPool and Pool (spawn and forkserver). fast-check generates the
 * pool's options (size, maxQueue, maxTasksPerChild, onCrash) and a random sequence of operations:
 * submit() or apply() of a task that returns, throws, returns late, never returns or exits its
 * worker, some with `timeoutMs`; future.cancel(); pauses; waits for one task. The pool then ends
 * with close(), terminate() or close() then terminate(), and every run must keep these invariants:
 *
 * - every task settles exactly once, with an outcome that its kind allows, and none is pending
 *   once join() or terminate() has returned; cancel() returns true exactly when the future was
 *   not done yet;
 * - stats() adds up: tasksCompleted, tasksFailed and tasksCancelled match the outcomes and sum to
 *   the tasks submitted, and nothing is queued, busy or alive at the end;
 * - no worker process outlives join() or terminate();
 * - join() and terminate() return: a hang fails the run with a message instead of holding CI.
 *
 * The default run is short, for CI. Environment variables:
 *
 * - `MULTIPROC_PROPERTY_RUNS=500`: that many generated runs for each kind of pool instead, split
 *   into tests of a few dozen runs, so that none meets the per-test limit of the Node run;
 * - `MULTIPROC_PROPERTY_SEED=<n>`: the seed (part k of a split run uses n + k - 1). fast-check
 *   prints the seed and the path of a failure; `MULTIPROC_PROPERTY_PATH=<path>` with that seed
 *   replays the shrunk counterexample at once (filter on the failing test's name).
 *
 * ```sh
 * MULTIPROC_PROPERTY_RUNS=500 deno test -A tests/pool_property_test.ts
 * MULTIPROC_PROPERTY_SEED=42 MULTIPROC_PROPERTY_PATH="3:1:0" \
 *   deno test -A tests/pool_property_test.ts --filter "ThreadPool"
 * ```
 */
import { assert, assertEquals, assertInstanceOf, assertRejects, fail } from "@std/assert";
import fc from "npm:fast-check@^4.10.2";
import process from "node:process";
import {
  BrokenPoolError,
  CancelledError,
  type Future,
  Pool,
  type PoolOptions,
  QueueFullError,
  registerErrorClass,
  ThreadPool,
  TimeoutError,
  WorkerCrashedError,
} from "../mod.ts";
import { childPidsOf, isPidAlive, waitUntil } from "./_helpers.ts";
import {
  echo,
  echoAfter,
  exitWith,
  hang,
  propertyTargetsUrl,
  PropertyTaskError,
  throwWith,
} from "./fixtures/property_targets.ts";

registerErrorClass(PropertyTaskError);

// ---------------------------------------------------------------------------------------------
// What a run is made of

type TaskSpec =
  | { kind: "value"; value: number }
  | { kind: "delay"; value: number; ms: number }
  | { kind: "throw"; value: number }
  | { kind: "crash"; code: number }
  | { kind: "hang" };

type Op =
  | { op: "submit"; task: TaskSpec; via: "submit" | "apply"; timeoutMs: number | undefined }
  | { op: "cancel"; index: number }
  | { op: "pause"; ms: number }
  | { op: "await"; index: number };

type Ending = "close" | "terminate" | "close-then-terminate";

interface Scenario {
  options: {
    size: number;
    maxQueue: number | undefined;
    maxTasksPerChild: number | undefined;
    onCrash: "respawn" | "break";
  };
  ops: Op[];
  ending: Ending;
  /** A pause before the ending, so that it meets the tasks at different stages. */
  settleMs: number;
}

/** The kinds of pool under test, with their share of the runs. */
interface Kind {
  label: string;
  make: (options: PoolOptions) => ThreadPool | Pool;
  processes: boolean;
  /** Whether new children of this process that are not workers may appear: forkserver spares. */
  spares: boolean;
  /** Runs in the default (CI) run. */
  runs: number;
  /** Runs per test when a long run is split. */
  batch: number;
  maxOps: number;
}

const kinds: Kind[] = [
  {
    label: "ThreadPool",
    make: (options) => new ThreadPool(options),
    processes: false,
    spares: false,
    runs: 20,
    batch: 25,
    maxOps: 14,
  },
  {
    label: "Pool (spawn)",
    make: (options) => new Pool({ ...options, startMethod: "spawn" }),
    processes: true,
    spares: false,
    runs: 6,
    batch: 10,
    maxOps: 8,
  },
  {
    label: "Pool (forkserver)",
    make: (options) => new Pool({ ...options, startMethod: "forkserver" }),
    processes: true,
    spares: true,
    runs: 4,
    batch: 10,
    maxOps: 8,
  },
];

/** How long join(), terminate() or one task may take before the run counts as hung. */
const HANG_MS = 15_000;
/**
 * How long fast-check may shrink a failure. Each try starts real workers, and a hang costs
 * `HANG_MS`: past this, the smallest failure so far is reported, within the Node run's limit.
 */
const SHRINK_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Arbitraries

const value = fc.integer({ min: 0, max: 999 });
const rarely = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: arbitrary },
  );

const taskArb: fc.Arbitrary<TaskSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("value" as const), value }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("delay" as const),
      value,
      ms: fc.integer({ min: 0, max: 30 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("throw" as const), value }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("crash" as const),
      code: fc.integer({ min: 1, max: 9 }),
    }),
  },
);

const via = fc.constantFrom("submit" as const, "apply" as const);
const timeoutMs = fc.integer({ min: 0, max: 300 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("submit" as const),
      task: taskArb,
      via,
      timeoutMs: rarely(timeoutMs),
    }),
  },
  // A task that never ends always has a timeout, so that close() + join() can finish.
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("submit" as const),
      task: fc.constant({ kind: "hang" as const }),
      via,
      timeoutMs,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("cancel" as const), index: fc.nat(20) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("pause" as const),
      ms: fc.integer({ min: 0, max: 30 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("await" as const), index: fc.nat(20) }) },
);

function scenarioArb(kind: Kind): fc.Arbitrary<Scenario> {
  return fc.record({
    options: fc.record({
      size: fc.integer({ min: 1, max: 3 }),
      maxQueue: rarely(fc.integer({ min: 1, max: 4 })),
      maxTasksPerChild: rarely(fc.integer({ min: 1, max: 3 })),
      onCrash: fc.constantFrom("respawn" as const, "break" as const),
    }),
    ops: fc.array(opArb, { minLength: 1, maxLength: kind.maxOps }),
    // close() + join() has the most to wait for, so it gets half of the runs.
    ending: fc.oneof(
      { weight: 2, arbitrary: fc.constant("close" as const) },
      { weight: 1, arbitrary: fc.constant("terminate" as const) },
      { weight: 1, arbitrary: fc.constant("close-then-terminate" as const) },
    ),
    // Often none, so that the ending meets workers that are still starting or crashing.
    settleMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30 })),
  });
}

// ---------------------------------------------------------------------------------------------
// One run

type Outcome = { ok: true; value: [number, number] } | { ok: false; error: unknown };

/** A task of the run and what became of it. */
interface Submitted {
  index: number;
  spec: TaskSpec;
  timeoutMs: number | undefined;
  /** Set for submit(); apply() gives a bare promise. */
  future: Future<[number, number]> | undefined;
  settled: Promise<void>;
  settlements: number;
  outcome: Outcome | undefined;
  /** cancel() returned true. */
  cancelled: boolean;
  /** Still pending when terminate() was called; undefined when not known (apply). */
  pendingAtTerminate: boolean | undefined;
  /** maxQueue tasks waited when it was submitted: apply() may reject with QueueFullError. */
  refusable: boolean;
}

const functions = { value: echo, delay: echoAfter, throw: throwWith, crash: exitWith, hang };

function argsOf(spec: TaskSpec): number[] {
  switch (spec.kind) {
    case "value":
    case "throw":
      return [spec.value];
    case "delay":
      return [spec.value, spec.ms];
    case "crash":
      return [spec.code];
    case "hang":
      return [];
  }
}

/** `promise`, or a rejection that says what hung after `ms`. */
async function within<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runScenario(kind: Kind, scenario: Scenario): Promise<void> {
  const { options, ops, ending } = scenario;
  const childrenBefore = new Set(kind.processes ? childPidsOf(process.pid) : []);
  const pool = kind.make({ ...options, module: propertyTargetsUrl });
  const submitted: Submitted[] = [];
  let crashSubmitted = false;
  try {
    for (const op of ops) {
      if (op.op === "submit") {
        submitTask(pool, op, submitted, scenario, crashSubmitted);
        if (op.task.kind === "crash") crashSubmitted = true;
      } else if (op.op === "cancel") {
        const futures = submitted.filter((task) => task.future !== undefined);
        if (futures.length === 0) continue;
        const task = futures[op.index % futures.length];
        const future = task.future!;
        const wasDone = future.done();
        const cancelled = future.cancel();
        assertEquals(cancelled, !wasDone, `cancel() of task ${task.index} returned ${cancelled}`);
        if (cancelled) {
          task.cancelled = true;
          assert(future.cancelled() && future.done(), `task ${task.index} is not cancelled`);
        }
      } else if (op.op === "pause") {
        await pause(op.ms);
      } else if (submitted.length > 0) {
        const task = submitted[op.index % submitted.length];
        await within(task.settled, HANG_MS, `task ${task.index} (${JSON.stringify(task.spec)})`);
      }
    }
    await pause(scenario.settleMs);

    const terminates = ending !== "close";
    if (ending !== "terminate") {
      pool.close();
      assertThrowsAny(() => pool.submit(echo, [0]), "submit() after close()");
      await assertRejects(() => pool.apply(echo, [0]));
    }
    if (ending === "close") {
      await within(pool.join(), HANG_MS, "join() after close()");
    } else {
      if (ending === "close-then-terminate") await pause(scenario.settleMs);
      for (const task of submitted) {
        task.pendingAtTerminate = task.future ? !task.future.done() : undefined;
      }
      await within(pool.terminate(), HANG_MS, "terminate()");
      await within(pool.join(), HANG_MS, "join() after terminate()");
      assertThrowsAny(() => pool.submit(echo, [0]), "submit() after terminate()");
    }

    // Every task settled before join() returned, and once.
    for (const task of submitted) {
      const what = `task ${task.index} (${JSON.stringify(task.spec)})`;
      assertEquals(task.settlements, 1, `${what} settled ${task.settlements} times`);
      if (task.future) assert(task.future.done(), `${what} is not done`);
      checkOutcome(task, scenario, terminates, crashSubmitted);
    }

    const stats = pool.stats();
    let completed = 0;
    let cancelled = 0;
    // apply() refused past maxQueue made no task.
    let refused = 0;
    for (const task of submitted) {
      if (task.outcome!.ok) completed++;
      else if (task.outcome!.error instanceof QueueFullError) refused++;
      else if (wasCancelled(task)) cancelled++;
    }
    const failed = submitted.length - completed - cancelled - refused;
    const counts = `stats() ${JSON.stringify(stats)}`;
    assertEquals(stats.tasksCompleted, completed, `${counts}: tasksCompleted`);
    assertEquals(stats.tasksCancelled, cancelled, `${counts}: tasksCancelled`);
    assertEquals(stats.tasksFailed, failed, `${counts}: tasksFailed`);
    assertEquals(stats.queueLength, 0, `${counts}: queueLength`);
    assertEquals(stats.busyWorkers, 0, `${counts}: busyWorkers`);
    assertEquals(stats.workers, 0, `${counts}: workers`);

    if (kind.processes) {
      const pids = new Set<number>();
      for (const task of submitted) {
        if (task.outcome!.ok) pids.add(task.outcome!.value[1]);
      }
      assert(!pids.has(process.pid), "a task of a Pool ran in the parent process");
      const alive = () => [...pids].filter(isPidAlive);
      assert(await waitUntil(() => alive().length === 0, 10_000), `workers alive: ${alive()}`);
      if (!kind.spares) {
        // Spawn starts no spares: any new child of this process is a worker left behind.
        const left = () => childPidsOf(process.pid).filter((pid) => !childrenBefore.has(pid));
        assert(await waitUntil(() => left().length === 0, 10_000), `children left: ${left()}`);
      }
    }
  } catch (error) {
    // Shrinking runs more scenarios: leave none of this one's workers to them.
    await within(pool.terminate(), HANG_MS, "terminate() after a failed run").catch(() => {});
    throw error;
  }
}

function submitTask(
  pool: ThreadPool | Pool,
  op: Extract<Op, { op: "submit" }>,
  submitted: Submitted[],
  scenario: Scenario,
  crashSubmitted: boolean,
): void {
  const fn = functions[op.task.kind] as (...args: number[]) => [number, number];
  const args = argsOf(op.task);
  const taskOptions = op.timeoutMs === undefined ? undefined : { timeoutMs: op.timeoutMs };
  // A broken pool refuses apply() with the error that its tasks rejected with, which would be
  // told from theirs only by timing; submit() throws instead, so a pool that can break uses it.
  const useApply = op.via === "apply" && scenario.options.onCrash === "respawn";
  let future: Future<[number, number]> | undefined;
  let promise: PromiseLike<[number, number]>;
  // Whether maxQueue tasks wait already: only then may the task be refused.
  const { maxQueue } = scenario.options;
  const full = maxQueue !== undefined && pool.stats().queueLength >= maxQueue;
  try {
    if (useApply) promise = pool.apply(fn, args, taskOptions);
    else promise = future = pool.submit(fn, args, taskOptions);
  } catch (error) {
    // A full queue refuses tasks past maxQueue, and only then.
    if (error instanceof QueueFullError) {
      assert(full, `submit() threw a QueueFullError with room in the queue: ${error.message}`);
      return;
    }
    // Only a pool broken by a crash refuses tasks before close().
    assertInstanceOf(error, BrokenPoolError);
    assert(
      scenario.options.onCrash === "break" && crashSubmitted,
      `submit() threw a BrokenPoolError without a crash: ${error.message}`,
    );
    return;
  }
  const task: Submitted = {
    index: submitted.length,
    spec: op.task,
    timeoutMs: op.timeoutMs,
    future,
    settled: Promise.resolve(),
    settlements: 0,
    outcome: undefined,
    cancelled: false,
    pendingAtTerminate: undefined,
    refusable: full,
  };
  task.settled = Promise.resolve(promise).then(
    (value) => {
      task.settlements++;
      task.outcome = { ok: true, value };
    },
    (error) => {
      task.settlements++;
      task.outcome = { ok: false, error };
    },
  );
  submitted.push(task);
}

function assertThrowsAny(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch {
    return;
  }
  fail(`${what} did not throw`);
}

function wasCancelled(task: Submitted): boolean {
  if (task.future) return task.future.cancelled();
  // apply() cannot be cancelled but by its timeout.
  return !task.outcome!.ok && task.outcome!.error instanceof TimeoutError;
}

/** The outcome must be one that the task's kind, its options and the run's ending allow. */
function checkOutcome(
  task: Submitted,
  scenario: Scenario,
  terminated: boolean,
  crashSubmitted: boolean,
): void {
  const what = `task ${task.index} (${JSON.stringify(task.spec)})`;
  const { spec } = task;
  const outcome = task.outcome!;
  if (!outcome.ok && outcome.error instanceof QueueFullError) {
    assert(task.refusable, `${what} was refused with room in the queue`);
    return;
  }
  if (task.pendingAtTerminate) {
    assert(!outcome.ok, `${what} was pending at terminate() and resolved`);
    assertInstanceOf(outcome.error, BrokenPoolError, `${what} was pending at terminate()`);
    assert(!wasCancelled(task), `${what} was pending at terminate() and reads as cancelled`);
    return;
  }
  if (outcome.ok) {
    assert(spec.kind === "value" || spec.kind === "delay", `${what} resolved`);
    assertEquals(outcome.value[0], spec.value, `${what} resolved with the wrong value`);
    assert(!task.cancelled, `${what} resolved after cancel() returned true`);
    return;
  }
  const { error } = outcome;
  if (wasCancelled(task)) {
    if (error instanceof TimeoutError) {
      assert(task.timeoutMs !== undefined, `${what} timed out without timeoutMs`);
    } else {
      assertInstanceOf(error, CancelledError, `${what} was cancelled`);
      assert(task.cancelled, `${what} reads as cancelled without a cancel()`);
    }
    return;
  }
  assert(!task.cancelled, `${what} was cancelled and rejected with ${error}`);
  if (error instanceof BrokenPoolError) {
    const broken = scenario.options.onCrash === "break" && crashSubmitted;
    assert(terminated || broken, `${what} rejected with ${error} though the pool never broke`);
    return;
  }
  if (spec.kind === "throw") {
    assertInstanceOf(error, PropertyTaskError, what);
    assertEquals(error.message, `task ${spec.value} failed`);
  } else if (spec.kind === "crash") {
    assertInstanceOf(error, WorkerCrashedError, what);
    assertEquals(error.exitCode, spec.code, `${what}: ${error.message}`);
  } else {
    fail(`${what} rejected with ${error instanceof Error ? error.stack : error}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The tests

function integerFromEnv(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const number = Number(text);
  if (!Number.isSafeInteger(number)) {
    throw new RangeError(`'${name}' must be an integer: received "${text}"`);
  }
  return number;
}

const requestedRuns = integerFromEnv("MULTIPROC_PROPERTY_RUNS");
if (requestedRuns !== undefined && requestedRuns < 1) {
  throw new RangeError(`'MULTIPROC_PROPERTY_RUNS' must be positive: received "${requestedRuns}"`);
}
const seed = integerFromEnv("MULTIPROC_PROPERTY_SEED");
const path = process.env.MULTIPROC_PROPERTY_PATH || undefined;

for (const kind of kinds) {
  const total = requestedRuns ?? kind.runs;
  const parts = Math.ceil(total / kind.batch);
  for (let part = 0; part < parts; part++) {
    const numRuns = Math.min(kind.batch, total - part * kind.batch);
    Deno.test({
      name: `${kind.label} keeps its invariants over random operations${
        parts > 1 ? ` (part ${part + 1} of ${parts})` : ""
      }`,
      // Forkserver spares outlive each test by design, and Deno may keep the channel of a child
      // that exited by itself for a moment after its exit. The runs check pids instead.
      sanitizeResources: !kind.processes,
      sanitizeOps: !kind.processes,
      fn: async () => {
        let failedAt: number | undefined;
        const property = fc.asyncProperty(scenarioArb(kind), async (scenario) => {
          // A try that is not run passes, which ends the shrinking.
          if (failedAt !== undefined && Date.now() - failedAt > SHRINK_MS) return;
          try {
            await runScenario(kind, scenario);
          } catch (error) {
            if (failedAt === undefined) {
              failedAt = Date.now();
              // The first failure as it happened, before shrinking changes the scenario.
              console.error(`${kind.label}: first failure, on ${JSON.stringify(scenario)}:`, error);
            }
            throw error;
          }
        });
        await fc.assert(
          property,
          {
            numRuns,
            seed: seed === undefined ? undefined : (seed + part) | 0,
            path: part === 0 ? path : undefined,
          },
        );
      },
    });
  }
}
