/**
 * The notebook's worker function, which `multiproc demo` runs in threads and in processes.
 *
 * @module
 */

/** URL of this module, which the demo passes as `module` so that children can import it. */
export const demoModuleUrl: string = import.meta.url;

/** Prints `Working n ...`, sleeps, then prints `Thread n was finished.`, as in the notebook. */
export async function doSomething(n: number, sleepMs: number): Promise<void> {
  console.log(`Working ${n} ...`);
  await new Promise((resolve) => setTimeout(resolve, sleepMs));
  console.log(`Thread ${n} was finished.`);
}
