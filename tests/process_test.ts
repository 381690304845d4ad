import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { getContext, Process, type StartMethod, Thread } from "../mod.ts";
import { testCommonBehaviour } from "./_common_behaviour.ts";
import { garbageTwice, isPidAlive, runFixture, waitUntil } from "./_helpers.ts";
import { forever, targetsUrl } from "./fixtures/targets.ts";
import {
  processApiUrl,
  processNameHere,
  type ProcessNames,
  processNamesHere,
} from "./fixtures/process_api_targets.ts";

testCommonBehaviour(Process);

for (const method of ["spawn", "forkserver"] as StartMethod[]) {
  const suffix = method === "spawn" ? "" : " under forkserver";
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({
      name: name + suffix,
      fn,
      sanitizeResources: method === "spawn",
      sanitizeOps: method === "spawn",
    });
  const ContextProcess = getContext(method).Process;
  const methodArgs = ["--start-method", method];

  test("Process names a process made in a child after the child's count: Process-N:1", async () => {
    const child = new ContextProcess({ target: processNamesHere, module: processApiUrl });
    // Named otherwise, a process still counts by its place, as Python's `_identity` does.
    const named = new ContextProcess({
      target: processNamesHere,
      module: processApiUrl,
      name: "Middle",
    });
    assertMatch(child.name, /^Process-\d+$/);
    const count = Number(child.name.slice("Process-".length));
    for (const process of [child, named]) {
      process.start();
      await process.join();
      assertEquals(process.exitCode, 0, String(process.error));
    }
    const expect = (own: string, prefix: string): ProcessNames => ({
      own,
      started: `${prefix}:1`,
      seen: `${prefix}:1`,
      // A thread makes its processes with the count of the process that it belongs to.
      inThread: `${prefix}:2`,
      last: `${prefix}:3`,
    });
    assertEquals(child.result, expect(child.name, child.name));
    assertEquals(named.result, expect("Middle", `Process-${count + 1}`));
  });

  test("Process.terminate() ends the child with -15 and its pid is gone", async () => {
    const child = new ContextProcess({ target: forever, module: targetsUrl });
    child.start();
    const pid = child.pid!;
    assert(Number.isInteger(pid) && pid > 0);
    assert(isPidAlive(pid));
    child.terminate();
    await child.join();
    assertEquals(child.exitCode, -15);
    assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
  });

  test("Process.kill() ends the child with -9 and its pid is gone", async () => {
    const child = new ContextProcess({ target: forever, module: targetsUrl });
    child.start();
    const pid = child.pid!;
    child.kill();
    await child.join();
    assertEquals(child.exitCode, -9);
    assert(await waitUntil(() => !isPidAlive(pid), 2000), `pid ${pid} is still alive`);
  });

  test("Process passes the child's stdout and stderr through byte for byte", async () => {
    const out = await runFixture("passthrough", methodArgs);
    assertEquals(out.code, 0, out.stderrText);
    assertEquals(out.stdout, garbageTwice);
    assertEquals(out.stderr, garbageTwice);
  });

  for (const [when, delay] of [["", "500"], [" while they boot", "40"]]) {
    test(`Process children exit within 2 s when the parent is killed with SIGKILL${when}`, async () => {
      let pids: number[] = [];
      const out = await runFixture("parent_busy", [...methodArgs, "--delay", delay], {
        onStdout: (text, kill) => {
          const match = /PIDS (\[.*\])/.exec(text);
          if (match && pids.length === 0) {
            pids = JSON.parse(match[1]);
            kill();
          }
        },
      });
      assertEquals(out.signal, "SIGKILL");
      assert(pids.length >= 3, `expected at least 3 pids, got ${pids.length}`);
      const gone = await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000);
      assert(gone, `still alive: ${pids.filter(isPidAlive).join(", ")}`);
    });
  }

  test("Process daemon children do not keep the parent alive and stop when it exits", async () => {
    const out = await runFixture("daemons", ["--daemon", ...methodArgs], { timeoutMs: 15_000 });
    assertEquals(out.signal, null, "the parent was still running at its deadline");
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stdoutText, "main done");
    const pids = JSON.parse(/PIDS (\[.*\])/.exec(out.stdoutText)![1]) as number[];
    assert(
      await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000),
      `still alive: ${pids.filter(isPidAlive).join(", ")}`,
    );
  });

  test("Process join() of daemon children keeps the parent waiting until they end", async () => {
    const out = await runFixture("daemons", ["--daemon", "--join", ...methodArgs], {
      timeoutMs: 15_000,
    });
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stdoutText, "JOINED late late");
  });

  test("Process non-daemon children keep the parent alive until they finish", async () => {
    const out = await runFixture("daemons", methodArgs, { timeoutMs: 15_000 });
    assertEquals(out.code, 0, out.stderrText);
    const lines = out.stdoutText.trim().split("\n");
    assertEquals(lines.slice(1), ["main done", "RESULTS late late"]);
    const pids = JSON.parse(/PIDS (\[.*\])/.exec(out.stdoutText)![1]) as number[];
    assert(await waitUntil(() => pids.every((pid) => !isPidAlive(pid)), 2000));
  });

  test("Process prints the target's error and stack to stderr, like a traceback", async () => {
    const out = await runFixture("traceback", methodArgs);
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stderrText, "Process Process-1:");
    assertStringIncludes(out.stderrText, "TaskFailedError: from the child");
    assertStringIncludes(out.stderrText, "targets");
  });

  test("Process finds exported targets in the main module, which guards its main block", async () => {
    const out = await runFixture("main_targets", methodArgs);
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stdoutText, "THREAD 12 PROCESS 15");
    // A child's own process and thread find theirs in the same main module.
    assertStringIncludes(out.stdoutText, "GRANDCHILDREN Grandchild,Child");
    assertStringIncludes(out.stdoutText, "ERROR Thread target 'usesOutside' is not exported");
    assertStringIncludes(out.stdoutText, "'outside'");
  });
}

