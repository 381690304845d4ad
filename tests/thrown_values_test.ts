/**
 * What a target throws comes back as it was thrown: an Error rebuilt with its class, and any other
 * value (a plain object, a string, a number) intact, from threads, processes and both pools.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { BrokenPoolError, Pool, Process, Thread, ThreadPool } from "../mod.ts";
import { captureStderr } from "./_helpers.ts";

// Self-contained targets: they travel as source text, so no fixture module is needed.
const throwObject = () => {
  throw { code: 5, detail: ["a", "b"] };
};
const throwString = () => {
  throw "plain text";
};
const rejectNumber = () => Promise.reject(42);
const throwUncloneable = () => {
  throw { callback: () => 1 };
};

/** Runs `worker` to its end and returns its traceback, captured from stderr. */
async function runCapturing(worker: Thread | Process): Promise<string> {
  const { stderr } = await captureStderr(async () => {
    worker.start();
    await worker.join();
  });
  const header = worker instanceof Thread
    ? `Exception in thread ${worker.name}:`
    : `Process ${worker.name}:`;
  assertStringIncludes(stderr, header);
  return stderr;
}

const cases: [string, () => unknown, unknown][] = [
  ["a plain object", throwObject, { code: 5, detail: ["a", "b"] }],
  ["a string", throwString, "plain text"],
  ["a number (as a rejection)", rejectNumber, 42],
];

for (const Kind of [Thread, Process]) {
  for (const [what, target, expected] of cases) {
    Deno.test(`${Kind.name} keeps ${what} thrown by its target intact`, async () => {
      const worker = new Kind({ target });
      const stderr = await runCapturing(worker);
      // The traceback shows the value itself, as Python prints what was raised.
      assertStringIncludes(stderr, typeof expected === "object" ? "code: 5" : String(expected));
      assertEquals(worker.exitCode, 1);
      assertEquals(worker.error, expected);
      assert(!(worker.error instanceof Error));
    });
  }

  Deno.test(`${Kind.name} describes a thrown value that cannot be cloned`, async () => {
    const worker = new Kind({ target: throwUncloneable });
    assertStringIncludes(await runCapturing(worker), "callback");
    assertInstanceOf(worker.error, Error);
    assertEquals(
      worker.error.message,
      "Non-error value thrown, which cannot be sent: object Object with keys 'callback'",
    );
  });
}

for (const Kind of [ThreadPool, Pool]) {
  Deno.test(`${Kind.name} rejects with the very value that a task threw`, async () => {
    await using pool = new Kind({ size: 1 });
    for (const [, target, expected] of cases) {
      const reason = await pool.apply(target).then(() => "resolved", (error) => error);
      assertEquals(reason, expected);
    }
    const reason = await pool.submit(throwObject).then(() => "resolved", (error) => error);
    assertEquals(reason, { code: 5, detail: ["a", "b"] });
  });

  Deno.test(`${Kind.name} breaks with the very value that its initializer threw`, async () => {
    await using pool = new Kind({ size: 1, initializer: throwString });
    const error = await assertRejects(() => pool.apply(() => 1), BrokenPoolError);
    assertEquals(error.cause, "plain text");
  });
}
