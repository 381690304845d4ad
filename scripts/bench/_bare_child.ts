/** A hand-written child process doing the start benchmark's job with nothing of multiproc. */
const { firstLine } = await import(Deno.args[0]);
console.log(firstLine());
