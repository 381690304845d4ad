import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  getContext,
  OutOfMemoryError,
  Pool,
  Process,
  Thread,
  ThreadPool,
  WorkerCrashedError,
} from "../mod.ts";
import { runtime } from "./_runtime.deno.ts";
import { captureStderr, runFixture } from "./_helpers.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { add, environmentOf, exhaustHeap, readLength, targetsUrl } from "./fixtures/targets.ts";

// What V8 prints on stderr as it dies of its heap limit, in Deno and in Node.
const heapDeath = /heap limit|heap out of memory|Last few GCs/i;

// Two files outside the project, which a child may read only when granted. Children import this
// module too (it is the main module of the run) and must not make files of their own; the folder
// goes when the run ends.
const inChild = (globalThis as Record<symbol, unknown>)[Symbol.for("multiproc.child")] === true;
const scratch = inChild ? "" : mkdtempSync(join(tmpdir(), "multiproc-permissions-"));
const outside = join(scratch, "refused.txt");
const inside = join(scratch, "granted.txt");
if (!inChild) {
  writeFileSync(outside, "not for the child");
  writeFileSync(inside, "for the child");
  // Deno's test runner ends without Node's exit event; Node has no unload event.
  const removeScratch = () => rmSync(scratch, { recursive: true, force: true });
  process.on("exit", removeScratch);
  globalThis.addEventListener?.("unload", removeScratch);
}

function deniedRead(error: Error | undefined): boolean {
  // Deno's NotCapable, or Node's permission model error.
  return error?.name === "NotCapable" ||
    (error as { code?: string } | undefined)?.code === "ERR_ACCESS_DENIED";
}

for (const method of ["spawn", "forkserver"] as const) {
  const suffix = method === "spawn" ? "" : " under forkserver";
  const ContextProcess = getContext(method).Process;
  // Bun has no permission model and no heap limit: tests/bun_test.ts checks that it refuses both.
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({
      name: name + suffix,
      ignore: runtime === "bun",
      fn,
      sanitizeOps: false,
      sanitizeResources: false,
    });

  test("Process with permissions 'none' cannot read, and the refusal reaches the parent", async () => {
    const child = new ContextProcess({
      target: readLength,
      args: [outside],
      module: targetsUrl,
      permissions: "none",
    });
    const { stderr } = await captureStderr(async () => {
      child.start();
      await child.join();
    });
    assertStringIncludes(stderr, `Process ${child.name}:`);
    assertEquals(child.exitCode, 1);
    assert(deniedRead(child.error), `expected a permission error, got ${child.error}`);
  });

  test("Pool permissions grant the listed paths to every worker and nothing else", async () => {
    await using pool = new Pool({
      size: 2,
      startMethod: method,
      module: targetsUrl,
      permissions: { read: [inside] },
    });
    const [granted, refused] = await Promise.allSettled([
      pool.apply(readLength, [inside]),
      pool.apply(readLength, [outside]),
    ]);
    assertEquals(granted.status === "fulfilled" && granted.value, "for the child".length);
    assert(
      refused.status === "rejected" && deniedRead(refused.reason),
      `expected a permission error, got ${JSON.stringify(refused)}`,
    );
    // A refusal is the task's error, not a crash: the pool goes on.
    assertEquals(await pool.apply(readLength, [inside]), "for the child".length);
  });

  test("Pool over its maxHeapMb rejects the task with an OutOfMemoryError and goes on", async () => {
    await using pool = new Pool({
      size: 1,
      startMethod: method,
      module: targetsUrl,
      maxHeapMb: 32,
    });
    // The runtime's own last words on its heap come through this process's stderr.
    const { value: error, stderr } = await captureStderr(() =>
      pool.apply(exhaustHeap).then(() => undefined, (e: Error) => e)
    );
    assertMatch(stderr, heapDeath);
    assertInstanceOf(error, OutOfMemoryError);
    assertInstanceOf(error, WorkerCrashedError);
    assertStringIncludes(error.message, "out of memory");
    assert(error.exitCode === -5 || error.exitCode === -6, `exit code ${error.exitCode}`);
    assertEquals(await pool.apply(add, [2, 3]), 5);
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
    const { stderr } = await captureStderr(async () => {
      granted.start();
      refused.start();
      await Promise.all([granted.join(), refused.join()]);
    });
    assertStringIncludes(stderr, `Process ${refused.name}:`);
    assertEquals(granted.exitCode, 0, String(granted.error));
    assertEquals(granted.result, "for the child".length);
    assert(deniedRead(refused.error), `expected a permission error, got ${refused.error}`);
  });
}

