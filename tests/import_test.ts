/**
 * The library as a new user imports it: by path from a project without a deno.json, over HTTP as
 * JSR serves a package, and with the permissions of the README. Each case runs a real consumer
 * script in its own runtime; the Deno-only cases are skipped on Node.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Thread } from "../mod.ts";
import { runtime } from "./_runtime.deno.ts";

const repo = fileURLToPath(new URL("..", import.meta.url));
const deno = runtime === "deno";

/** What a consumer script printed and how it ended. */
interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `deno run` with `args` in `cwd` to its end, output captured. */
function runDeno(args: string[], cwd: string, timeoutMs = 90_000): Promise<Outcome> {
  const child = spawn(Deno.execPath(), ["run", "--quiet", ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (chunk) => stdout += chunk);
  child.stderr!.on("data", (chunk) => stderr += chunk);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** A directory outside the repository, so that no deno.json or package.json applies. */
function consumerDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "multiproc_consumer_"));
  for (let up = dir; dirname(up) !== up; up = dirname(up)) {
    for (const config of ["deno.json", "deno.jsonc", "package.json"]) {
      assert(
        !readdirSync(up).includes(config),
        `${join(up, config)} would apply to the consumer: the test needs a directory without one`,
      );
    }
  }
  return dir;
}

/**
 * The consumer: every class of the library against `library` (a URL of mod.ts), with its own
 * exported targets. It prints one JSON line of results.
 */
function consumerScript(library: string): string {
  return `import {
  Event, getContext, Lock, Pool, Process, Queue, Thread, ThreadPool, Value,
} from ${JSON.stringify(library)};

export function square(n: number): number {
  return n * n;
}

export async function share(
  queue: Queue<string>, total: Value<"i32">, lock: Lock, ready: Event, tag: string,
): Promise<void> {
  await lock.acquire();
  try {
    total.value += 1;
  } finally {
    lock.release();
  }
  await queue.put(tag);
  ready.set();
}

async function run(worker: Thread | Process): Promise<unknown> {
  worker.start();
  await worker.join();
  if (worker.exitCode !== 0) throw new Error(worker.name + " failed", { cause: worker.error });
  return worker.result;
}

if (import.meta.main) {
  const out: Record<string, unknown> = {};
  out.thread = await run(new Thread({ target: square, args: [2] }));
  out.daemonThread = await run(new Thread({ target: square, args: [3], daemon: true }));
  out.process = await run(new Process({ target: square, args: [4] }));
  out.forkserverProcess = await run(
    new (getContext("forkserver").Process)({ target: square, args: [5] }),
  );
  const threads = new ThreadPool({ size: 2 });
  out.threadPool = await threads.map(square, [1, 2, 3]);
  threads.close();
  await threads.join();
  for (const startMethod of ["spawn", "forkserver"] as const) {
    const pool = new Pool({ size: 2, startMethod });
    out[startMethod + "Pool"] = await pool.map(square, [4, 5, 6]);
    pool.close();
    await pool.join();
  }
  const queue = new Queue<string>();
  const total = new Value("i32", 0);
  const lock = new Lock();
  const ready = new Event();
  for (const kind of ["thread", "process"]) {
    const Kind = kind === "thread" ? Thread : Process;
    await run(new Kind({ target: share, args: [queue, total, lock, ready, kind] }));
  }
  out.shared = {
    queue: [await queue.get(), await queue.get()].sort(),
    total: total.value,
    ready: ready.isSet(),
  };
  console.log(JSON.stringify(out));
}
`;
}

const expected = {
  thread: 4,
  daemonThread: 9,
  process: 16,
  forkserverProcess: 25,
  threadPool: [1, 4, 9],
  spawnPool: [16, 25, 36],
  forkserverPool: [16, 25, 36],
  shared: { queue: ["process", "thread"], total: 2, ready: true },
};

function parseResults(outcome: Outcome): unknown {
  assertEquals(outcome.code, 0, `the consumer failed:\n${outcome.stderr}`);
  const line = outcome.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line);
}

