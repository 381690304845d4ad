/**
 * The runtime seam, parent side, for Node. Its sibling `_platform.deno.ts` has identical exports;
 * the npm build swaps one for the other, so nothing else in the library branches on the runtime.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CHILD_PROCESS_FLAG } from "./_protocol.ts";
import type { ChildHandle, ChildListeners } from "./_channel.ts";
import { startNodeWorker } from "./_node_worker.ts";
import {
  type ChildCommand,
  type ChildCommandOptions,
  type PermissionName,
  resolveGrants,
} from "./_permissions.ts";
import type { ChildPermissions, PermissionsOption } from "./permissions.ts";
import { parentMainModule } from "./_process_context.ts";

/** URL of the script that the user ran, which children re-import to find exported targets. */
export function mainModuleUrl(): string | undefined {
  const script = process.argv[1];
  if (!script) return undefined;
  try {
    return pathToFileURL(realpathSync(script)).href;
  } catch {
    return pathToFileURL(script).href;
  }
}

/** The number of logical CPUs, at least 1. */
export function availableCpus(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

const childEntry = new URL("./_child_main.js", import.meta.url);
const relayEntry = new URL("./_relay_main.js", import.meta.url);

/**
 * The modules that a child imports: its entry, and the program's main module, which a child passes
 * on to its own children (its own main module is the entry).
 */
function childModules(): Array<string | undefined> {
  return [childEntry.href, parentMainModule() ?? mainModuleUrl()];
}

// Bun runs this build too. It has no permission model and no heap limit (JavaScriptCore takes
// neither flag), so both options are refused there rather than silently ignored.
const bun = (process.versions as Record<string, string | undefined>).bun !== undefined;

/** Whether worker threads take a heap limit: Node's do, through `resourceLimits`; Bun's do not. */
export const threadHeapLimits = !bun;

// Flags that belong to the parent's own run and would change what a child does.
const parentOnlyFlags =
  /^--(test|inspect|debug|eval|print|input-type|watch|prof|cpu-prof|heap-prof)|^-[ep]$/;

// The flags of Node's permission model. A child with permissions of its own gets only those: it
// never starts from the parent's.
const permissionModelFlags =
  /^--(experimental-permission|permission|allow-fs-read|allow-fs-write|allow-child-process|allow-worker|allow-addons|allow-wasi)(=|$)/;

// Flags whose value may come as the next word.
const flagsWithValue = /^(-[ep]|--(eval|print|input-type|allow-fs-read|allow-fs-write))$/;

/**
 * The command line that starts a child process running the child entry, with the parent's Node
 * flags (loaders such as `--import tsx` included) so that the child can import the same modules.
 * Permissions other than `"inherit"` use Node's permission model, which enforces file system
 * reads and writes and child processes only; each grant is checked against what the parent holds.
 *
 * @throws {TypeError} When `permissions` asks for more than the parent holds, or for what Node 20
 * cannot grant selectively; on Bun, for any `permissions` but `"inherit"` and for `maxHeapMb`.
 */
export function childProcessCommand(
  options: ChildCommandOptions = {},
  what = "Process",
  channelPath?: string,
): ChildCommand {
  const own = options.permissions !== undefined && options.permissions !== "inherit";
  const execArgv = inheritedFlags(own);
  refuseOnBun(options, what);
  if (own) {
    execArgv.push(...permissionFlags(options.permissions as "none" | ChildPermissions, what));
  }
  if (options.maxHeapMb !== undefined) execArgv.push(`--max-old-space-size=${options.maxHeapMb}`);
  return {
    command: process.execPath,
    args: [
      ...execArgv,
      fileURLToPath(childEntry),
      CHILD_PROCESS_FLAG,
      String(process.pid),
      ...(channelPath === undefined ? [] : [channelPath]),
    ],
    // Node gives a child exactly the environment that it is given.
    ...(options.env === undefined ? {} : { env: { ...options.env } }),
  };
}

/** The parent's Node flags that a child takes, less the permission model's where `own`. */
function inheritedFlags(own: boolean): string[] {
  const flags: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const flag = process.execArgv[i];
    if (parentOnlyFlags.test(flag) || (own && permissionModelFlags.test(flag))) {
      // A flag such as `-e code` takes the next word as its value.
      if (flagsWithValue.test(flag)) i++;
      continue;
    }
    flags.push(flag);
  }
  return flags;
}