for (const method of ["spawn", "forkserver"] as const) {
  const suffix = method === "spawn" ? "" : " under forkserver";
  Deno.test({
    name: `Process and Pool 'env' is all of the environment that a child sees${suffix}`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      process.env.MULTIPROC_SECRET = "not for children";
      try {
        const names = ["MULTIPROC_GIVEN", "MULTIPROC_SECRET", "HOME", "PATH"];
        const env = { MULTIPROC_GIVEN: "given", PATH: "/usr/bin:/bin" };
        const child = new (getContext(method).Process)({
          target: environmentOf,
          args: [names],
          module: targetsUrl,
          env,
        });
        child.start();
        await child.join();
        assertEquals(child.exitCode, 0, String(child.error));
        await using pool = new Pool({ size: 1, startMethod: method, module: targetsUrl, env });
        for (const seen of [child.result, await pool.apply(environmentOf, [names])]) {
          const { read, program } = seen as { read: (string | null)[]; program: string[] };
          assertEquals(read, ["given", null, null, "/usr/bin:/bin"]);
          assert(program.includes("MULTIPROC_GIVEN"), program.join(" "));
          // A program that the child runs does not see the parent's variables either.
          assert(!program.includes("MULTIPROC_SECRET"), program.join(" "));
        }
      } finally {
        delete process.env.MULTIPROC_SECRET;
      }
    },
  });
}

Deno.test("Process and Pool refuse an 'env' that no environment can hold", () => {
  for (
    const [env, message] of [
      [["A=1"], "'env' must be a plain object"],
      [{ "A=B": "1" }, "names must be non-empty, without '='"],
      [{ A: 1 }, "'env.A' must be a string"],
      [{ A: "a\0b" }, "'env.A' must be a string without NUL"],
    ] as const
  ) {
    assertThrows(() => new Process({ target: add, env: env as never }), TypeError, message);
    assertThrows(() => new Pool({ size: 1, env: env as never }), TypeError, message);
  }
});

Deno.test({
  name: "Process with permissions 'none' cannot read the environment on Deno",
  ignore: runtime !== "deno",
  fn: async () => {
    const child = new Process({
      target: () =>
        (globalThis as { Deno?: { env: { get(key: string): unknown } } }).Deno!.env.get("HOME"),
      permissions: "none",
    });
    const { stderr } = await captureStderr(async () => {
      child.start();
      await child.join();
    });
    assertStringIncludes(stderr, "NotCapable");
    assertEquals(child.exitCode, 1);
    assertEquals(child.error?.name, "NotCapable");
    // Rebuilt as the runtime's own class, so that `instanceof` works as in the child.
    const errors = (globalThis as { Deno?: { errors: Record<string, new () => Error> } }).Deno!
      .errors;
    assertInstanceOf(child.error, errors.NotCapable);
  },
});

