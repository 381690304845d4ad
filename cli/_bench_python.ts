/**
 * The CPython side of `bench gil`: the same loop, run sequentially, with `threading` and with
 * `multiprocessing`, in the `python3` found on PATH.
 *
 * @module
 */
import { execFile, spawn } from "node:child_process";

/** What the Python run measured: the median wall time of each way, in seconds. */
export interface PythonTimings {
  version: string;
  /** `multiprocessing`'s default start method there: `fork`, `spawn` or `forkserver`. */
  startMethod: string;
  checksum: number;
  sequential: number;
  threading: number;
  multiprocessing: number;
}

// Written to a temporary file by Python itself and run as `__main__`, because `multiprocessing`
// children under spawn and forkserver re-import the main module from its file.
const script = `
import json, multiprocessing, statistics, sys, threading, time

def spin(iterations):
    x = 0
    for i in range(iterations):
        x = (x + i * i) % 1000003
    return x

def sequential(tasks, work):
    return [spin(work) for _ in range(tasks)]

def with_threads(tasks, work):
    results = [None] * tasks
    def run(k):
        results[k] = spin(work)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(tasks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results

def with_processes(tasks, work):
    with multiprocessing.Pool(tasks) as pool:
        return pool.map(spin, [work] * tasks, chunksize=1)

if __name__ == "__main__":
    tasks, work, rounds = (int(arg) for arg in sys.argv[1:4])
    ways = {"sequential": sequential, "threading": with_threads, "multiprocessing": with_processes}
    expected = spin(work)
    seconds = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            started = time.perf_counter()
            results = way(tasks, work)
            seconds[name].append(time.perf_counter() - started)
            if results != [expected] * tasks:
                sys.exit(f"{name} returned {results}, expected {expected} from each task")
    print(json.dumps({
        "version": sys.version.split()[0],
        "startMethod": multiprocessing.get_start_method(),
        "checksum": expected,
        **{name: statistics.median(values) for name, values in seconds.items()},
    }))
`;

const bootstrap = `
import os, runpy, sys, tempfile
with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, "multiproc_bench_gil.py")
    with open(path, "w") as file:
        file.write(sys.argv[1])
    sys.argv = [path] + sys.argv[2:]
    runpy.run_path(path, run_name="__main__")
`;

/**
 * The interpreter behind `python3` on PATH, resolved to its real file so that launcher shims
 * (pyenv adds about a quarter of a second to each start) stay out of the timings.
 *
 * @returns Its path, or undefined when there is no `python3`.
 */
export function findPython(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      "python3",
      ["-c", "import sys; print(sys.executable)"],
      { encoding: "utf8" },
      (error, stdout) => resolve(error ? undefined : stdout.trim() || undefined),
    );
  });
}

/**
 * Runs the loop in CPython.
 *
 * @param python The interpreter, from {@linkcode findPython}.
 * @throws {Error} When the Python run fails; its stderr has gone to ours.
 */
export function runPython(
  python: string,
  sizes: { tasks: number; work: number; rounds: number },
): Promise<PythonTimings> {
  const args = ["-c", bootstrap, script, String(sizes.tasks), String(sizes.work)];
  args.push(String(sizes.rounds));
  const child = spawn(python, args, { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => stdout += chunk);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`The Python run ended with exit code ${code}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as PythonTimings);
      } catch (error) {
        reject(new Error(`The Python run printed no result: '${stdout.trim()}'`, { cause: error }));
      }
    });
  });
}
