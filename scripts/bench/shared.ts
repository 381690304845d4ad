/**
 * The cost of the shared objects, each against the bare mechanism under it, measured in one run:
 *
 * - uncontended `Lock` acquire + release in a worker thread (sync and async forms), against a bare
 *   `Atomics.compareExchange` + `Atomics.store` pair;
 * - `Queue` throughput from a worker thread to the main thread, against a bare `MessagePort`
 *   carrying the same items the same way;
 * - `Queue` throughput from one worker thread to another;
 * - `Queue` throughput from one child process to another, through the parent's broker.
 *
 *     deno run -A scripts/bench/shared.ts [--items 100000] [--lock-ops 2000000] [--process-items 5000]
 *
 * Goals: the thread-side Queue at least 50% of the bare MessagePort; the uncontended lock within
 * 3x of bare Atomics.
 */
import { parseArgs } from "@std/cli/parse-args";
import { Barrier, Lock, Process, Queue, Thread } from "../../mod.ts";

const ITEM = { id: 1, name: "item", values: [1, 2, 3] };

/** Uncontended lock costs inside a worker thread; returns operations per second. */
export async function lockRates(lock: Lock, ops: number): Promise<Record<string, number>> {
  const rate = (ms: number) => Math.round(ops / (ms / 1000));
  const i32 = new Int32Array(new SharedArrayBuffer(8));
  const bare = () => {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) {
      if (Atomics.compareExchange(i32, 0, 0, 1) !== 0) throw new Error("contended");
      Atomics.store(i32, 0, 0);
    }
    return performance.now() - t0;
  };
  const sync = () => {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) {
      lock.acquireSync();
      lock.release();
    }
    return performance.now() - t0;
  };
  const asyncForm = async () => {
    const t0 = performance.now();
    for (let i = 0; i < ops / 10; i++) {
      await lock.acquire();
      lock.release();
    }
    return (performance.now() - t0) * 10;
  };
  // Warm up, then take the best of three: the machine is shared and noisy.
  bare();
  sync();
  await asyncForm();
  const best = async (run: () => number | Promise<number>) => {
    let ms = Infinity;
    for (let i = 0; i < 3; i++) ms = Math.min(ms, await run());
    return ms;
  };
  return {
    bareAtomics: rate(await best(bare)),
    lockSync: rate(await best(sync)),
    lockAsync: rate(await best(asyncForm)),
  };
}

/** Puts `count` items once every party is ready. */
export async function produce(q: Queue, ready: Barrier, count: number): Promise<void> {
  const item = { id: 1, name: "item", values: [1, 2, 3] };
  await ready.wait();
  for (let i = 0; i < count; i++) await q.put(item);
}

/** Takes `count` items once every party is ready; returns the seconds it took. */
export async function consume(q: Queue, ready: Barrier, count: number): Promise<number> {
  await ready.wait();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await q.get();
  return (performance.now() - t0) / 1000;
}

/** Posts `count` items on a port handed over by the bench (the bare baseline's worker). */
function barePortWorkerSource(): string {
  return `self.onmessage = (event) => {
    const { port, count } = event.data;
    const item = ${JSON.stringify(ITEM)};
    for (let i = 0; i < count; i++) port.postMessage(item);
  };`;
}

async function barePortRate(count: number): Promise<number> {
  const url = `data:application/javascript,${encodeURIComponent(barePortWorkerSource())}`;
  const worker = new Worker(url, { type: "module" });
  const { port1, port2 } = new MessageChannel();
  let got = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    port2.onmessage = () => {
      if (++got === count) resolve();
    };
    worker.postMessage({ port: port1, count }, [port1]);
  });
  const seconds = (performance.now() - t0) / 1000;
  port2.close();
  worker.terminate();
  return count / seconds;
}

async function queueToMainRate(count: number): Promise<number> {
  const q = new Queue();
  const ready = new Barrier(2);
  const producer = new Thread({
    target: produce,
    args: [q, ready, count],
    module: import.meta.url,
  });
  producer.start();
  const seconds = await consume(q, ready, count);
  await producer.join();
  return count / seconds;
}

async function queuePairRate(Kind: typeof Thread | typeof Process, count: number) {
  const q = new Queue();
  const ready = new Barrier(3);
  const producer = new Kind({ target: produce, args: [q, ready, count], module: import.meta.url });
  const consumer = new Kind({ target: consume, args: [q, ready, count], module: import.meta.url });
  producer.start();
  consumer.start();
  await ready.wait();
  const t0 = performance.now();
  await Promise.all([producer.join(), consumer.join()]);
  const error = producer.error ?? consumer.error;
  if (error) throw error;
  return count / ((performance.now() - t0) / 1000);
}

const format = (n: number) => Math.round(n).toLocaleString("en-US").padStart(12);

if (import.meta.main) {
  const args = parseArgs(Deno.args, {
    string: ["items", "lock-ops", "process-items"],
    default: { items: "100000", "lock-ops": "2000000", "process-items": "5000" },
  });
  const items = Number(args.items);
  const lockOps = Number(args["lock-ops"]);
  const processItems = Number(args["process-items"]);

  const lockThread = new Thread({
    target: lockRates,
    args: [new Lock(), lockOps],
    module: import.meta.url,
  });
  lockThread.start();
  await lockThread.join();
  if (lockThread.error) throw lockThread.error;
  const locks = lockThread.result as Record<string, number>;

  const bestOf = async (run: () => Promise<number>) => {
    let rate = 0;
    for (let i = 0; i < 3; i++) rate = Math.max(rate, await run());
    return rate;
  };
  const bare = await bestOf(() => barePortRate(items));
  const toMain = await bestOf(() => queueToMainRate(items));
  const threadPair = await bestOf(() => queuePairRate(Thread, items));
  const processPair = await queuePairRate(Process, processItems);

  console.log(`Shared objects, ${Deno.build.os} ${Deno.build.arch}, Deno ${Deno.version.deno}`);
  console.log("\nUncontended lock, in a worker thread (acquire + release per second)");
  console.log(`  bare Atomics CAS + store      ${format(locks.bareAtomics)}`);
  console.log(
    `  Lock.acquireSync + release    ${format(locks.lockSync)}   ${
      (locks.bareAtomics / locks.lockSync).toFixed(2)
    }x the bare cost (goal: within 3x)`,
  );
  console.log(`  await Lock.acquire + release  ${format(locks.lockAsync)}`);
  console.log("\nQueue throughput (items per second)");
  console.log(`  bare MessagePort, worker to main      ${format(bare)}`);
  console.log(
    `  Queue, worker to main                 ${format(toMain)}   ${
      (100 * toMain / bare).toFixed(0)
    }% of the bare port (goal: at least 50%)`,
  );
  console.log(`  Queue, worker to worker               ${format(threadPair)}`);
  console.log(`  Queue, process to process (broker)    ${format(processPair)}`);
}
