import { assertEquals } from "@std/assert";
import { Thread } from "../mod.ts";
import { testCommonBehaviour } from "./_common_behaviour.ts";

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
