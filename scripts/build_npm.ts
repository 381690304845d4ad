/**
 * Builds the npm package `multiproc` into `npm/` with deno2node, and with `--test` runs the test
 * suite on Node against the same compiled code.
 *
 * ```sh
 * deno run -A scripts/build_npm.ts          # npm/ only
 * deno run -A scripts/build_npm.ts --test   # npm/, then the tests under `node --test`
 * deno run -A scripts/build_npm.ts --test --bun   # npm/, then the tests under `bun test`
 * ```
 *
 * The configuration comes first, in the shape of dnt's `build()`; the steps follow.
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { Context, deno2node, emit, ts } from "npm:deno2node@1.16.0";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage, npmCli, run } from "./_command.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const denoJson = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));

/** The build, as dnt would take it. Paths are relative to the repository root. */
export const config: BuildOptions = {
  entryPoints: [
    "./mod.ts",
    { name: "./distributed", path: "./distributed.ts" },
    { name: "./cli", path: "./cli/main.ts" },
    { kind: "bin", name: "multiproc", path: "./cli/main.ts" },
  ],
  // Workers and child processes start from URLs rather than imports, so every module of the library
  // and of the command line is compiled, not only those that the entry points reach.
  include: ["./mod.ts", "./distributed.ts", "./src/", "./cli/"],
  outDir: "./npm",
  importMap: "./deno.json",
  compilerOptions: {
    // Node 20: ES2024 APIs such as Promise.withResolvers are missing there, so they fail the build.
    target: "ES2022",
    lib: ["ES2023"],
    nodeTypes: "20.19.43",
  },
  package: {
    name: "multiproc",
    version: denoJson.version,
    description:
      "Python's threading, multiprocessing and concurrent.futures for TypeScript: Thread, Process, pools, queues and locks on worker threads and child processes.",
    license: denoJson.license,
    keywords: ["multiprocessing", "threading", "worker_threads", "child_process", "pool"],
    engines: { node: ">=20" },
    // `multiproc bench --svg` draws with ECharts (62 MB installed); nothing else loads it, so a
    // user of the library does not download it. The command says how to install it when missing.
    peerDependencies: { echarts: "^6.1.0" },
    peerDependenciesMeta: { echarts: { optional: true } },
  },
  // Imported by `multiproc/distributed` (and `multiproc worker`) alone: users of the local pools do
  // not install them. Their versions come from the `npm:` specifiers.
  optionalPeers: ["bullmq", "ioredis"],
  // The npm package's README shows Node usage; the repository's README is Deno first.
  copyFiles: [{ from: "docs/npm_readme.md", to: "README.md" }, "LICENSE"],
  test: {
    include: ["./tests/"],
    shim: "./tests/_node_shim.ts",
    // The npm package `bun` ships the Bun binary; the same compiled tests run on it.
    bun: "1.4.5",
  },
  // The npm-installed type and runtime dependencies, and the compiled code with its tests.
  workDir: "./.tmp/node",
};

/** An entry point: an export of the package (`name` such as `"./cli"`) or a command. */
export type EntryPoint = string | { kind?: "export" | "bin"; name: string; path: string };

/** Options of {@linkcode build}. */
export interface BuildOptions {
  entryPoints: EntryPoint[];
  /** Files and directories to compile besides the entry points. */
  include: string[];
  outDir: string;
  /** The `deno.json` whose `imports` resolve bare specifiers and give npm versions. */
  importMap: string;
  compilerOptions: { target: string; lib: string[]; nodeTypes: string };
  /** Fields of the generated package.json; exports, bin and dependencies are added. */
  package: { name: string; version: string; [field: string]: unknown };
  /** npm packages that the library imports but that become optional peer dependencies. */
  optionalPeers?: string[];
  /** Files copied into the package: a path keeps its name, `{ from, to }` renames it. */
  copyFiles: Array<string | { from: string; to: string }>;
  /** The tests that also run on Node, and the module that provides `Deno.test` there. */
  test: { include: string[]; shim: string; bun: string };
  workDir: string;
}

// ---------------------------------------------------------------------------------------------
// Steps

/**
 * Compiles the library (and, with `test`, the tests) and writes the npm package.
 *
 * @returns The build directory: the compiled library and tests, laid out as the repository.
 */
