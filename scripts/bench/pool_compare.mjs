// Tiny-task throughput on Node: ThreadPool from the npm build against piscina, tinypool and
// workerpool (each as its README shows), and a bare-worker baseline, all in one run.
//
//     deno task build:npm && (cd npm && npm install --omit=dev --no-package-lock)
//     (mkdir -p .tmp/bench_deps && cd .tmp/bench_deps && npm init -y >/dev/null &&
//       npm install piscina tinypool workerpool)
//     node scripts/bench/pool_compare.mjs [tasks] [--scaling]
import { createRequire } from "node:module";
import { realpathSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// Children of a forkserver import the main module, as Python's do: only the script run by the
// user runs the benchmark.
if (realpathSync(process.argv[1] ?? "") === fileURLToPath(import.meta.url)) await main();

async function main() {
  const root = new URL("../../", import.meta.url);
  const deps = new URL(".tmp/bench_deps/", root);
  const require = createRequire(new URL("package.json", deps));
  const { benchScaling, benchThroughput } = await import(
    new URL("npm/esm/cli/_bench_pool.js", root).href
  );
  const tasks = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
  const rounds = 3;

  const workerFile = fileURLToPath(new URL("tiny_worker.cjs", deps));
  writeFileSync(workerFile, "module.exports = (x) => x + 1;\n");
  const workerpoolFile = fileURLToPath(new URL("tiny_workerpool.cjs", deps));
  writeFileSync(
    workerpoolFile,
    `require(${JSON.stringify(require.resolve("workerpool"))}).worker({ inc: (x) => x + 1 });\n`,
  );

  async function best(run) {
    let top = 0;
    for (let round = 0; round < rounds; round++) {
      const t0 = performance.now();
      await run();
      top = Math.max(top, tasks / (performance.now() - t0) * 1000);
    }
    return top;
  }

  const all = (call) => Promise.all(Array.from({ length: tasks }, (_, i) => call(i)));

  const ours = await benchThroughput({ tasks, rounds });
  const rows = ours.map((row) => [row.name, row.tasksPerSecond]);

  {
    const { Piscina } = require("piscina");
    const pool = new Piscina({ filename: workerFile, minThreads: 2, maxThreads: 2 });
    await all((i) => pool.run(i));
    rows.push(["piscina run()", await best(() => all((i) => pool.run(i)))]);
    await pool.destroy();
  }
  {
    const { Tinypool } = require("tinypool");
    const pool = new Tinypool({ filename: workerFile, minThreads: 2, maxThreads: 2 });
    await all((i) => pool.run(i));
    rows.push(["tinypool run()", await best(() => all((i) => pool.run(i)))]);
    await pool.destroy();
  }
  {
    const workerpool = require("workerpool");
    const pool = workerpool.pool(workerpoolFile, { minWorkers: 2, maxWorkers: 2 });
    await all((i) => pool.exec("inc", [i]));
    rows.push(["workerpool exec()", await best(() => all((i) => pool.exec("inc", [i])))]);
    await pool.terminate();
  }

  const piscina = rows.find(([name]) => name === "piscina run()")[1];
  console.log(
    `Node ${process.version}, ${tasks} tasks returning x + 1, 2 workers, best of ${rounds}\n`,
  );
  console.log("| what | tasks/s | vs piscina |");
  console.log("| --- | ---: | ---: |");
  for (const [name, perSecond] of rows) {
    console.log(`| ${name} | ${perSecond.toFixed(0)} | ${(perSecond / piscina).toFixed(2)} |`);
  }

  if (process.argv.includes("--scaling")) {
    console.log("\n| what | ms | speed-up |");
    console.log("| --- | ---: | ---: |");
    for (const row of await benchScaling()) {
      console.log(`| ${row.name} | ${row.ms.toFixed(0)} | ${row.ratio.toFixed(2)} |`);
    }
  }
}
