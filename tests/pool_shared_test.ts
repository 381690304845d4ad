/** Shared objects as arguments of pool tasks: the same objects, in threads and in processes. */
import { assertEquals } from "@std/assert";
import { JoinableQueue, Pool, ThreadPool, Value } from "../mod.ts";
import { addUnderLock } from "./fixtures/targets.ts";

const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

for (
  const [label, make] of [
    ["ThreadPool", () => new ThreadPool({ size: 2 })],
    ["Pool", () => new Pool({ size: 2 })],
  ] as const
) {
  const times = label === "ThreadPool" ? 300 : 30;
  Deno.test({
    name: `${label} tasks add to a Value under its lock: exactly N×M`,
    ...noSanitizers,
    fn: async () => {
      const total = new Value("i32", 0);
      const pool = make();
      try {
        const done = await Promise.all(
          Array.from({ length: 4 }, () => pool.apply(addUnderLock, [total, times])),
        );
        assertEquals(done, [times, times, times, times]);
        assertEquals(total.value, 4 * times);
      } finally {
        await pool.terminate();
      }
    },
  });

  Deno.test({
    name: `${label} tasks take items from a JoinableQueue exactly once`,
    ...noSanitizers,
    fn: async () => {
      const queue = new JoinableQueue();
      for (let i = 0; i < 20; i++) await queue.put(i);
      const pool = make();
      try {
        const drain = async (q: JoinableQueue, count: number) => {
          const taken: number[] = [];
          for (let i = 0; i < count; i++) {
            taken.push(await q.get() as number);
            await q.taskDone();
          }
          return taken;
        };
        const parts = await Promise.all([
          pool.apply(drain, [queue, 10]),
          pool.apply(drain, [queue, 10]),
        ]);
        await queue.join();
        assertEquals(parts.flat().sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
      } finally {
        await pool.terminate();
      }
    },
  });
}