export async function build(options: BuildOptions, test = false): Promise<string> {
  const started = performance.now();
  const importMap = readImportMap(options.importMap);
  const workDir = abs(options.workDir);
  const buildDir = join(workDir, "build");
  const outDir = abs(options.outDir);

  const libraryFiles = await collectSources(options.include);
  const testFiles = test ? await collectSources(options.test.include) : [];
  const prepared = prepare({
    files: [...libraryFiles, ...testFiles],
    isTest: (file) => testFiles.includes(file),
    importMap,
    buildDir,
    nodeModules: join(workDir, "node_modules"),
    shim: abs(options.test.shim),
    compilerOptions: options.compilerOptions,
    version: options.package.version,
  });
  await installNodeModules(workDir, {
    ...prepared.testDependencies,
    ...(test ? { bun: options.test.bun } : {}),
    // The tests draw charts, so the optional peers are installed where they run.
    ...(options.package.peerDependencies as Record<string, string> | undefined),
    ...prepared.dependencies,
    "@types/node": options.compilerOptions.nodeTypes,
  });
  await removeDir(buildDir);
  await removeDir(outDir);
  await compile(prepared);
  if (test) {
    await copyAssets(options.test.include, buildDir);
  }

  const exports: Record<string, { types: string; import: string; require: string }> = {};
  const bin: Record<string, string> = {};
  for (const entry of options.entryPoints) {
    const { kind = "export", name, path } = typeof entry === "string"
      ? { name: ".", path: entry }
      : entry;
    if (!libraryFiles.includes(abs(path))) {
      console.warn(
        `%cwarning%c: ${path} does not exist yet; '${name}' is left out`,
        "color: yellow",
        "",
      );
      continue;
    }
    const js = `./esm/${toPosix(relative(root, abs(path))).replace(/\.ts$/, ".js")}`;
    if (kind === "bin") bin[name] = js;
    else {
      exports[name] = {
        types: js.replace(/\.js$/, ".d.ts"),
        import: js,
        require: js.replace(/\.js$/, ".cjs"),
      };
    }
  }

  await copyLibrary(buildDir, join(outDir, "esm"), libraryFiles);
  for (const [name, { import: js, require }] of Object.entries(exports)) {
    const specifier = options.package.name + name.slice(1);
    await Deno.writeTextFile(join(outDir, require), requireEntry(specifier, js));
  }
  for (const js of Object.values(bin)) await makeExecutable(join(outDir, js));
  const dependencies = { ...prepared.dependencies };
  const peerDependencies = { ...(options.package.peerDependencies as Record<string, string>) };
  const peerDependenciesMeta = {
    ...(options.package.peerDependenciesMeta as Record<string, { optional: boolean }>),
  };
  for (const name of options.optionalPeers ?? []) {
    if (!(name in dependencies)) continue;
    peerDependencies[name] = dependencies[name];
    peerDependenciesMeta[name] = { optional: true };
    delete dependencies[name];
  }
  const packageJson = {
    ...options.package,
    peerDependencies: sortKeys(peerDependencies),
    peerDependenciesMeta,
    type: "module",
    main: exports["."]?.import,
    types: exports["."]?.types,
    exports,
    ...(Object.keys(bin).length ? { bin } : {}),
    files: ["esm/"],
    dependencies: sortKeys(dependencies),
  };
  await Deno.writeTextFile(
    join(outDir, "package.json"),
    JSON.stringify(packageJson, null, 2) + "\n",
  );
  for (const file of options.copyFiles) {
    const { from, to } = typeof file === "string" ? { from: file, to: file } : file;
    await Deno.copyFile(abs(from), join(outDir, to));
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `Built ${options.package.name}@${options.package.version} into ${options.outDir} in ${seconds} s`,
  );
  return buildDir;
}

/**
 * The CommonJS entry of an export: the ES module itself where Node's `require()` loads ES modules
 * (20.19 and later, 22.12 and later), else an error that says how to load it. The types are the
 * ES module's, which TypeScript 5.8 and later resolve for `require` under `"module": "nodenext"`.
 */
