/**
 * The parent-side analysis of a target function (src/_target.ts): whether a module's text exports
 * a name, and which names a function takes from outside its body. These decide whether a target is
 * imported in the child, sent as source, or refused, so each rule is pinned here.
 */
import { assertEquals } from "@std/assert";
import { analyzeSource, exportsName, toModuleUrl } from "../src/_target.ts";

Deno.test("exportsName() finds every form of a named export", () => {
  const forms: [string, string][] = [
    ["export function add(a, b) { return a + b; }", "add"],
    ["export async function add() {}", "add"],
    ["export function* add() {}", "add"],
    ["export async function * add() {}", "add"],
    ["export const add = (a, b) => a + b;", "add"],
    ["export let add = function () {};", "add"],
    ["export var add;", "add"],
    ["export const { add, other: renamed } = table;", "add"],
    ["export const { add, other: renamed } = table;", "renamed"],
    ["export const [first, add] = pair;", "add"],
    ["function add() {}\nexport { add };", "add"],
    ["function add() {}\nexport { other, add as plus };", "add"],
    ["export default function add() {}", "add"],
    ["export default async function add() {}", "add"],
    ["export class Add {}", "Add"],
    ["export default abstract class Add {}", "Add"],
    ["export declare function add(): void;", "add"],
    ["export function $run() {}", "$run"],
    ["export function run_2() {}", "run_2"],
  ];
  for (const [text, name] of forms) {
    assertEquals(exportsName(text, name), true, `${name} in ${text}`);
  }
});

Deno.test("exportsName() does not take a longer name, a comment or a plain declaration", () => {
  assertEquals(exportsName("export function addAll() {}", "add"), false);
  assertEquals(exportsName("export function add$() {}", "add"), false);
  assertEquals(exportsName("export function preadd() {}", "add"), false);
  assertEquals(exportsName("function add() {}", "add"), false);
  assertEquals(exportsName("// export function add() {}\nfunction add() {}", "add"), false);
  assertEquals(exportsName("/* export function add() {} */ function add() {}", "add"), false);
  assertEquals(
    exportsName("/*\n export const add = 1;\n*/\nconst add = 1;", "add"),
    false,
  );
});

Deno.test("exportsName() keeps code after a URL that holds two slashes", () => {
  const text = 'const base = "https://example.com"; export function add() {}';
  assertEquals(exportsName(text, "add"), true);
});

Deno.test("exportsName() cannot tell behind export * or export default", () => {
  assertEquals(exportsName('export * from "./other.ts";', "add"), undefined);
  assertEquals(exportsName('export * as ns from "./other.ts";', "add"), undefined);
  assertEquals(exportsName("export default add;", "add"), undefined);
  // An anonymous function has no name to look for: only a default export may hold it.
  assertEquals(exportsName("export default () => 1;", ""), undefined);
  assertEquals(exportsName("export const x = 1;", ""), false);
  // A name that is no identifier (a bound function's "bound f") cannot be exported as such.
  assertEquals(exportsName("export function f() {}", "bound f"), false);
});

/** Evaluates an `evalText` as the child does: in the global scope. */
function evaluate(evalText: string | undefined): (...args: never[]) => unknown {
  if (evalText === undefined) throw new Error("no evalText");
  return (0, eval)(evalText);
}

Deno.test("analyzeSource() finds no outside names in a self-contained function", () => {
  const sources: [string, unknown[], unknown][] = [
    ["(a, b) => a + b", [2, 3], 5],
    ["function twice(x) { return x * 2; }", [4], 8],
    ["async function f() { return 1; }", [], Promise.resolve(1)],
    ["() => Math.max(1, 2) + JSON.stringify({ a: 1 }).length", [], 9],
    ["(o) => o.offset + ({ key: 1 }).key", [{ offset: 1 }], 2],
    ["({ a, b: [c] }, ...rest) => a + c + rest.length", [{ a: 1, b: [2] }, 0, 0], 5],
    ["(x = 1, { y } = { y: 2 }) => x + y", [], 3],
    [
      "() => { outer: for (;;) { try { break outer; } catch (e) { return e; } } return 'out'; }",
      [],
      "out",
    ],
    ["() => { try { throw 1; } catch (e) { return e; } }", [], 1],
    ["() => { class Box { get() { return Box.name; } } return new Box().get(); }", [], "Box"],
    ["function f() { return new.target === undefined; }", [], true],
    ["() => { let n = 0; for (const i of [1, 2]) n += i; return n; }", [], 3],
    ["function count() { return arguments.length; }", [1, 2], 2],
    ["() => [undefined, NaN, Infinity, globalThis].length", [], 4],
  ];
  for (const [source, args, expected] of sources) {
    const { evalText, freeNames } = analyzeSource(source, "");
    assertEquals(freeNames, [], source);
    const result = evaluate(evalText)(...args as never[]);
    if (expected instanceof Promise) assertEquals(result instanceof Promise, true, source);
    else assertEquals(result, expected, source);
  }
});

Deno.test("analyzeSource() names what a function takes from outside, once each", () => {
  const cases: [string, string[]][] = [
    ["(x) => x + offset", ["offset"]],
    ["() => { counter++; counter++; }", ["counter"]],
    ["(a) => ({ a, b })", ["b"]],
    ["() => helper(limit) + helper(1)", ["helper", "limit"]],
    ["() => table[key]", ["table", "key"]],
    ["() => new Thing()", ["Thing"]],
    ["() => `${prefix}-x`", ["prefix"]],
    // An arrow's `arguments` are those of the function around it.
    ["() => arguments.length", ["arguments"]],
  ];
  for (const [source, names] of cases) {
    const { evalText, freeNames } = analyzeSource(source, "");
    assertEquals(freeNames.sort(), names.sort(), source);
    assertEquals(evalText, undefined, source);
  }
});

Deno.test("analyzeSource() accepts a name declared in an inner scope, erring towards accepting", () => {
  // Scopes are flattened: a correct function is never refused, a wrong one fails in the child.
  assertEquals(analyzeSource("() => { { const x = 1; } return typeof x; }", "").freeNames, []);
});

Deno.test("analyzeSource() rebuilds a method from its source and name", () => {
  const { evalText, freeNames } = analyzeSource("double(x) { return x * 2; }", "double");
  assertEquals(freeNames, []);
  assertEquals(evaluate(evalText)(21 as never), 42);
  const getter = analyzeSource("async run() { return 1; }", "run");
  assertEquals(getter.freeNames, []);
});

Deno.test("analyzeSource() refuses source that is no single function expression", () => {
  assertEquals(analyzeSource("not js {", "").freeNames, ["(source that could not be parsed)"]);
  assertEquals(analyzeSource("1; 2", "").freeNames, ["(source that could not be parsed)"]);
});

Deno.test("toModuleUrl() keeps URLs and resolves paths from the working directory", () => {
  assertEquals(toModuleUrl(new URL("file:///a/b.ts")), "file:///a/b.ts");
  assertEquals(toModuleUrl("https://example.com/m.ts"), "https://example.com/m.ts");
  assertEquals(toModuleUrl("node:zlib"), "node:zlib");
  const relative = toModuleUrl("./some/module.ts");
  assertEquals(relative.startsWith("file:///"), true);
  assertEquals(relative.endsWith("/some/module.ts"), true);
});
