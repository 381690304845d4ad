/**
 * What Thread and Process must both do, registered once for each: the same semantics, tested with
 * real workers and real child processes.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { type Process, Thread, type ThreadOptions } from "../mod.ts";
import {
  add,
  delayed,
  fail,
  forever,
  rejectLaterThenWait,
  spinForever,
  targetsUrl,
  throwLaterThenWait,
  unsendable,
} from "./fixtures/targets.ts";
import { captureStderr } from "./_helpers.ts";

type Kind = typeof Thread | typeof Process;
// deno-lint-ignore no-explicit-any
type AnyOptions = ThreadOptions<any[], unknown>;

/**
 * Registers the shared tests for `Kind`, each named after it ("Thread.join() ..."), with `suffix`
 * after the name (" under forkserver").
 */
export function testCommonBehaviour(Kind: Kind, suffix = ""): void {
  const kind = Kind === Thread ? "Thread" : "Process";
  const test = (name: string, fn: () => void | Promise<void>) =>
    // Forkserver spares outlive each test by design; they are stopped when the test run exits.
    Deno.test({ name: name + suffix, fn, sanitizeResources: !suffix, sanitizeOps: !suffix });
  const make = (options: AnyOptions): Thread | Process => new Kind(options);
  // Starts `worker`, waits for it, and returns what it printed on stderr, which a failing target
  // fills with its traceback as Python's does: `Exception in thread …:` or `Process …:`.
  const runCapturing = async (worker: Thread | Process): Promise<string> => {
    const { stderr } = await captureStderr(async () => {
      worker.start();
      await worker.join();
    });
    const header = kind === "Thread"
      ? `Exception in thread ${worker.name}:`
      : `Process ${worker.name}:`;
    assertStringIncludes(stderr, header);
    return stderr;
  };

  test(`${kind} runs an exported target with its args and keeps the result`, async () => {
    const worker = make({ target: add, args: [2, 40], module: targetsUrl });
    assertEquals(worker.exitCode, null);
    worker.start();
    assert(worker.isAlive());
    await worker.join();
    assertEquals(worker.result, 42);
    assertEquals(worker.exitCode, 0);
    assertEquals(worker.error, undefined);
    assert(!worker.isAlive());
  });

  test(`${kind} awaits an async target`, async () => {
    const worker = make({
      target: delayed,
      args: [{ nested: [1, "two"] }, 50],
      module: targetsUrl,
    });
    worker.start();
    await worker.join();
    assertEquals(worker.result, { nested: [1, "two"] });
  });

  test(`${kind} sends a self-contained function that is not exported by its source`, async () => {
    const worker = make({
      target: (values: number[]) => values.map((v) => Math.sqrt(v)).reduce((a, b) => a + b, 0),
      args: [[1, 4, 9]],
    });
    worker.start();
    await worker.join();
    assertEquals(worker.result, 6);
  });

  test(`${kind} rebuilds a thrown error with its class name, message, stack and cause`, async () => {
    const worker = make({ target: fail, args: ["it broke"], module: targetsUrl });
    const stderr = await runCapturing(worker);
    assertStringIncludes(stderr, "it broke");
    assertEquals(worker.exitCode, 1);
    const error = worker.error!;
    assertInstanceOf(error, Error);
    assertEquals(error.name, "TaskFailedError");
    assertEquals(error.message, "it broke");
    assertStringIncludes(error.stack!, "targets");
    assertEquals((error as Error & { code?: string }).code, "E_TASK");
    assertInstanceOf(error.cause, RangeError);
    assertEquals((error.cause as Error).message, "the inner cause");
  });

  test(`${kind} ends with exit code 1 when a timer that its target left throws`, async () => {
    const worker = make({ target: throwLaterThenWait, args: [60_000], module: targetsUrl });
    const { stderr } = await captureStderr(async () => {
      worker.start();
      await worker.join();
    });
    assertEquals(worker.exitCode, 1);
    assertEquals(worker.result, undefined);
    // A thread's is printed by the parent as its target's would be; a process's by its runtime.
    assertStringIncludes(stderr, "thrown by a timer that the target left");
    if (kind === "Thread") {
      assertStringIncludes(stderr, `Exception in thread ${worker.name}:`);
      assertInstanceOf(worker.error, RangeError);
      assertEquals(worker.error.message, "thrown by a timer that the target left");
    }
  });

  test(`${kind} ends with exit code 1 on a rejection that nobody handles`, async () => {
    const worker = make({ target: rejectLaterThenWait, args: [60_000], module: targetsUrl });
    const { stderr } = await captureStderr(async () => {
      worker.start();
      await worker.join();
    });
    assertEquals(worker.exitCode, 1);
    assertEquals(worker.result, undefined);
    assertStringIncludes(stderr, "rejected with nobody to handle it");
    if (kind === "Thread") {
      assertStringIncludes(stderr, `Exception in thread ${worker.name}:`);
      assertInstanceOf(worker.error, TypeError);
    }
  });

  test(`${kind}.join(timeoutMs) resolves while the target still runs`, async () => {
    const worker = make({ target: forever, module: targetsUrl });
    worker.start();
    const started = Date.now();
    await worker.join(200);
    assert(Date.now() - started >= 150, "join returned before its timeout");
    assert(worker.isAlive());
    assertEquals(worker.exitCode, null);
    worker.terminate();
    await worker.join();
    assertEquals(worker.exitCode, -15);
    assert(!worker.isAlive());
  });

  test(`${kind} stuck in a synchronous endless loop is ended by terminate()`, async () => {
    const worker = make({ target: spinForever, module: targetsUrl });
    worker.start();
    await worker.join(300);
    assert(worker.isAlive(), "the loop ended by itself");
    worker.terminate();
    await worker.join();
    assertEquals(worker.exitCode, -15);
    assert(!worker.isAlive());
  });

  test(`${kind} gives the exit code that the target passed to process.exit()`, async () => {
    const worker = make({
      target: () =>
        (globalThis as unknown as { process: { exit(code: number): void } }).process.exit(3),
    });
    worker.start();
    await worker.join();
    assertEquals(worker.exitCode, 3);
  });

  test(`${kind}.start() twice throws`, async () => {
    const worker = make({ target: add, args: [1, 1], module: targetsUrl });
    worker.start();
    assertThrows(
      () => worker.start(),
      TypeError,
      `${kind} '${worker.name}' can only be started once`,
    );
    await worker.join();
  });

  test(`${kind}.join() before start() rejects`, async () => {
    const worker = make({ target: add, args: [1, 1], module: targetsUrl });
    await assertRejects(() => worker.join(), TypeError, "before it is started: call start() first");
  });

  test(`${kind}.daemon cannot be set after start() nor to a non-boolean`, async () => {
    const worker = make({ target: add, args: [1, 1], module: targetsUrl });
    worker.daemon = true;
    worker.daemon = false;
    assertThrows(() => worker.daemon = "yes" as unknown as boolean, TypeError, "'daemon'");
    worker.start();
    assertThrows(
      () => worker.daemon = true,
      TypeError,
      `Cannot set 'daemon' of ${kind} '${worker.name}': it has already started`,
    );
    assertEquals(worker.daemon, false);
    await worker.join();
  });

  test(`${kind}.join() rejects a negative timeout`, async () => {
    const worker = make({ target: add, args: [1, 1], module: targetsUrl });
    worker.start();
    await assertRejects(() => worker.join(-1), RangeError, "'timeoutMs'");
    await worker.join();
  });

  test(`${kind} refuses a target that is not a function`, () => {
    assertThrows(
      () => make({ target: 42 as unknown as () => void }),
      TypeError,
      "'target' must be a function: received 42",
    );
  });

  test(`${kind} refuses a closure over outside names, naming them`, () => {
    // An object, not a number: Bun's transpiler writes a constant number into the function's
    // source, which then has no outside name left.
    const offset = { by: 5 };
    const error = assertThrows(
      () => make({ target: (x: number) => x + offset.by, args: [1] }),
      TypeError,
    );
    assertStringIncludes(error.message, "'offset'");
    assertStringIncludes(error.message, "export it");
  });

  test(`${kind} refuses a module that does not exist`, () => {
    assertThrows(
      () => make({ target: add, module: "./no/such/module.ts" }),
      TypeError,
      "'module' does not exist",
    );
  });

  test(`${kind} refuses a module that does not export the target`, () => {
    const offset = { by: 1 };
    assertThrows(
      () => make({ target: (x: number) => x + offset.by, module: targetsUrl }),
      TypeError,
      "does not export",
    );
  });

  test(`${kind}.start() names the argument that cannot be cloned`, () => {
    const worker = make({ target: add, args: [1, () => 2] as never, module: targetsUrl });
    assertThrows(() => worker.start(), TypeError, "argument 1");
    assert(!worker.isAlive());
  });

  test(`${kind} reports a result that cannot be sent back as an error`, async () => {
    const worker = make({ target: unsendable, module: targetsUrl });
    assertStringIncludes(await runCapturing(worker), "return value");
    assertEquals(worker.exitCode, 1);
    assertInstanceOf(worker.error, TypeError);
    assertStringIncludes(worker.error!.message, "return value");
  });

  test(`${kind} gives exit code 1 and names the module when it fails to import`, async () => {
    const module = new URL(
      `./throws_on_import${targetsUrl.slice(targetsUrl.lastIndexOf("."))}`,
      targetsUrl,
    );
    const { unreachableTarget } = { unreachableTarget: () => 1 };
    const worker = make({ target: unreachableTarget, module: module.href });
    assertStringIncludes(await runCapturing(worker), "throws_on_import");
    assertEquals(worker.exitCode, 1);
    assertStringIncludes(worker.error!.message, "throws_on_import");
    assertStringIncludes(String((worker.error!.cause as Error).message), "always fails to import");
  });

  test(`${kind} names count up from ${kind}-1 unless given`, () => {
    const a = make({ target: add, module: targetsUrl });
    const b = make({ target: add, module: targetsUrl });
    assertMatch(a.name, new RegExp(`^${kind}-\\d+$`));
    assertEquals(Number(b.name.split("-")[1]), Number(a.name.split("-")[1]) + 1);
    assertEquals(make({ target: add, module: targetsUrl, name: "worker-x" }).name, "worker-x");
  });
}
