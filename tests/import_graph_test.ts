/**
 * The library's modules import each other in one direction: no cycle, static or dynamic, so that
 * no module needs lazy initialisation to load. Read from the sources as they run (TypeScript on
 * Deno, the compiled JavaScript on Node); type-only imports count on Deno.
 */
import { assertEquals } from "@std/assert";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { moduleExtension } from "./_runtime.deno.ts";

const srcDir = fileURLToPath(new URL("../src/", import.meta.url));

/** Each module of src/ and the modules of src/ that it imports, by file name. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of readdirSync(srcDir)) {
    if (!file.endsWith(moduleExtension) || file.endsWith(".d.ts")) continue;
    const text = readFileSync(srcDir + file, "utf8");
    const targets: string[] = [];
    const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)"\.\/([\w.]+)"/g;
    for (const match of text.matchAll(pattern)) targets.push(match[1]);
    graph.set(file, targets);
  }
  return graph;
}

/** The cycles of `graph`: its strongly connected parts of more than one module, or a self-import. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (stack.includes(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const part: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        part.push(member);
      } while (member !== node);
      if (part.length > 1 || graph.get(node)!.includes(node)) found.push(part.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

Deno.test("The modules of src/ import each other without a cycle", () => {
  const graph = importGraph();
  // The graph was read: the public modules and their imports are there.
  assertEquals(graph.has(`pool${moduleExtension}`), true);
  assertEquals(graph.get(`errors${moduleExtension}`)!.length > 0, true);
  assertEquals(cycles(graph), []);
});

Deno.test("The cycle finder reports each cycle and a module that imports itself", () => {
  const graph = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a", "d"]],
    ["d", []],
    ["e", ["e"]],
  ]);
  assertEquals(cycles(graph), [["a", "b", "c"], ["e"]]);
});