function requireEntry(specifier: string, js: string): string {
  const message = `${specifier} is an ES module, which require() cannot load here: load it with ` +
    `\`const { Thread, Process } = await import(${JSON.stringify(specifier)})\` (in an async ` +
    `function)`;
  return `"use strict";
// ${specifier} is an ES module; Node 20.19+ and 22.12+ load it from require().
try {
  module.exports = require(${JSON.stringify(`./${js.split("/").at(-1)}`)});
} catch (error) {
  const code = error && error.code;
  if (code !== "ERR_REQUIRE_ESM" && code !== "ERR_REQUIRE_ASYNC_MODULE") throw error;
  const message = ${JSON.stringify(message)} +
    (code === "ERR_REQUIRE_ESM" ? ", or use Node 20.19 or later" : "");
  throw Object.assign(new Error(message, { cause: error }), { code });
}
`;
}

/**
 * What the compiled tests need to start a Deno program from the sources, for the tests that pair
 * runtimes (a Node client with a Deno worker node).
 */
function crossRuntimeEnv(): Record<string, string> {
  return { MULTIPROC_TEST_DENO: Deno.execPath(), MULTIPROC_TEST_SOURCE_ROOT: root };
}

/**
 * Runs the compiled `*_test.js` files under `node --test`. Each file gets its own process.
 *
 * @throws {Error} When a test fails.
 */
