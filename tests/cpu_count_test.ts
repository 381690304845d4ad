import { assert } from "@std/assert";
import { cpuCount } from "../mod.ts";

Deno.test("cpuCount() returns a positive integer", () => {
  const n = cpuCount();
  assert(Number.isInteger(n) && n >= 1, `expected a positive integer, got ${n}`);
});
