import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  Context,
  getAllStartMethods,
  getContext,
  getStartMethod,
  Process,
  setForkserverPreload,
  setStartMethod,
  type StartMethod,
} from "../mod.ts";
import { testCommonBehaviour } from "./_common_behaviour.ts";
import { captureStderr } from "./_helpers.ts";
import { doSomething, preloadTiming, targetsUrl } from "./fixtures/targets.ts";

testCommonBehaviour(getContext("forkserver").Process, " under forkserver");

// Forkserver spares outlive each test by design; they are stopped when the test run exits.
const noSanitizers = { sanitizeResources: false, sanitizeOps: false };

Deno.test("getAllStartMethods() lists spawn and forkserver, not fork", () => {
  assertEquals(getAllStartMethods(), ["spawn", "forkserver"]);
});

Deno.test("getStartMethod() is spawn by default", () => {
  assertEquals(getStartMethod(), "spawn");
});

Deno.test("setStartMethod() throws when set twice, unless forced", () => {
  try {
    setStartMethod("forkserver", { force: true });
    assertEquals(getStartMethod(), "forkserver");
    assertThrows(() => setStartMethod("spawn"), Error, "already set to 'forkserver'");
    setStartMethod("spawn", { force: true });
    assertEquals(getStartMethod(), "spawn");
  } finally {
    setStartMethod("spawn", { force: true });
  }
});

Deno.test("fork is refused everywhere, with the reason and forkserver as the way", () => {
  const attempts: Array<() => unknown> = [
    () => getContext("fork" as StartMethod),
    () => setStartMethod("fork" as StartMethod, { force: true }),
    () => new Process({ target: () => 1, startMethod: "fork" as StartMethod }),
  ];
  for (const attempt of attempts) {
    const error = assertThrows(attempt, TypeError);
    assertStringIncludes(error.message, "cannot copy its heap");
    assertStringIncludes(error.message, "'forkserver'");
    assertStringIncludes(error.message, "setForkserverPreload");
  }
});

Deno.test("Bad start method names give an error that lists the valid ones", () => {
  for (
    const attempt of [
      () => getContext("threads" as StartMethod),
      () => setStartMethod("" as StartMethod),
    ]
  ) {
    const error = assertThrows(attempt, TypeError);
    assertStringIncludes(error.message, "'spawn', 'forkserver'");
  }
});

Deno.test("getContext() returns one shared context per method", () => {
  assertInstanceOf(getContext("spawn"), Context);
  assertEquals(getContext("forkserver"), getContext("forkserver"));
  assertEquals(getContext("forkserver").startMethod, "forkserver");
  assertEquals(getContext().startMethod, getStartMethod());
});

for (const method of ["spawn", "forkserver"] as StartMethod[]) {
  Deno.test({
    name: `getContext("${method}").Process runs the demo function`,
    ...noSanitizers,
    fn: async () => {
      const ctx = getContext(method);
      const children = [0, 1, 2].map((i) =>
        new ctx.Process({ target: doSomething, args: [i], module: targetsUrl })
      );
      for (const child of children) child.start();
      for (const child of children) await child.join();
      assertEquals(children.map((child) => child.result), [0, 1, 2]);
      assertEquals(children.map((child) => child.exitCode), [0, 0, 0]);
    },
  });
}

Deno.test({
  name: "A context's Process uses its method whatever the global setting is",
  ...noSanitizers,
  fn: async () => {
    setStartMethod("spawn", { force: true });
    const child = new (getContext("forkserver").Process)({
      target: preloadTiming,
      module: targetsUrl,
    });
    child.start();
    await child.join();
    assertEquals(child.exitCode, 0);
  },
});

Deno.test({
  name: "setForkserverPreload() modules are imported before the target runs",
  ...noSanitizers,
  fn: async () => {
    setForkserverPreload([
      new URL(
        "./fixtures/preload_marker" + targetsUrl.slice(targetsUrl.lastIndexOf(".")),
        import.meta.url,
      ),
    ]);
    try {
      const ctx = getContext("forkserver");
      const children = [0, 1, 2].map(() =>
        new ctx.Process({ target: preloadTiming, module: targetsUrl })
      );
      for (const child of children) child.start();
      for (const child of children) await child.join();
      for (const child of children) {
        const timing = child.result as { preloadedAt: number; startedAt: number };
        assertEquals(typeof timing.preloadedAt, "number", "the preload module did not run");
        assert(timing.preloadedAt <= timing.startedAt, "the target ran before the preload");
      }
    } finally {
      setForkserverPreload([]);
    }
  },
});

Deno.test({
  name: "A forkserver preload module that fails to import fails the target, naming it",
  ...noSanitizers,
  fn: async () => {
    setForkserverPreload(["./no/such/preload_module.ts"]);
    try {
      const child = new (getContext("forkserver").Process)({ target: () => 1 });
      const { stderr } = await captureStderr(async () => {
        child.start();
        await child.join();
      });
      assertStringIncludes(stderr, `Process ${child.name}:`);
      assertStringIncludes(stderr, "preload_module");
      assertEquals(child.exitCode, 1);
      assertStringIncludes(child.error!.message, "preload_module");
    } finally {
      setForkserverPreload([]);
    }
  },
});

Deno.test("setForkserverPreload() refuses what is not a list of modules", () => {
  assertThrows(() => setForkserverPreload("mod.ts" as never), TypeError, "array");
  assertThrows(() => setForkserverPreload([42] as never), TypeError, "'modules[0]'");
});

Deno.test({
  name: "Forkserver starts are real processes with their own pids",
  ...noSanitizers,
  fn: async () => {
    const ctx = getContext("forkserver");
    const children = Array.from({ length: 4 }, () => new ctx.Process({ target: () => 1 }));
    for (const child of children) child.start();
    await Promise.all(children.map((child) => child.join()));
    const pids = new Set(children.map((child) => child.pid));
    assertEquals(pids.size, 4);
  },
});
