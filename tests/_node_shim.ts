/**
 * `Deno.test` on Node, for the Node run of the tests. The npm build (`scripts/build_npm.ts
 * --test`) imports `Deno` from this module into each compiled test module that names `Deno`, so
 * the same test files run under `node --test`; on Deno this module is never loaded. Only
 * `Deno.test` exists here: tests use `node:` modules for everything else.
 *
 * Test modules are also imported by the children of the library (worker threads and child
 * processes that look up an exported target), so tests register only in the main thread of a
 * process that is not a multiproc child.
 *
 * @module
 */
import process from "node:process";
import { pathToFileURL } from "node:url";
import { isMainThread } from "node:worker_threads";
import type { TestContext as NodeTestContext } from "node:test";

/** Generous, so that a hang fails the test instead of holding CI until its own timeout. */
const TEST_TIMEOUT_MS = 60_000;

// Set by the library in its children before any user module is imported.
const CHILD_MARKER = Symbol.for("multiproc.child");

function registers(): boolean {
  return isMainThread && !(globalThis as Record<symbol, unknown>)[CHILD_MARKER];
}

// Loaded only where tests register, so that children never start a test harness of their own.
const nodeTest = registers() ? (await import("node:test")).test : undefined;

/** The part of `Deno.TestContext` that the Node run provides. */
export interface TestContext {
  name: string;
  origin: string;
  step(definition: TestStepDefinition): Promise<boolean>;
  step(name: string, fn: (t: TestContext) => void | Promise<void>): Promise<boolean>;
  step(fn: (t: TestContext) => void | Promise<void>): Promise<boolean>;
}

type TestFn = (t: TestContext) => void | Promise<void>;

/** The part of `Deno.TestDefinition` that the Node run honours; the rest is accepted and unused. */
export interface TestDefinition {
  name: string;
  fn: TestFn;
  ignore?: boolean;
  only?: boolean;
  sanitizeOps?: boolean;
  sanitizeResources?: boolean;
  sanitizeExit?: boolean;
  permissions?: unknown;
}

/** A step, as `t.step()` takes it. */
export interface TestStepDefinition {
  name: string;
  fn: TestFn;
  ignore?: boolean;
}

type TestOptions = Omit<TestDefinition, "name" | "fn">;

const origin = process.argv[1] ? pathToFileURL(process.argv[1]).href : "";

/** Reads the overloads of `Deno.test` and `t.step` into one definition. */
function definitionOf(
  args: [TestDefinition | string | TestFn | Omit<TestDefinition, "fn">, ...unknown[]],
): TestDefinition {
  const [first, second, third] = args;
  if (typeof first === "function") return { name: first.name, fn: first };
  if (typeof first === "string") {
    return typeof second === "function"
      ? { name: first, fn: second as TestFn }
      : { ...(second as TestOptions), name: first, fn: third as TestFn };
  }
  if (typeof second === "function") {
    return { ...first, name: first.name || second.name, fn: second as TestFn };
  }
  return first as TestDefinition;
}

function contextOf(t: NodeTestContext, name: string): TestContext {
  return {
    name,
    origin,
    async step(...args: [TestStepDefinition | string | TestFn, ...unknown[]]): Promise<boolean> {
      const step = definitionOf(args);
      if (step.ignore) {
        await t.test(step.name, { skip: true }, () => {});
        return false;
      }
      let passed = true;
      await t.test(step.name, { timeout: TEST_TIMEOUT_MS }, async (subtest) => {
        try {
          await step.fn(contextOf(subtest, step.name));
        } catch (error) {
          passed = false;
          throw error;
        }
      });
      return passed;
    },
  };
}

/** `Deno.test`, with its overloads, on `node:test`. */
function test(definition: TestDefinition): void;
function test(name: string, fn: TestFn): void;
function test(fn: TestFn): void;
function test(name: string, options: TestOptions, fn: TestFn): void;
function test(options: Omit<TestDefinition, "fn">, fn: TestFn): void;
function test(
  ...args: [TestDefinition | string | TestFn | Omit<TestDefinition, "fn">, ...unknown[]]
): void {
  if (!nodeTest || !registers()) return;
  const { name, fn, ignore } = definitionOf(args);
  nodeTest(
    name,
    { skip: ignore === true, timeout: TEST_TIMEOUT_MS },
    (t) => fn(contextOf(t, name)),
  );
}

/**
 * The `Deno` of the Node run. Any other member fails with a message that says why, instead of
 * `undefined is not a function`.
 */
export const Deno: { test: typeof test } = new Proxy({ test }, {
  get(target, key, receiver) {
    if (typeof key === "symbol" || key === "then" || key in target) {
      return Reflect.get(target, key, receiver);
    }
    throw new TypeError(
      `Deno.${key} does not exist in the Node run of the tests: use a node: module instead`,
    );
  },
});
