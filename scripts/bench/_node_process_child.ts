/** A hand-written child like `_bare_child.ts` that also loads Deno's Node compatibility layer. */
import process from "node:process";
const { firstLine } = await import(Deno.args[0]);
console.log(firstLine(), process.pid > 0 ? "" : "");