export async function testOnNode(buildDir: string, testDirs: string[]): Promise<void> {
  const files = await compiledTests(buildDir, testDirs);
  const flags = ["--test", "--test-reporter=spec"];
  // A test that leaves a handle open (a child, a timer) must not keep CI waiting; Node 20.14+.
  if (await nodeSupports("--test-force-exit")) flags.push("--test-force-exit");
  const started = performance.now();
  // Node 20 takes every .js file under a `test` directory for a test: pass the files explicitly.
  // The working directory mirrors the repository, so relative paths in tests still hold.
  await run("node", [...flags, ...files], {
    cwd: buildDir,
    timeoutMs: 20 * 60_000,
    env: crossRuntimeEnv(),
  });
  console.log(`Node tests passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Runs the compiled `*_test.js` files under Bun's test runner, one file per process as Node does,
 * with the Bun binary of the npm package `bun` installed by {@linkcode build}.
 *
 * @throws {Error} Naming the files with a failing test.
 */
export async function testOnBun(buildDir: string, testDirs: string[]): Promise<void> {
  const files = await compiledTests(buildDir, testDirs);
  const bun = await bunBinary(dirname(buildDir));
  const { stdout: version } = await run(bun, ["--version"], { capture: true });
  console.log(`Running ${files.length} test files on Bun ${version.trim()}`);
  const started = performance.now();
  const failed: string[] = [];
  for (const file of files) {
    // Bun's default of 5 s per test is shorter than what a loaded CI machine needs; a hang still
    // fails, as the Node run's 60 s limit does.
    try {
      await run(bun, ["test", "--timeout=60000", `./${toPosix(file)}`], {
        cwd: buildDir,
        timeoutMs: 10 * 60_000,
        env: crossRuntimeEnv(),
      });
    } catch (error) {
      console.error(`%cfailed%c: ${file}: ${errorMessage(error)}`, "color: red", "");
      failed.push(file);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (failed.length) throw new Error(`Bun tests failed in ${failed.join(", ")} (${seconds} s)`);
  console.log(`Bun tests passed in ${seconds} s`);
}

/**
 * The Bun binary of the npm package `bun`. npm installs it with `--ignore-scripts` here, so its
 * install script, which puts the binary of this platform in place, runs once by hand.
 */
async function bunBinary(workDir: string): Promise<string> {
  const packageDir = join(workDir, "node_modules", "bun");
  const binary = join(packageDir, "bin", "bun.exe");
  const works = () =>
    new Deno.Command(binary, { args: ["--version"], stdout: "null", stderr: "null" }).output()
      .then((output) => output.success, () => false);
  if (await works()) return binary;
  await run("node", ["install.js"], { cwd: packageDir });
  if (!await works()) throw new Error(`The bun package did not install a working ${binary}`);
  return binary;
}

/** The compiled `*_test.js` files under `testDirs`, relative to `buildDir`, in order. */
async function compiledTests(buildDir: string, testDirs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const dir of testDirs) {
    for await (const file of walk(join(buildDir, dir))) {
      if (file.endsWith("_test.js")) files.push(relative(buildDir, file));
    }
  }
  if (files.length === 0) throw new Error(`No *_test.js files in ${buildDir}`);
  return files.sort();
}

interface ImportMap {
  /** Import map entries, keys as written. */
  imports: Record<string, string>;
  /** The directory that relative targets start from. */
  baseDir: string;
}

function readImportMap(path: string): ImportMap {
  const file = abs(path);
  const json = file === join(root, "deno.json")
    ? denoJson
    : JSON.parse(Deno.readTextFileSync(file));
  return { imports: json.imports ?? {}, baseDir: dirname(file) };
}

/**
 * Installs, with npm, the packages that tsc needs for types and Node needs to run the tests.
 * Skipped when nothing changed since the last install.
 */
async function installNodeModules(
  workDir: string,
  dependencies: Record<string, string>,
): Promise<void> {
  const manifest = JSON.stringify(
    {
      name: "multiproc-build",
      private: true,
      // The compiled tests live below this package.json: Node must load them as ES modules.
      type: "module",
      dependencies: sortKeys(dependencies),
    },
    null,
    2,
  ) + "\n";
  const stamp = join(workDir, "node_modules", ".multiproc-installed");
  if (await readTextOrNull(stamp) === manifest) return;
  await Deno.mkdir(workDir, { recursive: true });
  await Deno.writeTextFile(join(workDir, "package.json"), manifest);
  console.log(`Installing build dependencies into ${relative(root, workDir)} with npm`);
  await run(npmCli("npm"), [
    "install",
    "--no-audit",
    "--no-fund",
    "--no-package-lock",
    "--ignore-scripts",
    "--loglevel=error",
  ], { cwd: workDir });
  await Deno.writeTextFile(stamp, manifest);
}

interface CompileOptions {
  files: string[];
  isTest: (file: string) => boolean;
  importMap: ImportMap;
  buildDir: string;
  nodeModules: string;
  shim: string;
  compilerOptions: BuildOptions["compilerOptions"];
  /** The package version, which an exported `VERSION` constant must repeat. */
  version: string;
}

type Project = Context["project"];
type SourceFile = ReturnType<Project["getSourceFiles"]>[number];

/** A file whose only statement is a `// @ts-types`-typed `export *`. */
interface TypedWrapper {
  file: string;
  /** The Node specifier that the compiled `.js` re-exports. */
  runtimeSpecifier: string;
}

/** A project whose specifiers Node resolves, ready for {@linkcode compile}. */
interface Prepared {
  ctx: Context;
  options: CompileOptions;
  wrappers: TypedWrapper[];
  /** The npm packages that the library imports, with versions from the import map. */
  dependencies: Record<string, string>;
  /** The npm packages that only the tests import. */
  testDependencies: Record<string, string>;
}

/**
 * Loads `files` and turns every Deno specifier in them into one that Node resolves, noting the npm
 * packages that they name. Reads nothing from `node_modules` yet.
 *
 * @throws {Error} Listing every specifier that has no Node equivalent.
 */
function prepare(options: CompileOptions): Prepared {
  const { importMap, buildDir, nodeModules } = options;
  const ctx = new Context({
    compilerOptions: {
      rootDir: root,
      outDir: buildDir,
      declaration: true,
      module: ts.ModuleKind.ESNext,
      // "nodenext" rejects `import.meta` in files that it takes for CommonJS.
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget[options.compilerOptions.target as keyof typeof ts.ScriptTarget],
      lib: options.compilerOptions.lib.map((lib) => `lib.${lib.toLowerCase()}.d.ts`),
      types: ["node"],
      typeRoots: [join(nodeModules, "@types")],
      // The sources live outside the directory where npm installs the packages.
      paths: { "*": [join(nodeModules, "*")] },
      strict: true,
      skipLibCheck: true,
      newLine: ts.NewLineKind.LineFeed,
    },
  });
  for (const file of options.files) ctx.project.addSourceFileAtPath(file);

  const dependencies: Record<string, string> = {};
  const testDependencies: Record<string, string> = {};
  const wrappers: TypedWrapper[] = [];
  const errors: string[] = [];
  for (const sourceFile of ctx.project.getSourceFiles()) {
    const file = sourceFile.getFilePath();
    // deno2node drops these for their `.node.ts` siblings.
    if (/\.deno\.tsx?$/.test(file)) continue;
    const isTest = options.isTest(file);
    const resolveSpecifier = (specifier: string): string => {
      const resolved = toNodeSpecifier(specifier, file, importMap);
      if (resolved.npm) {
        (isTest ? testDependencies : dependencies)[resolved.npm.name] = resolved.npm.version;
      }
      return resolved.specifier;
    };
    try {
      const wrapper = unwrapTypedReExport(sourceFile, resolveSpecifier);
      if (wrapper) {
        wrappers.push(wrapper);
        continue;
      }
      rewriteSpecifiers(sourceFile, resolveSpecifier);
      if (isTest && file !== options.shim) injectShim(sourceFile, options.shim);
      if (!isTest) checkVersion(sourceFile, options.version);
    } catch (error) {
      errors.push(`${relative(root, file)}: ${error instanceof Error ? error.message : error}`);
    }
  }
  if (errors.length) throw new Error(`Cannot build for Node:\n  ${errors.join("\n  ")}`);
  return { ctx, options, wrappers, dependencies, testDependencies };
}

/**
 * Type-checks and emits a prepared project into its `buildDir` with deno2node. Type errors in
 * library files fail the build; the tests are type-checked by `deno check` against Deno's types,
 * so their errors under Node's types are not reported.
 */
async function compile({ ctx, options, wrappers }: Prepared): Promise<void> {
  const project = ctx.project;
  // deno2node drops each `x.deno.ts` for its `x.node.ts` and gives relative imports `.js`.
  await deno2node(ctx);
  const diagnostics = (await emit(project)).filter((diagnostic) => {
    const file = diagnostic.getSourceFile()?.getFilePath();
    return file === undefined || !options.isTest(file);
  });
  if (diagnostics.length) {
    console.error(project.formatDiagnosticsWithColorAndContext(diagnostics));
    throw new Error(
      `${diagnostics.length} type error(s) in the library under Node's types (see above)`,
    );
  }
  for (const wrapper of wrappers) {
    const js = join(options.buildDir, relative(root, wrapper.file)).replace(/\.ts$/, ".js");
    await Deno.writeTextFile(js, `export * from ${JSON.stringify(wrapper.runtimeSpecifier)};\n`);
  }
}

/**
 * A module that only re-exports an untyped package under a `// @ts-types` declaration file (see
 * `tests/_std/`) compiles to that re-export, and its declarations to the declaration file. tsc has
 * no `@ts-types`, so it sees the declaration file in the module's place.
 */
function unwrapTypedReExport(
  sourceFile: SourceFile,
  resolveSpecifier: (specifier: string) => string,
): TypedWrapper | undefined {
  const directive = /@ts-types\s*=\s*["']([^"']+)["']/;
  if (!directive.test(sourceFile.getFullText())) return undefined;
  const statements = sourceFile.getStatements();
  const [statement] = statements;
  const typesPath = statement?.getLeadingCommentRanges()
    .map((range) => directive.exec(range.getText())?.[1])
    .find((path) => path !== undefined);
  const reExport = statement?.asKind(ts.SyntaxKind.ExportDeclaration);
  const specifier = reExport?.getModuleSpecifierValue();
  if (
    statements.length !== 1 || !typesPath || !reExport || specifier === undefined ||
    !reExport.isNamespaceExport() || reExport.isTypeOnly()
  ) {
    throw new Error(
      "`// @ts-types` is supported only in a module whose sole statement is one typed " +
        "`export * from` (a wrapper like tests/_std/assert.ts)",
    );
  }
  const declarations = Deno.readTextFileSync(resolve(sourceFile.getDirectoryPath(), typesPath));
  sourceFile.replaceWithText(declarations);
  return { file: sourceFile.getFilePath(), runtimeSpecifier: resolveSpecifier(specifier) };
}

/**
 * Rewrites the specifiers that deno2node leaves alone: import-map names, `npm:/` prefixes and
 * dynamic imports; and relative `.ts` URLs in `new URL(…, import.meta.url)` and
 * `import.meta.resolve(…)`, which must name the compiled `.js` files.
 */
function rewriteSpecifiers(
  sourceFile: SourceFile,
  resolveSpecifier: (specifier: string) => string,
): void {
  for (
    const declaration of [
      ...sourceFile.getImportDeclarations(),
      ...sourceFile.getExportDeclarations(),
    ]
  ) {
    const specifier = declaration.getModuleSpecifierValue();
    if (specifier !== undefined) declaration.setModuleSpecifier(resolveSpecifier(specifier));
  }
  const literals: { literal: StringLiteralNode; specifier: string }[] = [];
  for (const importType of sourceFile.getDescendantsOfKind(ts.SyntaxKind.ImportType)) {
    const literal = importType.getArgument().asKind(ts.SyntaxKind.LiteralType)?.getLiteral()
      .asKind(ts.SyntaxKind.StringLiteral);
    if (literal) literals.push({ literal, specifier: resolveSpecifier(literal.getLiteralValue()) });
  }
  for (const call of sourceFile.getDescendantsOfKind(ts.SyntaxKind.CallExpression)) {
    const callee = call.getExpression().getText();
    const literal = stringLiteral(call.getArguments()[0]);
    if (literal && callee === "import") {
      literals.push({ literal, specifier: resolveSpecifier(literal.getLiteralValue()) });
    } else if (literal && callee === "import.meta.resolve") {
      literals.push({ literal, specifier: literal.getLiteralValue() });
    }
  }
  for (const expression of sourceFile.getDescendantsOfKind(ts.SyntaxKind.NewExpression)) {
    const [first, second] = expression.getArguments() ?? [];
    const literal = stringLiteral(first);
    if (
      literal && expression.getExpression().getText() === "URL" &&
      second?.getText() === "import.meta.url"
    ) {
      literals.push({ literal, specifier: literal.getLiteralValue() });
    }
  }
  // Edited last, and only where they change, so that no edit invalidates a node still to visit.
  for (const { literal, specifier } of literals) {
    const value = toJs(specifier);
    if (value !== literal.getLiteralValue()) literal.setLiteralValue(value);
  }
}

type StringLiteralNode = NonNullable<ReturnType<typeof stringLiteral>>;

function stringLiteral(node: ReturnType<SourceFile["getFirstDescendant"]>) {
  return node?.asKind(ts.SyntaxKind.StringLiteral) ??
    node?.asKind(ts.SyntaxKind.NoSubstitutionTemplateLiteral);
}

/** `./x.ts` → `./x.js`, `./x.deno.ts` → `./x.node.js`; anything else as it is. */
function toJs(specifier: string): string {
  if (!/^\.\.?\//.test(specifier)) return specifier;
  return specifier.replace(/\.deno\.ts$/, ".node.ts").replace(/\.(ts|tsx|mts)$/, ".js");
}

/** An exported `VERSION` string constant must say what deno.json says. */
function checkVersion(sourceFile: SourceFile, version: string): void {
  const declaration = sourceFile.getVariableDeclaration("VERSION");
  const literal = stringLiteral(declaration?.getInitializer());
  if (declaration?.isExported() && literal && literal.getLiteralValue() !== version) {
    throw new Error(
      `VERSION is "${literal.getLiteralValue()}" but deno.json says "${version}": make them agree`,
    );
  }
}

/** Gives a test module the `Deno` of the shim, so that nothing global pretends to be Deno. */
function injectShim(sourceFile: SourceFile, shim: string): void {
  const usesDeno = sourceFile.getDescendantsOfKind(ts.SyntaxKind.Identifier)
    .some((identifier) => identifier.getText() === "Deno");
  if (!usesDeno) return;
  let specifier = toPosix(relative(sourceFile.getDirectoryPath(), shim));
  if (!specifier.startsWith(".")) specifier = `./${specifier}`;
  sourceFile.insertImportDeclaration(0, { namedImports: ["Deno"], moduleSpecifier: specifier });
}

interface NpmSpecifier {
  name: string;
  version: string;
  path: string;
}

function parseNpmSpecifier(specifier: string): NpmSpecifier | undefined {
  const match = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)(?:@([^/]+))?(\/.*)?$/.exec(specifier);
  if (!match) return undefined;
  return { name: match[1], version: match[2] ?? "*", path: match[3] ?? "" };
}

/**
 * The specifier that Node (and tsc, with the options above) resolves for `specifier` in `file`:
 * import-map names resolved, `npm:` reduced to the package path, relative and `node:` ones kept.
 */
function toNodeSpecifier(
  specifier: string,
  file: string,
  importMap: ImportMap,
): { specifier: string; npm?: NpmSpecifier } {
  if (/^\.\.?\//.test(specifier) || specifier.startsWith("node:")) return { specifier };
  const npm = parseNpmSpecifier(specifier);
  if (npm) return { specifier: npm.name + npm.path, npm };
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) {
    throw new Error(`'${specifier}' cannot be built for npm: use an npm: or node: specifier`);
  }
  const target = resolveImportMap(specifier, importMap.imports);
  if (target === undefined) {
    throw new Error(`'${specifier}' is not in the imports of deno.json`);
  }
  if (/^\.\.?\//.test(target)) {
    let path = toPosix(relative(dirname(file), resolve(importMap.baseDir, target)));
    if (!path.startsWith(".")) path = `./${path}`;
    return { specifier: path };
  }
  return toNodeSpecifier(target, file, importMap);
}

/** Resolves `specifier` with an exact key, else the longest `"prefix/"` key, as Deno does. */
function resolveImportMap(specifier: string, imports: Record<string, string>): string | undefined {
  if (Object.hasOwn(imports, specifier)) return imports[specifier];
  const prefix = Object.keys(imports)
    .filter((key) => key.endsWith("/") && specifier.startsWith(key))
    .sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : imports[prefix] + specifier.slice(prefix.length);
}

/** Copies the compiled library (not the tests) from the build directory into the package. */
async function copyLibrary(buildDir: string, esmDir: string, libraryFiles: string[]) {
  for (const source of libraryFiles) {
    const base = join(buildDir, relative(root, source)).replace(/\.ts$/, "");
    for (const extension of [".js", ".d.ts"]) {
      const from = base + extension;
      if (!await exists(from)) continue; // `*.deno.ts` compile to nothing
      const to = join(esmDir, relative(buildDir, from));
      await Deno.mkdir(dirname(to), { recursive: true });
      await Deno.copyFile(from, to);
    }
  }
}

/** Copies what tsc does not emit from the test directories: fixtures in JS, JSON, text. */
async function copyAssets(dirs: string[], buildDir: string) {
  for (const dir of dirs) {
    for await (const file of walk(abs(dir))) {
      if (/\.(ts|tsx|mts)$/.test(file)) continue;
      const to = join(buildDir, relative(root, file));
      await Deno.mkdir(dirname(to), { recursive: true });
      await Deno.copyFile(file, to);
    }
  }
}

/** A bin must start with a Node shebang and be executable to run through `npx`. */
async function makeExecutable(file: string) {
  const text = await Deno.readTextFile(file);
  const shebang = "#!/usr/bin/env node\n";
  if (!text.startsWith(shebang)) {
    await Deno.writeTextFile(file, shebang + text.replace(/^#![^\n]*\n/, ""));
  }
  if (Deno.build.os !== "windows") await Deno.chmod(file, 0o755);
}

/** The TypeScript sources among `paths` (files or directories), absolute, without `.d.ts`. */
async function collectSources(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const full = abs(path);
    const info = await Deno.stat(full).catch(() => undefined);
    if (!info) continue;
    if (info.isFile) files.push(full);
    else for await (const file of walk(full)) files.push(file);
  }
  return files.filter((file) => /\.(ts|tsx|mts)$/.test(file) && !file.endsWith(".d.ts")).sort();
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

async function nodeSupports(flag: string): Promise<boolean> {
  const { stdout } = await run("node", ["--help"], { capture: true });
  return stdout.includes(flag);
}

function abs(path: string): string {
  return resolve(root, path);
}

function toPosix(path: string): string {
  return path.split(sep).join("/");
}

function sortKeys(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function readTextOrNull(path: string): Promise<string | null> {
  return await Deno.readTextFile(path).catch(() => null);
}

async function removeDir(dir: string) {
  await Deno.remove(dir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

if (import.meta.main) {
  try {
    const args = parseArgs(Deno.args, { boolean: ["test", "bun"] });
    const buildDir = await build(config, args.test === true);
    if (args.test && args.bun) await testOnBun(buildDir, config.test.include);
    else if (args.test) await testOnNode(buildDir, config.test.include);
  } catch (error) {
    // What failed was printed above it; a stack trace of this script would only bury it, unless
    // the script itself broke.
    if (error instanceof Error && error.constructor !== Error) console.error(error.stack);
    console.error(`%cerror%c: ${errorMessage(error)}`, "color: red; font-weight: bold", "");
    Deno.exit(1);
  }
}