/** Found by the children in this test module, the main module of the test run. */
export function cube(n: number): number {
  return n * n * n;
}

Deno.test("Process finds an exported target in the main module without 'module'", async () => {
  const children = [1, 2].map((n) => new Process({ target: cube, args: [n] }));
  for (const child of children) child.start();
  for (const child of children) await child.join();
  assertEquals(children.map((child) => child.result), [1, 8]);
});

Deno.test("Process made in a thread takes the next count of the process that it belongs to", async () => {
  const before = new Process({ target: forever, module: targetsUrl }).name;
  const thread = new Thread({ target: processNameHere, module: processApiUrl });
  thread.start();
  await thread.join();
  const after = new Process({ target: forever, module: targetsUrl }).name;
  const count = Number(before.slice("Process-".length));
  assertEquals([thread.result, after], [`Process-${count + 1}`, `Process-${count + 2}`]);
});

Deno.test("Process.close() of a running process throws a TypeError; a closed one refuses with TypeError", async () => {
  const child = new Process({ target: forever, module: targetsUrl, name: "busy" });
  child.start();
  assertThrows(
    () => child.close(),
    TypeError,
    "Cannot close Process 'busy' while it is still running: join() or terminate() it first",
  );
  assert(child.isAlive(), "a refused close() leaves the process running");
  child.terminate();
  await child.join();
  child.close();
  const closed = "Process 'busy' is closed: close() released it";
  assertThrows(() => child.isAlive(), TypeError, closed);
  assertThrows(() => child.pid, TypeError, closed);
  assertThrows(() => child.terminate(), TypeError, closed);
  assertThrows(() => child.kill(), TypeError, closed);
  assertThrows(() => child.start(), TypeError, closed);
  await assertRejects(() => child.join(), TypeError, closed);
  assertEquals(child.exitCode, -15);
});