/**
 * The command line of a channel relay (`_relay_main.ts`) that makes `folder` and listens at the
 * `sockets` in it. It runs only the library's own code, outside Node's permission model, which
 * would refuse it the folder (and does not cover sockets).
 */
export function relayProcessCommand(folder: string, _sockets: readonly string[]): ChildCommand {
  return {
    command: process.execPath,
    args: [...inheritedFlags(true), fileURLToPath(relayEntry), folder],
  };
}

/**
 * Checks, when a Process or Pool is made, that its children can start as asked: every grant is
 * one that Node can give and that the parent holds.
 *
 * @throws {TypeError} When a grant asks for more than the parent holds, or for what Node 20 cannot
 * grant selectively; on Bun, for any `permissions` but `"inherit"` and for `maxHeapMb`.
 */
export function checkChildCommand(options: ChildCommandOptions, what: string): void {
  refuseOnBun(options, what);
  if (options.permissions !== undefined && options.permissions !== "inherit") {
    permissionFlags(options.permissions, what);
  }
}

/** Refuses, on Bun, the options that it cannot enforce, rather than ignoring them. */
function refuseOnBun(options: ChildCommandOptions, what: string): void {
  if (!bun) return;
  if (options.permissions !== undefined && options.permissions !== "inherit") {
    throw new TypeError(
      `${what} 'permissions' are not supported on Bun, which has no permission model: pass "inherit", or run on Deno or Node (received ${
        JSON.stringify(options.permissions)
      })`,
    );
  }
  if (options.maxHeapMb !== undefined) {
    throw new TypeError(
      `${what} 'maxHeapMb' is not supported on Bun, whose engine takes no heap limit: leave it out, or run on Deno or Node (received ${options.maxHeapMb})`,
    );
  }
}

interface NodePermission {
  has(scope: string, reference?: string): boolean;
}

/**
 * Whether this process holds a permission. Without Node's permission model it holds everything;
 * with it, reads, writes and child processes are asked for, and the kinds that Node cannot restrict
 * are held by every process.
 */
function holdsPermission(name: PermissionName, item?: string): boolean {
  const model = (process as unknown as { permission?: NodePermission }).permission;
  if (model === undefined) return true;
  // A scope asked without a path answers for any path: the root stands for "everything".
  if (name === "read") return model.has("fs.read", item ?? "/");
  if (name === "write") return model.has("fs.write", item ?? "/");
  if (name === "run") return model.has("child");
  return true;
}

function permissionFlags(permissions: "none" | ChildPermissions, what: string): string[] {
  if (permissions !== "none" && Array.isArray(permissions.run) && permissions.run.length > 0) {
    throw new TypeError(
      `${what} 'permissions.run' cannot list commands on Node 20: received ${
        JSON.stringify(permissions.run)
      }; pass true to allow child processes, or false`,
    );
  }
  const grants = resolveGrants(permissions, what, holdsPermission, childModules());
  if (grants === "all") return [];
  const flags = ["--experimental-permission", "--disable-warning=ExperimentalWarning"];
  // Node 20 takes one path per flag, and aborts on a path given twice: the grants list each once.
  const read = grants.get("read");
  if (read === true) flags.push("--allow-fs-read=*");
  else for (const path of read ?? []) flags.push(`--allow-fs-read=${path}`);
  const write = grants.get("write");
  if (write === true) flags.push("--allow-fs-write=*");
  else for (const path of write ?? []) flags.push(`--allow-fs-write=${path}`);
  if (grants.get("run") === true) flags.push("--allow-child-process");
  return flags;
}

/**
 * Permissions for one worker thread, as the runtime's workers take them: a grant per kind.
 */
export type WorkerPermissions = Record<string, boolean | string[]>;

/**
 * Turns a thread's `permissions` option into what a worker takes. Node's permission model covers
 * a whole process: its workers hold exactly what the process holds, so only `"inherit"` is valid.
 *
 * @returns Undefined for `"inherit"`: the worker holds what the parent holds.
 * @throws {TypeError} For any other value.
 */
