/**
 * The baseline of `multiproc bench distributed`: bare BullMQ, one job per task, a `Worker` that
 * returns `x + 1`, completions counted from the worker's events. Loaded only by that benchmark.
 *
 * @module
 */
// ioredis before bullmq: Deno 2.9 fails to load bullmq from a dynamic import otherwise.
import { Redis } from "npm:ioredis@^6.0.0";
import { Queue, Worker } from "npm:bullmq@^6.7.0";

/**
 * Adds `jobs` jobs one by one and waits until a worker has completed them all.
 *
 * @param connection A Redis URL or socket path.
 * @param jobs How many jobs.
 * @returns Jobs per second, from the first add to the last completion.
 */
export async function bareBullmqJobsPerSecond(connection: string, jobs: number): Promise<number> {
  const options = /^rediss?:\/\//.test(connection) ? {} : { path: connection };
  const make = () =>
    /^rediss?:\/\//.test(connection)
      ? new Redis(connection, { maxRetriesPerRequest: null })
      : new Redis({ ...options, maxRetriesPerRequest: null });
  const name = `multiproc-bench-bare-${crypto.randomUUID()}`;
  const producer = make();
  const consumer = make();
  const queue = new Queue(name, { connection: producer });
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  const worker = new Worker(name, (job) => Promise.resolve(job.data.x + 1), {
    connection: consumer,
    concurrency: 64,
  });
  worker.on("completed", () => {
    if (++done === jobs) finish();
  });
  await worker.waitUntilReady();
  const started = performance.now();
  for (let i = 0; i < jobs; i++) {
    void queue.add("t", { x: i }, { removeOnComplete: true, removeOnFail: true });
  }
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  producer.disconnect();
  consumer.disconnect();
  return jobs / seconds;
}