Deno.test({
  name: "Process refuses permissions that the parent does not hold",
  ignore: runtime !== "deno",
  fn: async () => {
    const out = await runFixture("permission_probe");
    assertEquals(out.code, 0, out.stderrText);
    const [process, pool] = out.stdoutText.trim().split("\n");
    assertStringIncludes(process, "TypeError: Process 'permissions.net' asks for more");
    assertStringIncludes(process, "--allow-net");
    assertStringIncludes(pool, "TypeError: Pool 'permissions.net' asks for more");
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

Deno.test({
  name: "Process over its maxHeapMb ends with an OutOfMemoryError",
  ignore: runtime === "bun",
  async fn() {
    const child = new Process({ target: exhaustHeap, module: targetsUrl, maxHeapMb: 32 });
    const { stderr } = await captureStderr(async () => {
      child.start();
      await child.join();
    });
    assertMatch(stderr, heapDeath);
    assert(child.exitCode === -5 || child.exitCode === -6, `exit code ${child.exitCode}`);
    assertInstanceOf(child.error, OutOfMemoryError);
    assertInstanceOf(child.error, WorkerCrashedError);
    assertStringIncludes(child.error.message, "out of memory");
  },
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

Deno.test({
  name: "ThreadPool over its maxHeapMb rejects the task with an OutOfMemoryError on Node",
  ignore: runtime !== "node",
  fn: async () => {
    await using pool = new ThreadPool({ size: 1, module: targetsUrl, maxHeapMb: 32 });
    const error = await pool.apply(exhaustHeap).then(() => undefined, (e: Error) => e);
    assertInstanceOf(error, OutOfMemoryError);
    assertStringIncludes(error.message, "out of memory");
    assertEquals(await pool.apply(add, [2, 3]), 5);
  },
});

Deno.test({
  name: "ThreadPool with maxHeapMb is refused on Deno, whose workers take no heap limit",
  ignore: runtime !== "deno",
  fn: () => {
    assertThrows(() => new ThreadPool({ maxHeapMb: 32 }), TypeError, "use a Pool with 'maxHeapMb'");
  },
});

interface ThreadCase {
  case: string;
  value?: unknown;
  error?: string;
}

async function runThreadPermissions(flags: string[]): Promise<Map<string, ThreadCase>> {
  const out = await runFixture("thread_permissions", [inside, outside], { runtimeFlags: flags });
  // The pool in the fixture is never closed: the script must still end by itself.
  assertEquals(out.code, 0, out.stderrText);
  assertStringIncludes(out.stdoutText, "END");
  const cases = out.stdoutText.split("\n").filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as ThreadCase);
  return new Map(cases.map((c) => [c.case, c]));
}

for (
  const [how, flags] of [
    ["--allow-all", ["--unstable-worker-options", "--allow-all"]],
    ["--allow-run", ["--unstable-worker-options", "--allow-read", "--allow-env", "--allow-run"]],
  ] as const
) {
  Deno.test({
    name: `Thread and ThreadPool permissions hold under --unstable-worker-options (with ${how})`,
    ignore: runtime !== "deno",
    fn: async () => {
      const cases = await runThreadPermissions([...flags]);
      const refusal = "NotCapable: Requires read access";
      assertStringIncludes(cases.get("none")?.error ?? "", refusal);
      assertEquals(cases.get("listed")?.value, "for the child".length);
      assertStringIncludes(cases.get("unlisted")?.error ?? "", refusal);
      assertEquals(cases.get("inherit")?.value, "not for the child".length);
      assertEquals(cases.get("pool listed")?.value, "for the child".length);
      assertStringIncludes(cases.get("pool unlisted")?.error ?? "", refusal);
    },
  });
}

Deno.test({
  name: "Thread and ThreadPool permissions without --unstable-worker-options name the flag",
  ignore: runtime !== "deno",
  fn: async () => {
    // Deno would end the whole process if a worker asked without the flag: the error comes first.
    const cases = await runThreadPermissions(["--allow-read", "--allow-env", "--allow-run"]);
    for (const name of ["none", "listed", "unlisted", "pool"]) {
      assertStringIncludes(cases.get(name)?.error ?? "", "TypeError:");
      assertStringIncludes(cases.get(name)?.error ?? "", "--unstable-worker-options");
    }
    assertEquals(cases.get("inherit")?.value, "not for the child".length);
  },
});

Deno.test({
  name: "Thread and ThreadPool permissions are refused on Node, whose model is per process",
  ignore: runtime !== "node",
  fn: () => {
    assertThrows(
      () => new Thread({ target: () => 1, permissions: "none" }),
      TypeError,
      "run the target in a Process",
    );
    assertThrows(
      () => new ThreadPool({ permissions: { read: ["/tmp"] } }),
      TypeError,
      "not supported on Node",
    );
    // "inherit" is what a Node worker has anyway.
    new Thread({ target: () => 1, permissions: "inherit" });
  },
});

Deno.test("maxHeapMb must be a positive integer", () => {
  assertThrows(() => new Process({ target: () => 1, maxHeapMb: 0 }), RangeError, "'maxHeapMb'");
  assertThrows(() => new Process({ target: () => 1, maxHeapMb: 1.5 }), RangeError, "'maxHeapMb'");
});
