import { assertEquals, assertNotMatch, assertStringIncludes } from "@std/assert";
import { Thread } from "../mod.ts";
import { testCommonBehaviour } from "./_common_behaviour.ts";
import { runFixture } from "./_helpers.ts";

testCommonBehaviour(Thread);

/** Found by the workers in this test module, the main module of the test run. */
export function square(n: number): number {
  return n * n;
}

Deno.test("Thread finds an exported target in the main module without 'module'", async () => {
  const threads = [1, 2, 3].map((n) => new Thread({ target: square, args: [n] }));
  for (const thread of threads) thread.start();
  for (const thread of threads) await thread.join();
  assertEquals(threads.map((thread) => thread.result), [1, 4, 9]);
});

Deno.test("Thread catches what is thrown outside its target: the runtime prints none of it", async () => {
  const out = await runFixture("uncaught_threads", [], { timeoutMs: 120_000 });
  assertEquals(out.code, 0, out.stderrText);
  const report = JSON.parse(out.stdoutText.trim().split("\n").at(-1)!);
  assertEquals(report.ended, [
    { name: "timer", exitCode: 1, error: "RangeError: thrown by a timer that the target left" },
    { name: "rejection", exitCode: 1, error: "TypeError: rejected with nobody to handle it" },
    { name: "daemon", exitCode: 1, error: "RangeError: thrown by a timer that the target left" },
  ]);
  // The pool's worker died of its error and was replaced; no task failed.
  assertEquals(report.pool, [1, true, 0, 3]);
  for (const name of ["timer", "rejection", "daemon"]) {
    assertStringIncludes(out.stderrText, `Exception in thread ${name}:`);
  }
  // Deno's "error: Uncaught (in worker ...)", Node's "Uncaught"/"unhandled" notices.
  assertNotMatch(out.stderrText, /uncaught|unhandled/i);
});
