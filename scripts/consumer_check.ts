/**
 * Checks the built npm package as a user gets it: packs `npm/`, installs the tarball into a fresh
 * project outside the repository, and from there checks, on the Node that runs it:
 *
 * - the installed size, dependencies included (at most {@linkcode MAX_INSTALLED_MB} MB);
 * - the `multiproc` command, and its error for `--svg` without the optional ECharts;
 * - an ES module that starts a Thread and a Process on its own exported functions;
 * - every Node example of both READMEs, as written;
 * - `require("multiproc")` from CommonJS with targets exported by `module.exports`, and the
 *   error on a Node whose `require()` cannot load ES modules;
 * - TypeScript targets in `.ts` and `.mts` files under `tsx`, in threads, thread pools, processes
 *   and process pools;
 * - a type check of the ES module and CommonJS consumers under `"module": "nodenext"`.
 *
 * Run `deno task build:npm` first.
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
import { errorMessage, npmCli, type Outcome, run, runCaptured } from "./_command.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The most that `npm install multiproc` may add to a project, dependencies included. */
export const MAX_INSTALLED_MB = 10;
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
 * A CommonJS consumer: `require()`, targets exported by `module.exports`, and the message for a
 * target that is not exported.
 */
const commonJsScript = `const assert = require("node:assert/strict");
const { Process, Thread } = require("multiproc");

function area(width, height) {
  return width * height;
}
function square(side) {
  return area(side, side);
}
function notExported(side) {
  return area(side, 1);
}
module.exports = { area, square };

if (require.main === module) {
  (async () => {
    for (const Kind of [Thread, Process]) {
      const worker = new Kind({ target: square, args: [6] });
      worker.start();
      await worker.join();
      assert.equal(worker.exitCode, 0, String(worker.error));
      assert.equal(worker.result, 36);
    }
    assert.throws(
      () => new Thread({ target: notExported, args: [1] }),
      /module\\.exports = \\{ notExported \\}/,
    );
    console.log("check.cjs: require() and CommonJS targets work");
  })().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
`;

/** Where `require()` cannot load ES modules: the error must show the import() to use. */
const requireOnlyScript = `require("multiproc");
`;

/** A TypeScript module beside the main one, loaded by URL as the READMEs show. */
const tsLibrary = `export function cube(n: number): number {
  const value: number = n;
  return value * value * value;
}
`;

/** A TypeScript program run under tsx: every kind of worker loads its `.ts` and `.mts` targets. */
const tsProgram = `import process from "node:process";
import { pathToFileURL } from "node:url";
import { Pool, Process, Thread, ThreadPool } from "multiproc";
import { cube } from "./lib.mts";

export function square(n: number): number {
  const value: number = n;
  return value * value;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results: Record<string, unknown> = {};
  const library = new URL("./lib.mts", import.meta.url);
  for (const Kind of [Thread, Process]) {
    for (const [target, module] of [[square, undefined], [cube, library]] as const) {
      const worker = new Kind({ target, args: [3], module });
      worker.start();
      await worker.join();
      if (worker.exitCode !== 0) throw new Error(\`\${Kind.name} failed\`, { cause: worker.error });
      results[\`\${Kind.name} \${target.name}\`] = worker.result;
    }
  }
  for (const pool of [new ThreadPool({ size: 2 }), new Pool({ size: 2 })]) {
    results[\`\${pool.constructor.name} square\`] = await pool.map(square, [1, 2]);
    results[\`\${pool.constructor.name} cube\`] = await pool.map(cube, [2], { module: library });
    pool.close();
    await pool.join();
  }
  console.log(JSON.stringify(results));
}
`;

const tsExpected = {
  "Thread square": 9,
  "Thread cube": 27,
  "Process square": 9,
  "Process cube": 27,
  "ThreadPool square": [1, 4],
  "ThreadPool cube": [8],
  "Pool square": [1, 4],
  "Pool cube": [8],
};

/** The CommonJS consumer, typed: `require` resolves to the same declarations. */
const commonJsTypes = `import { Thread } from "multiproc";

export function square(n: number): number {
  return n * n;
}
const thread: Thread = new Thread({ target: square, args: [2] });
// @ts-expect-error A number is no string: this fails if the types were lost.
const text: string = thread.name.length;
console.log(text);
`;

/** A fenced code block of a README that runs on Node, with the file name it is written to. */
export interface Example {
  /** `main.mjs`: from a first line such as `// main.mjs`, else made up from `prefix`. */
  file: string;
  code: string;
}

/**
 * The ```js blocks of `markdown`: the Node examples. A block whose first line is a comment naming
 * a `.mjs` or `.cjs` file is written to that file, as the README tells the reader to.
 */
export function nodeExamples(markdown: string, prefix: string): Example[] {
  const blocks = [...markdown.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
  return blocks.map((code, i) => {
    const named = /^\/\/ ([\w.-]+\.[cm]js)\n/.exec(code)?.[1];
    return { file: named ?? `${prefix}_${i + 1}.mjs`, code };
  });
}

/** The size of the files under `dir`, in bytes. */
async function treeSize(dir: string): Promise<number> {
  let bytes = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) bytes += await treeSize(path);
    else if (entry.isFile) bytes += (await Deno.stat(path)).size;
  }
  return bytes;
}