export function threadPermissions(
  value: PermissionsOption | undefined,
  what: string,
): WorkerPermissions | undefined {
  if (value === undefined || value === "inherit") return undefined;
  throw new TypeError(
    `${what} 'permissions' are not supported on Node: its permission model covers a whole process, not one worker thread; run the target in a Process with 'permissions' (received ${
      JSON.stringify(value)
    })`,
  );
}

/** Starts a worker thread running the child entry, with the loaders that this process runs with. */
export function startThread(
  options: { daemon: boolean; name: string; maxHeapMb?: number; permissions?: WorkerPermissions },
  listeners: ChildListeners,
): ChildHandle {
  return startNodeWorker(childEntry, { ...options, preloads: workerPreloads() }, listeners);
}

let preloadsCache: string[] | undefined;

/**
 * What a worker must import first to load what this process loads. A child process gets the
 * parent's flags (see {@linkcode childProcessCommand}); a worker thread inherits them too, but
 * Node 20 applies an `--import`ed loader's hooks to the main thread only. tsx registers its hooks
 * only there, so a worker registers them itself through tsx's API. Node's own type stripping
 * (Node 22.6 and later) covers workers as it is.
 */
function workerPreloads(): string[] {
  if (preloadsCache) return preloadsCache;
  preloadsCache = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const loader = args[i] === "--import"
      ? args[++i]
      : args[i].startsWith("--import=")
      ? args[i].slice("--import=".length)
      : undefined;
    const api = loader === undefined ? undefined : tsxRegisterApi(loader);
    if (api) {
      const source = `import { register } from ${JSON.stringify(api)}; register();`;
      preloadsCache.push(`data:text/javascript,${encodeURIComponent(source)}`);
    }
  }
  return preloadsCache;
}

/**
 * The URL of tsx's `tsx/esm/api` when `loader` (an `--import` value: a URL, a path or a package
 * name) is tsx; undefined for any other loader.
 */
function tsxRegisterApi(loader: string): string | undefined {
  try {
    let packageJson: string | undefined;
    if (loader === "tsx" || loader.startsWith("tsx/")) {
      packageJson = createRequire(join(process.cwd(), "noop.js")).resolve("tsx/package.json");
    } else {
      const file = loader.startsWith("file:") ? fileURLToPath(loader) : resolve(loader);
      for (let dir = dirname(file); dirname(dir) !== dir; dir = dirname(dir)) {
        if (existsSync(join(dir, "package.json"))) {
          packageJson = join(dir, "package.json");
          break;
        }
      }
    }
    if (packageJson === undefined) return undefined;
    const manifest = JSON.parse(readFileSync(packageJson, "utf8"));
    const api = manifest.name === "tsx" ? manifest.exports?.["./esm/api"]?.import : undefined;
    const path = typeof api === "string" ? api : api?.default;
    if (typeof path !== "string") return undefined;
    return pathToFileURL(join(dirname(packageJson), path)).href;
  } catch {
    // Not a loader that can be found from here: the worker goes without it, as before.
    return undefined;
  }
}

/** Whether this process may start the program at `path`, and it exists. */
export function mayRunProgram(path: string): boolean {
  if (!holdsPermission("run")) return false;
  try {
    return existsSync(path);
  } catch {
    // Looking needs a read grant; without it the program is not used.
    return false;
  }
}

/**
 * Whether this process may make a folder in `folder` and listen on a Unix socket at `path` in it:
 * under Node's permission model, it needs read and write access to the folder; Node's model does
 * not cover sockets.
 */
export function mayListenAt(path: string, folder: string): boolean {
  return holdsPermission("read", folder) && holdsPermission("write", folder) &&
    holdsPermission("read", path) && holdsPermission("write", path);
}

/** Runs `hook` once when the parent process exits, normally or through `process.exit()`. */
export function onParentExit(hook: () => void): void {
  process.once("exit", hook);
}

/** Lets a timer fire without keeping the process alive for it. */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  (timer as unknown as { unref(): void }).unref();
}