/** The import map of deno.json, which `deno publish` applies to the published files. */
function importMap(): Record<string, string> {
  return JSON.parse(readFileSync(join(repo, "deno.json"), "utf8")).imports ?? {};
}

/**
 * `specifier` in `file` as `deno publish` writes it: an import-map name becomes its target, a
 * relative path for a local target; everything else stays.
 */
function publishedSpecifier(specifier: string, file: string, imports: Record<string, string>) {
  if (/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(specifier)) return specifier;
  const key = Object.hasOwn(imports, specifier)
    ? specifier
    : Object.keys(imports).filter((k) => k.endsWith("/") && specifier.startsWith(k))
      .sort((a, b) => b.length - a.length)[0];
  if (key === undefined) throw new Error(`'${specifier}' in ${file} is not in the import map`);
  const target = imports[key] + specifier.slice(key.length);
  if (!target.startsWith(".")) return target;
  const path = relative(dirname(join(repo, file)), resolve(repo, target)).replaceAll("\\", "/");
  return path.startsWith(".") ? path : `./${path}`;
}

/** The published files of the library (mod.ts and src/), specifiers rewritten, by URL path. */
function publishedFiles(): Map<string, string> {
  const imports = importMap();
  const files = new Map<string, string>();
  const add = (file: string) => {
    const rewrite = (_match: string, head: string, quote: string, specifier: string) =>
      `${head}${quote}${publishedSpecifier(specifier, file, imports)}${quote}`;
    // Statements at the start of a line, and dynamic imports outside comments; examples in
    // documentation comments stay as written, as `deno publish` leaves them.
    const text = readFileSync(join(repo, file), "utf8")
      .replace(/^((?:import|export)\b[^;]*?\bfrom\s*|import\s+)(["'])([^"'\n]+)\2/gm, rewrite)
      .replace(/^(?!\s*(?:\*|\/\/))(.*?\bimport\(\s*)(["'])([^"'\n]+)\2/gm, rewrite);
    files.set(`/${file}`, text);
  };
  add("mod.ts");
  for (const name of readdirSync(join(repo, "src"), { recursive: true }) as string[]) {
    if (/\.(ts|js|json)$/.test(name)) add(`src/${name.replaceAll("\\", "/")}`);
  }
  return files;
}

/** The folders where Deno caches what it downloaded from `origin` (`127.0.0.1_PORT1234`). */
function remoteCacheDirs(origin: string): string[] {
  const info = JSON.parse(execFileSync(Deno.execPath(), ["info", "--json"], { encoding: "utf8" }));
  return [info.modulesCache, info.typescriptCache]
    .filter((dir): dir is string => typeof dir === "string")
    .map((dir) => join(dir, "http", origin));
}

Deno.test({
  name: "the library imported by path from a project without a deno.json runs every class",
  ignore: !deno,
  async fn() {
    const dir = consumerDir();
    try {
      writeFileSync(
        join(dir, "main.ts"),
        consumerScript(pathToFileURL(join(repo, "mod.ts")).href),
      );
      const outcome = await runDeno(["--allow-read", "--allow-env", "--allow-run", "main.ts"], dir);
      assertEquals(parseResults(outcome), expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "the library imported over HTTP, as JSR serves it, runs every class",
  ignore: !deno,
  async fn() {
    const files = publishedFiles();
    const requested = new Set<string>();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => {
        const path = new URL(request.url).pathname;
        requested.add(path);
        const text = files.get(path);
        return text === undefined
          ? new Response("not found", { status: 404 })
          : new Response(text, { headers: { "content-type": "application/typescript" } });
      },
    );
    const host = `127.0.0.1:${server.addr.port}`;
    const dir = consumerDir();
    try {
      writeFileSync(join(dir, "main.ts"), consumerScript(`http://${host}/mod.ts`));
      const outcome = await runDeno(
        [`--allow-import=${host}`, "--allow-read", "--allow-env", "--allow-run", "main.ts"],
        dir,
      );
      assertEquals(parseResults(outcome), expected);
      // The children loaded the library from the server too, not from a file on disk.
      assert(requested.has("/src/_child_main.ts"), [...requested].join(", "));
    } finally {
      await server.shutdown();
      rmSync(dir, { recursive: true, force: true });
      for (const cache of remoteCacheDirs(`127.0.0.1_PORT${server.addr.port}`)) {
        rmSync(cache, { recursive: true, force: true });
      }
    }
  },
});

Deno.test({
  name: "Process and Pool without --allow-run throw an error that names the flag",
  ignore: !deno,
  async fn() {
    const dir = consumerDir();
    try {
      writeFileSync(
        join(dir, "main.ts"),
        `import { Pool, Process } from ${JSON.stringify(pathToFileURL(join(repo, "mod.ts")).href)};
export function square(n: number): number {
  return n * n;
}
for (const start of [() => new Process({ target: square }), () => new Pool()]) {
  try {
    start();
    console.log("started");
  } catch (error) {
    console.log(JSON.stringify({ name: (error as Error).name, message: (error as Error).message }));
  }
}
`,
      );
      const outcome = await runDeno(["--allow-read", "--allow-env", "main.ts"], dir);
      assertEquals(outcome.code, 0, outcome.stderr);
      const lines = outcome.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assertEquals(lines.length, 2);
      for (const { name, message } of lines) {
        assertEquals(name, "NotCapable");
        assertStringIncludes(message, "needs --allow-run");
        assertStringIncludes(message, "run deno with --allow-read --allow-env --allow-run");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("a relative 'module' string that is not found says what it was resolved against", () => {
  const error = assertThrows(
    () => new Thread({ target: () => 1, module: "./no_such_dir/lib.ts" }),
    TypeError,
  );
  assertStringIncludes(error.message, "'./no_such_dir/lib.ts'");
  assertStringIncludes(error.message, `working directory '${process.cwd()}'`);
  assertStringIncludes(error.message, 'new URL("./no_such_dir/lib.ts", import.meta.url)');
});

Deno.test({
  name: "deno task demo fetches no package that the demo does not use",
  ignore: !deno,
  fn() {
    // `deno task` first installs every npm package of the import map and of the lock file: the
    // dev tools (deno2node, fast-check, ...) must be in neither for a plain `deno task demo`.
    const config = JSON.parse(readFileSync(join(repo, "deno.json"), "utf8"));
    assertEquals(config.lock, false, "deno.json must not use a lock file by default");
    for (const [name, target] of Object.entries(config.imports ?? {})) {
      assert(!String(target).startsWith("npm:"), `the import map names an npm package: ${name}`);
    }
    assert(/^deno run (?!.*--lock)/.test(config.tasks.demo), config.tasks.demo);
    // What the demo loads: the command's module graph, followed along the imports that run
    // (not the type-only ones, which `deno run` leaves alone), and the npm packages it reaches.
    const graph = JSON.parse(
      execFileSync(Deno.execPath(), ["info", "--json", join(repo, "cli/main.ts")], {
        encoding: "utf8",
        cwd: repo,
      }),
    ) as {
      roots: string[];
      modules: { specifier: string; dependencies?: { code?: { specifier: string } }[] }[];
      redirects: Record<string, string>;
    };
    const modules = new Map(graph.modules.map((module) => [module.specifier, module]));
    const packages = new Set<string>();
    const seen = new Set<string>();
    const visit = (specifier: string) => {
      specifier = graph.redirects[specifier] ?? specifier;
      if (seen.has(specifier)) return;
      seen.add(specifier);
      const npm = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(specifier);
      if (npm) packages.add(npm[1]);
      for (const dependency of modules.get(specifier)?.dependencies ?? []) {
        if (dependency.code) visit(dependency.code.specifier);
      }
    };
    for (const root of graph.roots) visit(root);
    assertEquals([...packages], ["acorn"]);
  },
});
