/** A hand-written child that reports its target's first line over Node's IPC channel, as multiproc's children do. */
import process from "node:process";
const { firstLine } = await import(Deno.args[0]);
process.send!(firstLine(), undefined, undefined, () => process.exit(0));
