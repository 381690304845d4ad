import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Event, getContext, type StartMethod } from "../mod.ts";
import { childThreadsUrl, leaveThread, startSetterAndClearer } from "./fixtures/child_threads.ts";
import { runFixture } from "./_helpers.ts";

const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

for (const method of ["spawn", "forkserver"] as StartMethod[]) {
  Deno.test({
    name:
      `A child process waits for its non-daemon threads before it exits, as Python's does (${method})`,
    ...noSanitizers,
    fn: async () => {
      const dir = mkdtempSync(join(tmpdir(), "multiproc-child-threads-"));
      try {
        const path = join(dir, "written");
        const child = new (getContext(method).Process)({
          target: leaveThread,
          args: [path, false],
          module: childThreadsUrl,
        });
        child.start();
        await child.join();
        assertEquals([child.exitCode, child.result], [0, "returned"]);
        // The thread outlived the target: the process ended only once it had written.
        assertEquals(readFileSync(path, "utf8"), "non-daemon");
        // A daemon thread is stopped with its process, as in Python.
        const daemonPath = join(dir, "daemon");
        const daemonChild = new (getContext(method).Process)({
          target: leaveThread,
          args: [daemonPath, true],
          module: childThreadsUrl,
        });
        daemonChild.start();
        await daemonChild.join();
        assertEquals(daemonChild.exitCode, 0);
        await new Promise((resolve) => setTimeout(resolve, 600));
        assert(!existsSync(daemonPath), "the daemon thread outlived its process");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  });

  Deno.test({
    name:
      `A child process waits for a non-daemon thread that sets a shared Event, not a daemon one (${method})`,
    ...noSanitizers,
    fn: async () => {
      // CPython's test_wait_for_threads.
      const event = new Event();
      const child = new (getContext(method).Process)({
        target: startSetterAndClearer,
        args: [event],
        module: childThreadsUrl,
      });
      const started = performance.now();
      child.start();
      await child.join();
      assertEquals(child.exitCode, 0, String(child.error));
      assert(event.isSet(), "the process ended before its non-daemon thread");
      assert(performance.now() - started < 15_000, "the process waited for its daemon thread");
    },
  });

  Deno.test({
    name:
      `A main module without if (import.meta.main) fails in every child, naming the guard (${method})`,
    ...noSanitizers,
    fn: async () => {
      const out = await runFixture("unguarded_main", ["--start-method", method], {
        timeoutMs: 60_000,
      });
      assertEquals(out.code, 0, out.stderrText);
      const lines = out.stdoutText.trim().split("\n");
      // Run once, in the parent only: one line per kind, each the child's refusal.
      assertEquals(lines.length, 4, out.stdoutText);
      const [processLine, threadLine, threadPoolLine, poolLine] = lines;
      assert(processLine.startsWith("PROCESS 1 undefined "), processLine);
      assert(threadLine.startsWith("THREAD 1 undefined "), threadLine);
      assert(threadPoolLine.startsWith("THREADPOOL failed "), threadPoolLine);
      assert(poolLine.startsWith("POOL failed "), poolLine);
      for (const line of lines) {
        assertStringIncludes(line, "if (import.meta.main)");
        // Node 20 has no import.meta.main: the guard that works there is named too.
        assertStringIncludes(line, "pathToFileURL(process.argv[1])");
        assertStringIncludes(line, "importing the main module");
        // The pools made at the top of the module were no error: the Process after them was.
        assertStringIncludes(line, "Cannot start a Process");
      }
    },
  });
}

Deno.test("A pool task submitted by an unguarded main module, run again in a worker, fails naming the guard", async () => {
  const out = await runFixture("unguarded_pool_main", [], { timeoutMs: 60_000 });
  // The parent's task rejected with the worker's refusal, which the script left uncaught.
  assert(out.code !== 0, `exit code ${out.code}`);
  assertEquals(out.stdoutText, "", "the task ran, or the main code ran again in the worker");
  assertStringIncludes(out.stderrText, "Cannot start a task on ThreadPool");
  assertStringIncludes(out.stderrText, "if (import.meta.main)");
});