function expectSuccess(what: string, outcome: Outcome): void {
  if (outcome.code !== 0) {
    throw new Error(`${what} failed with exit code ${outcome.code}:\n${outcome.stderr}`);
  }
}

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
    const npmInstall = (packages: string[]) =>
      run(npmCli("npm"), ["install", "--no-audit", "--no-fund", "--loglevel=error", ...packages], {
        cwd: app,
      });
    await npmInstall([join(tempDir, filename)]);
    const installedMb = await treeSize(join(app, "node_modules")) / 1e6;
    console.log(
      `installed size: ${
        installedMb.toFixed(1)
      } MB with its dependencies (at most ${MAX_INSTALLED_MB})`,
    );
    if (installedMb > MAX_INSTALLED_MB) {
      throw new Error(`npm install multiproc takes ${installedMb.toFixed(1)} MB`);
    }

    // The distributed pool's packages are optional peers: a user of the local pools gets neither.
    for (const name of ["bullmq", "ioredis"]) {
      if (await Deno.stat(join(app, "node_modules", name)).then(() => true, () => false)) {
        throw new Error(`Installing the package also installed '${name}': it must stay optional`);
      }
    }

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

    // The chart library is an optional peer: a chart without it says how to install it.
    const svg = await runCaptured(
      npmCli("npx"),
      ["--no", "multiproc", "bench", "gil", "--tasks", "1", "--work", "1000", "--svg", "x.svg"],
      { cwd: app, timeoutMs: 120_000 },
    );
    if (svg.code !== 1 || !svg.stderr.includes("npm install echarts")) {
      throw new Error(`bench --svg without echarts: exit ${svg.code}, stderr:\n${svg.stderr}`);
    }
    console.log("$ npx multiproc bench gil --svg x.svg: says to run npm install echarts");

    await Deno.writeTextFile(join(app, "check.mjs"), consumerScript);
    console.log("$ node check.mjs");
    await run("node", ["check.mjs"], { cwd: app, timeoutMs: 120_000 });

    await checkReadmeExamples(app);
    await checkCommonJs(app);

    await npmInstall(["tsx"]);
    await checkTsx(app);

    await Deno.writeTextFile(join(app, "check.mts"), consumerTypes);
    await Deno.writeTextFile(join(app, "check.cts"), commonJsTypes);
    typeCheck(app, ["check.mts", "check.cts"]);
    console.log("check.mts, check.cts: the package's types resolve under module nodenext");

    passed = true;
  } finally {
    if (passed && !keep) await Deno.remove(tempDir, { recursive: true });
    else console.error(`The consumer project is left in ${tempDir}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`Consumer check of ${manifest.name}@${manifest.version} passed in ${seconds} s`);
}

/** Runs every Node example of both READMEs as written, each in its own file. */
async function checkReadmeExamples(app: string): Promise<void> {
  const examples = [
    ...nodeExamples(await Deno.readTextFile(join(app, "node_modules/multiproc/README.md")), "npm"),
    ...nodeExamples(await Deno.readTextFile(join(root, "README.md")), "readme"),
  ];
  // What the examples read or preload.
  await Deno.mkdir(join(app, "data"), { recursive: true });
  await Deno.writeTextFile(join(app, "data/a.txt"), "one\ntwo\n");
  await Deno.writeTextFile(join(app, "heavy_module.js"), "export const heavy = true;\n");
  for (const { file, code } of examples) {
    await Deno.writeTextFile(join(app, file), code);
    const outcome = await runCaptured("node", [file], { cwd: app, timeoutMs: 120_000 });
    expectSuccess(`README example ${file}`, outcome);
    console.log(`$ node ${file}: ${outcome.stdout.trim().split("\n").at(-1) ?? ""}`);
  }
}

/** `require("multiproc")`, CommonJS targets, and the message where `require()` cannot load it. */
async function checkCommonJs(app: string): Promise<void> {
  await Deno.writeTextFile(join(app, "check.cjs"), commonJsScript);
  expectSuccess(
    "check.cjs",
    await runCaptured("node", ["check.cjs"], { cwd: app, timeoutMs: 120_000 }),
  );
  console.log("$ node check.cjs: require() and CommonJS targets work");
  const { stdout: help } = await runCaptured("node", ["--help"]);
  if (!help.includes("--experimental-require-module")) return;
  // A Node that cannot require() ES modules, as Node 20 before 20.19.
  await Deno.writeTextFile(join(app, "require_only.cjs"), requireOnlyScript);
  const old = await runCaptured(
    "node",
    ["--no-experimental-require-module", "require_only.cjs"],
    { cwd: app, timeoutMs: 60_000 },
  );
  if (old.code === 0 || !old.stderr.includes('await import("multiproc")')) {
    throw new Error(`require() without ES module support: exit ${old.code}:\n${old.stderr}`);
  }
  console.log("$ node --no-experimental-require-module: the error shows await import()");
}

/** A TypeScript program under tsx, both ways of starting it. */
async function checkTsx(app: string): Promise<void> {
  await Deno.writeTextFile(join(app, "lib.mts"), tsLibrary);
  await Deno.writeTextFile(join(app, "main.ts"), tsProgram);
  const ways: [string, string[]][] = [
    [npmCli("npx"), ["--no", "tsx", "main.ts"]],
    ["node", ["--import", "tsx", "main.ts"]],
  ];
  for (const [command, args] of ways) {
    const outcome = await runCaptured(command, args, { cwd: app, timeoutMs: 120_000 });
    const line = [command, ...args].join(" ");
    expectSuccess(line, outcome);
    const results = JSON.parse(outcome.stdout.trim().split("\n").at(-1) ?? "");
    if (JSON.stringify(results) !== JSON.stringify(tsExpected)) {
      throw new Error(`${line} printed ${JSON.stringify(results)}`);
    }
    console.log(`$ ${line}: every kind of worker loaded its .ts and .mts targets`);
  }
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
