import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { getContext, OutOfMemoryError, Process, Thread, WorkerCrashedError } from "../mod.ts";
import { runtime } from "./_runtime.deno.ts";
import { runFixture } from "./_helpers.ts";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exhaustHeap, readLength, targetsUrl } from "./fixtures/targets.ts";

// Two files outside the project, which a child may read only when granted.
const scratch = mkdtempSync(join(tmpdir(), "multiproc-permissions-"));
const outside = join(scratch, "refused.txt");
const inside = join(scratch, "granted.txt");
writeFileSync(outside, "not for the child");
writeFileSync(inside, "for the child");

function deniedRead(error: Error | undefined): boolean {
  // Deno's NotCapable, or Node's permission model error.
  return error?.name === "NotCapable" ||
    (error as { code?: string } | undefined)?.code === "ERR_ACCESS_DENIED";
}

for (const method of ["spawn", "forkserver"] as const) {
  const suffix = method === "spawn" ? "" : " under forkserver";
  const ContextProcess = getContext(method).Process;
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: name + suffix, fn, sanitizeOps: false, sanitizeResources: false });

  test("Process with permissions 'none' cannot read, and the refusal reaches the parent", async () => {
    const child = new ContextProcess({
      target: readLength,
      args: [outside],
      module: targetsUrl,
      permissions: "none",
    });
    child.start();
    await child.join();
    assertEquals(child.exitCode, 1);
    assert(deniedRead(child.error), `expected a permission error, got ${child.error}`);
  });

  test("Process permissions grant the listed paths and nothing else", async () => {
    const granted = new ContextProcess({
      target: readLength,
      args: [inside],
      module: targetsUrl,
      permissions: { read: [inside] },
    });
    const refused = new ContextProcess({
      target: readLength,
      args: [outside],
      module: targetsUrl,
      permissions: { read: [inside] },
    });
    granted.start();
    refused.start();
    await Promise.all([granted.join(), refused.join()]);
    assertEquals(granted.exitCode, 0, String(granted.error));
    assertEquals(granted.result, "for the child".length);
    assert(deniedRead(refused.error), `expected a permission error, got ${refused.error}`);
  });
}

Deno.test({
  name: "Process with permissions 'none' cannot read the environment on Deno",
  ignore: runtime !== "deno",
  fn: async () => {
    const child = new Process({
      target: () =>
        (globalThis as { Deno?: { env: { get(key: string): unknown } } }).Deno!.env.get("HOME"),
      permissions: "none",
    });
    child.start();
    await child.join();
    assertEquals(child.exitCode, 1);
    assertEquals(child.error?.name, "NotCapable");
  },
});

Deno.test({
  name: "Process refuses permissions that the parent does not hold",
  ignore: runtime !== "deno",
  fn: async () => {
    const out = await runFixture("permission_probe");
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stdoutText, "TypeError: Process 'permissions.net' asks for more");
    assertStringIncludes(out.stdoutText, "--allow-net");
  },
});

Deno.test("Process refuses a malformed permissions option", () => {
  assertThrows(
    () => new Process({ target: () => 1, permissions: "some" as never }),
    TypeError,
    "'permissions' must be",
  );
  assertThrows(
    () => new Process({ target: () => 1, permissions: { disk: true } as never }),
    TypeError,
    "unknown kind 'disk'",
  );
  assertThrows(
    () => new Process({ target: () => 1, permissions: { read: "yes" } as never }),
    TypeError,
    "'permissions.read' must be a boolean or an array of strings",
  );
});

Deno.test("Process over its maxHeapMb ends with an OutOfMemoryError", async () => {
  const child = new Process({ target: exhaustHeap, module: targetsUrl, maxHeapMb: 32 });
  child.start();
  await child.join();
  assert(child.exitCode === -5 || child.exitCode === -6, `exit code ${child.exitCode}`);
  assertInstanceOf(child.error, OutOfMemoryError);
  assertInstanceOf(child.error, WorkerCrashedError);
  assertStringIncludes(child.error.message, "out of memory");
});

Deno.test({
  name: "Thread with maxHeapMb is refused on Deno, whose workers take no heap limit",
  ignore: runtime !== "deno",
  fn: () => {
    assertThrows(
      () => new Thread({ target: exhaustHeap, module: targetsUrl, maxHeapMb: 32 }),
      TypeError,
      "run the target in a Process",
    );
  },
});

Deno.test({
  name: "Thread over its maxHeapMb ends with an OutOfMemoryError on Node",
  ignore: runtime !== "node",
  fn: async () => {
    const thread = new Thread({ target: exhaustHeap, module: targetsUrl, maxHeapMb: 32 });
    thread.start();
    await thread.join();
    assertEquals(thread.exitCode, 1);
    assertInstanceOf(thread.error, OutOfMemoryError);
    assertStringIncludes(thread.error.message, "out of memory");
  },
});

Deno.test("maxHeapMb must be a positive integer", () => {
  assertThrows(() => new Process({ target: () => 1, maxHeapMb: 0 }), RangeError, "'maxHeapMb'");
  assertThrows(() => new Process({ target: () => 1, maxHeapMb: 1.5 }), RangeError, "'maxHeapMb'");
});
