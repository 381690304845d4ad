/**
 * Checks the built npm package as a user gets it: packs `npm/`, installs the tarball into a fresh
 * project outside the repository, and from there runs the `multiproc` command, an ES module that
 * starts a Thread and a Process on its own exported functions, and a type check of both under
 * `"module": "nodenext"`. Run `deno task build:npm` first.
 *
 * ```sh
 * deno run -A scripts/consumer_check.ts [--keep]   # --keep leaves the project for inspection
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { Context, ts } from "npm:deno2node@1.16.0";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage, npmCli, run } from "./_command.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const packageDir = join(root, "npm");
// `@types/node`, installed there by scripts/build_npm.ts.
const typeRoots = [join(root, ".tmp", "node", "node_modules", "@types")];

/**
 * The consumer's script. Its targets are exported and it runs only as the main module, as Python
 * requires under spawn: the Thread and the Process import this file to find the targets.
 */
const consumerScript = `import assert from "node:assert/strict";
import { realpathSync } from "node:fs";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { cpuCount, Process, Thread } from "multiproc";

export function square(n) {
  return n * n;
}

export function describeSelf(tag) {
  return { tag, pid: process.pid };
}

if (import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const cpus = cpuCount();
  assert.ok(Number.isInteger(cpus) && cpus >= 1, \`cpuCount() returned \${cpus}\`);

  const thread = new Thread({ target: square, args: [7] });
  thread.start();
  await thread.join();
  assert.equal(thread.exitCode, 0, "Thread exitCode");
  assert.equal(thread.result, 49, "Thread result");

  const child = new Process({ target: describeSelf, args: ["child"] });
  child.start();
  assert.equal(typeof child.pid, "number", "Process pid");
  await child.join();
  assert.equal(child.exitCode, 0, "Process exitCode");
  assert.deepEqual(child.result, { tag: "child", pid: child.pid }, "Process result");
  assert.notEqual(child.pid, process.pid);

  console.log(\`consumer script: cpuCount() = \${cpus}, Thread and Process returned their results\`);
}
`;

/** The same use, typed: the package's declarations must resolve as Node resolves the code. */
const consumerTypes = `import { cpuCount, Process, Thread } from "multiproc";

const cpus: number = cpuCount();
// @ts-expect-error A number is no string: this fails if the types were lost and cpuCount is any.
const text: string = cpuCount();
export function square(n: number): number {
  return n * n;
}
const thread = new Thread({ target: square, args: [cpus] });
thread.start();
await thread.join();
const child = new Process({ target: square, args: [2] });
console.log(text, thread.exitCode, thread.result, child.pid);
`;

/**
 * Packs, installs and exercises the package.
 *
 * @throws {Error} When any step fails or prints something unexpected.
 */
export async function checkConsumer(keep = false): Promise<void> {
  const started = performance.now();
  const manifest = JSON.parse(
    await Deno.readTextFile(join(packageDir, "package.json")).catch(() => {
      throw new Error("npm/package.json is missing: run `deno task build:npm` first");
    }),
  );
  const tempDir = await Deno.realPath(await Deno.makeTempDir({ prefix: "multiproc_consumer_" }));
  let passed = false;
  try {
    const { stdout } = await run(
      npmCli("npm"),
      ["pack", "--json", "--pack-destination", tempDir, "--loglevel=error"],
      { cwd: packageDir, capture: true },
    );
    const [{ filename }] = JSON.parse(stdout);
    const app = join(tempDir, "app");
    await Deno.mkdir(app);
    await Deno.writeTextFile(
      join(app, "package.json"),
      JSON.stringify({ name: "multiproc-consumer", private: true, type: "module" }, null, 2),
    );
    await run(npmCli("npm"), [
      "install",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      join(tempDir, filename),
    ], { cwd: app });

    if (!manifest.bin?.multiproc) throw new Error("npm/package.json has no `multiproc` bin");
    console.log("$ npx multiproc demo");
    // --no: never fetch some other package of that name from the registry.
    const demo = await run(npmCli("npx"), ["--no", "multiproc", "demo"], {
      cwd: app,
      capture: true,
      timeoutMs: 120_000,
    });
    console.log(demo.stdout.trimEnd());
    if (!demo.stdout.trim()) throw new Error("`npx multiproc demo` printed nothing");

    await Deno.writeTextFile(join(app, "check.mjs"), consumerScript);
    console.log("$ node check.mjs");
    await run("node", ["check.mjs"], { cwd: app, timeoutMs: 120_000 });

    await Deno.writeTextFile(join(app, "check.mts"), consumerTypes);
    typeCheck(app, ["check.mts"]);
    console.log("check.mts: the package's types resolve under module nodenext");

    passed = true;
  } finally {
    if (passed && !keep) await Deno.remove(tempDir, { recursive: true });
    else console.error(`The consumer project is left in ${tempDir}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`Consumer check of ${manifest.name}@${manifest.version} passed in ${seconds} s`);
}

/** Type-checks `files` in `dir` the way a TypeScript project on Node 20 would. */
function typeCheck(dir: string, files: string[]): void {
  // A deno2node context is a ts-morph project, which carries TypeScript's lib files.
  const { project } = new Context({
    compilerOptions: {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2023.d.ts"],
      types: ["node"],
      typeRoots,
      strict: true,
      noEmit: true,
      // The package's declarations are what is under test.
      skipLibCheck: false,
    },
  });
  for (const file of files) project.addSourceFileAtPath(join(dir, file));
  const diagnostics = project.getPreEmitDiagnostics();
  if (diagnostics.length) {
    console.error(project.formatDiagnosticsWithColorAndContext(diagnostics));
    throw new Error(`${diagnostics.length} type error(s) in a TypeScript consumer (see above)`);
  }
}

if (import.meta.main) {
  try {
    const args = parseArgs(Deno.args, { boolean: ["keep"] });
    await checkConsumer(args.keep === true);
  } catch (error) {
    // What failed was printed above it; a stack trace of this script would only bury it, unless
    // the script itself broke.
    if (error instanceof Error && error.constructor !== Error) console.error(error.stack);
    console.error(`%cerror%c: ${errorMessage(error)}`, "color: red; font-weight: bold", "");
    Deno.exit(1);
  }
}
