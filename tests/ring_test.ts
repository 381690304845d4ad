/**
 * Unit tests of the ring buffer under the queues and pipes (`src/_ring.ts`): order, wrap-around,
 * growth with a wrapped ring, both encodings, the mutex, and a ring shared with a real thread.
 */
import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { Thread } from "../mod.ts";
import { decodeItem, encodeItem, H, Ring, type RingBuffers } from "../src/_ring.ts";

function put(ring: Ring, item: unknown): void {
  const { tag, payload } = encodeItem(item);
  ring.push(tag, payload);
}

function take(ring: Ring): unknown {
  const { tag, payload } = ring.shift();
  return decodeItem(tag, payload);
}

/** Run in a thread: puts `count` numbered items on the ring whose buffers it is given. */
export function fillRing(buffers: RingBuffers, count: number, owner: number): number {
  const ring = new Ring(buffers);
  for (let i = 0; i < count; i++) {
    ring.lockSync(owner);
    try {
      const { tag, payload } = encodeItem({ i, text: "x".repeat(i % 50) });
      ring.push(tag, payload);
    } finally {
      ring.unlock();
    }
  }
  return ring.count;
}

Deno.test("Ring gives items back in the order they were put", () => {
  const ring = new Ring();
  const items = [1, "two", { three: [3] }, null, true, [], ""];
  for (const item of items) put(ring, item);
  assertEquals(ring.count, items.length);
  assertEquals(items.map(() => take(ring)), items);
  assertEquals(ring.count, 0);
  assertEquals(ring.header[H.USED], 0, "no bytes are left in use");
});

Deno.test("Ring keeps values that JSON cannot hold exactly, through structured clone", () => {
  const ring = new Ring();
  const items: unknown[] = [
    new Map([[1, "a"]]),
    new Date(0),
    10n ** 20n,
    new Uint8Array([1, 2, 3]),
    -0,
    NaN,
    Infinity,
    undefined,
    [1, , 3],
    { nested: { deep: new Date(5) } },
  ];
  for (const item of items) put(ring, item);
  const back = items.map(() => take(ring));
  assertEquals(back, items);
  assert(Object.is(back[4], -0), "-0 stays -0");
  // A Set on its own: Node 20's assertEquals cannot compare Sets.
  put(ring, new Set([1, 2]));
  const set = take(ring);
  assert(set instanceof Set);
  assertEquals([...set], [1, 2]);
  assertEquals(encodeItem({ a: [1, "b"] }).tag, 1, "plain data travels as JSON");
  assertEquals(encodeItem(new Map()).tag, 2, "a Map travels through node:v8");
});

Deno.test("Ring refuses an item that cannot be cloned, naming the fix", () => {
  const error = assertThrows(() => encodeItem({ f: () => 1 }), TypeError);
  assert(error.message.includes("cannot be put on the queue"), error.message);
  assert(error.message.includes("structured clone"), error.message);
});

Deno.test("Ring wraps around its end and keeps the order", () => {
  const ring = new Ring();
  const capacity = ring.header[H.CAPACITY];
  // Items of about a fifth of the ring: the sixth cannot fit at the end and wraps to the start.
  const big = (n: number) => ({ n, pad: "p".repeat(Math.floor(capacity / 5) - 40) });
  let next = 0;
  let expected = 0;
  let wrapped = false;
  for (let round = 0; round < 20; round++) {
    while (ring.count < 4) put(ring, big(next++));
    if (ring.header[H.TAIL] < ring.header[H.HEAD]) wrapped = true;
    for (let i = 0; i < 2; i++) assertEquals((take(ring) as { n: number }).n, expected++);
  }
  while (ring.count > 0) assertEquals((take(ring) as { n: number }).n, expected++);
  assert(wrapped, "the tail went round to the start");
  assertEquals(expected, next);
  assertEquals(ring.header[H.CAPACITY], capacity, "a ring that never holds more does not grow");
});

Deno.test("Ring grows for an item larger than itself, also while wrapped", () => {
  const ring = new Ring();
  const capacity = ring.header[H.CAPACITY];
  const quarter = (n: number) => ({ n, pad: "q".repeat(Math.floor(capacity / 4) - 40) });
  // Wrap the ring: fill, take from the front, fill again so that the tail is before the head.
  for (let n = 0; n < 3; n++) put(ring, quarter(n));
  assertEquals((take(ring) as { n: number }).n, 0);
  assertEquals((take(ring) as { n: number }).n, 1);
  put(ring, quarter(3));
  put(ring, quarter(4));
  assert(ring.header[H.TAIL] <= ring.header[H.HEAD], "the ring is wrapped");
  const huge = { n: 5, pad: "h".repeat(capacity * 3) };
  put(ring, huge);
  assert(ring.header[H.CAPACITY] > capacity * 3, "the ring grew");
  assertEquals(
    [take(ring), take(ring), take(ring)].map((item) => (item as { n: number }).n),
    [2, 3, 4],
  );
  assertEquals(take(ring), huge);
  assertEquals(ring.count, 0);
});

Deno.test("Ring's mutex lets one owner in, and a dead owner's hold is undone", async () => {
  const ring = new Ring();
  assert(ring.tryLock(7));
  assertFalse(ring.tryLock(8), "a second owner waits");
  ring.releaseOwnedBy(8);
  assertFalse(ring.tryLock(8), "an owner that does not hold it releases nothing");
  ring.releaseOwnedBy(7);
  assert(ring.tryLock(8), "the dead owner's hold is gone");
  const waiting = ring.lock(9);
  ring.unlock();
  assert(await waiting, "a waiter gets the mutex once it is unlocked");
  ring.unlock();
});

Deno.test("Ring shared with a thread: every item that the thread puts arrives, in order", async () => {
  const ring = new Ring();
  const count = 3000;
  const thread = new Thread({ target: fillRing, args: [ring.buffers, count, 42] });
  thread.start();
  const seen: number[] = [];
  while (seen.length < count) {
    if (ring.count === 0) {
      if (!thread.isAlive() && ring.count === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 1));
      continue;
    }
    await ring.lock(1);
    try {
      while (ring.count > 0) seen.push((take(ring) as { i: number }).i);
    } finally {
      ring.unlock();
    }
  }
  await thread.join();
  assertEquals(thread.error, undefined);
  assertEquals(seen.length, count);
  assertEquals(seen, Array.from({ length: count }, (_, i) => i));
});
