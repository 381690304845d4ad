/**
 * Start methods and contexts, as in Python's `multiprocessing`: `spawn` (a fresh runtime per
 * process, the default) and `forkserver` (warm runtimes kept ready, with preloaded modules). There
 * is no `fork`: a JavaScript runtime cannot copy its heap into a new process.
 *
 * @module
 */
import { Process, type ProcessOptions } from "./process.ts";
import { Pool, type PoolOptions } from "./pool.ts";
import {
  checkStartMethod,
  chooseStartMethod,
  chosenStartMethod,
  defaultStartMethod,
  START_METHODS,
  type StartMethod,
} from "./_start_methods.ts";
import { setPreloadModules } from "./_forkserver.ts";
import { checkBoolean, checkOptions, describeValue } from "./_checks.ts";
import { toModuleUrl } from "./_target.ts";
import { Pipe } from "./pipe.ts";
import { activeChildren, currentProcess, parentProcess } from "./current_process.ts";
import { JoinableQueue, Queue, SimpleQueue } from "./queue.ts";
import { SharedArray, Value } from "./shared_value.ts";
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  Lock,
  RLock,
  Semaphore,
} from "./synchronize.ts";

export type { StartMethod } from "./_start_methods.ts";

/**
 * The start methods offered here, as Python's `get_all_start_methods()`. `fork` is not among them.
 *
 * @returns `["spawn", "forkserver"]`, the default first.
 * @throws Never.
 * @example
 * ```ts
 * import { getAllStartMethods } from "@multiproc/multiproc";
 *
 * console.log(getAllStartMethods()); // ["spawn", "forkserver"]
 * ```
 */
export function getAllStartMethods(): StartMethod[] {
  return [...START_METHODS];
}

/**
 * The start method that new processes use unless they or their context choose one.
 *
 * @returns The method set with {@linkcode setStartMethod}, or `"spawn"`.
 * @throws Never.
 * @example
 * ```ts
 * import { getStartMethod } from "@multiproc/multiproc";
 *
 * console.log(getStartMethod()); // "spawn" unless set otherwise
 * ```
 */
export function getStartMethod(): StartMethod {
  return defaultStartMethod();
}

/** Options for {@linkcode setStartMethod}. */
export interface SetStartMethodOptions {
  /** Change the start method even though one was already set. */
  force?: boolean;
}

/**
 * Sets the start method for the whole program, as Python's `set_start_method()`: once, unless
 * `force` is given.
 *
 * @param method `"spawn"` or `"forkserver"`.
 * @param options `force: true` to change a method that was already set.
 * @throws {TypeError} For `"fork"`, with the reason and the alternative, and for any name that is
 * not a start method, with the list of valid ones.
 * @throws {Error} When a method was already set and `force` is not given.
 * @example
 * ```ts
 * import { getStartMethod, setStartMethod } from "@multiproc/multiproc";
 *
 * setStartMethod("forkserver", { force: true });
 * console.log(getStartMethod()); // "forkserver"
 * setStartMethod("spawn", { force: true });
 * ```
 */
export function setStartMethod(method: StartMethod, options: SetStartMethodOptions = {}): void {
  const checked = checkStartMethod(method, "The start method");
  checkOptions(options, "setStartMethod()", ["force"], "pass { force: true }");
  const force = checkBoolean(options.force, "force", "setStartMethod()");
  const chosen = chosenStartMethod();
  if (chosen !== undefined && !force) {
    throw new Error(
      `The start method is already set to '${chosen}': pass { force: true } to change it to '${checked}'`,
    );
  }
  chooseStartMethod(checked);
}

/**
 * Sets the modules that forkserver children import before they are handed work, as Python's
 * `set_forkserver_preload()`. Import heavy modules here once, ahead of time, rather than in every
 * child on `start()`.
 *
 * @param modules Module URLs, or paths relative to the working directory.
 * @throws {TypeError} When `modules` is not an array of strings or URLs.
 * @example
 * ```ts
 * import { setForkserverPreload } from "@multiproc/multiproc";
 *
 * setForkserverPreload(["node:zlib"]);
 * setForkserverPreload([]);
 * ```
 */
export function setForkserverPreload(modules: Array<string | URL>): void {
  if (!Array.isArray(modules)) {
    throw new TypeError(
      `'modules' must be an array of module URLs or paths: received ${describeValue(modules)}`,
    );
  }
  const urls = modules.map((module, index) => {
    if (typeof module !== "string" && !(module instanceof URL)) {
      throw new TypeError(
        `'modules[${index}]' must be a module URL or path: received ${describeValue(module)}`,
      );
    }
    return typeof module === "string" && module.startsWith("node:") ? module : toModuleUrl(module);
  });
  setPreloadModules(urls);
}

/**
 * A start method's view of multiproc, as Python's context objects: its classes start processes
 * with that method, whatever the global setting is.
 *
 * @example Forkserver processes without changing the global start method
 * ```ts
 * import { getContext } from "@multiproc/multiproc";
 *
 * const ctx = getContext("forkserver");
 * const p = new ctx.Process({ target: () => 42 });
 * p.start();
 * await p.join();
 * console.log(ctx.startMethod, p.result); // "forkserver" 42
 * ```
 */
export class Context {
  /** The start method that this context's processes use. */
  readonly startMethod: StartMethod;
  /** {@linkcode Process}, starting with this context's method unless its options choose one. */
  readonly Process: typeof Process;
  /** {@linkcode Pool}, whose workers start with this context's method unless its options choose. */
  readonly Pool: typeof Pool;

  // Shared state and communication, as Python's contexts offer them. They work the same whatever
  // the start method: the classes are the library's own.
  /** {@linkcode Queue}. */
  readonly Queue: typeof Queue = Queue;
  /** {@linkcode SimpleQueue}. */
  readonly SimpleQueue: typeof SimpleQueue = SimpleQueue;
  /** {@linkcode JoinableQueue}. */
  readonly JoinableQueue: typeof JoinableQueue = JoinableQueue;
  /** {@linkcode Pipe}. */
  readonly Pipe: typeof Pipe = Pipe;
  /** {@linkcode Lock}. */
  readonly Lock: typeof Lock = Lock;
  /** {@linkcode RLock}. */
  readonly RLock: typeof RLock = RLock;
  /** {@linkcode Semaphore}. */
  readonly Semaphore: typeof Semaphore = Semaphore;
  /** {@linkcode BoundedSemaphore}. */
  readonly BoundedSemaphore: typeof BoundedSemaphore = BoundedSemaphore;
  /** {@linkcode Event}. */
  readonly Event: typeof Event = Event;
  /** {@linkcode Condition}. */
  readonly Condition: typeof Condition = Condition;
  /** {@linkcode Barrier}. */
  readonly Barrier: typeof Barrier = Barrier;
  /** {@linkcode Value}. */
  readonly Value: typeof Value = Value;
  /** {@linkcode SharedArray}, Python's `Array`. */
  readonly SharedArray: typeof SharedArray = SharedArray;
  /** {@linkcode currentProcess}, as Python's `ctx.current_process()`. */
  readonly currentProcess: typeof currentProcess = currentProcess;
  /** {@linkcode parentProcess}, as Python's `ctx.parent_process()`. */
  readonly parentProcess: typeof parentProcess = parentProcess;
  /** {@linkcode activeChildren}, as Python's `ctx.active_children()`. */
  readonly activeChildren: typeof activeChildren = activeChildren;

  /**
   * Creates a context; {@linkcode getContext} returns a shared one per method.
   *
   * @param method `"spawn"` or `"forkserver"`.
   * @throws {TypeError} For `"fork"` and for names that are not start methods.
   */
  constructor(method: StartMethod) {
    const startMethod = checkStartMethod(method, "The context's start method");
    this.startMethod = startMethod;
    this.Process = class ContextProcess<Args extends unknown[], Result>
      extends Process<Args, Result> {
      constructor(options: ProcessOptions<Args, Result>) {
        super(withStartMethod(options, startMethod));
      }
    };
    this.Pool = class ContextPool extends Pool {
      constructor(options?: PoolOptions) {
        super(withStartMethod(options ?? {}, startMethod));
      }
    };
  }
}

/** Adds a context's start method to options, leaving what is no options object to be refused. */
function withStartMethod<T extends { startMethod?: StartMethod }>(
  options: T,
  startMethod: StartMethod,
): T {
  return typeof options === "object" && options !== null && !Array.isArray(options)
    ? { startMethod, ...options }
    : options;
}

const contexts = new Map<StartMethod, Context>();

/**
 * The context of a start method, as Python's `get_context()`.
 *
 * @param method `"spawn"` or `"forkserver"`; the method in force when omitted.
 * @returns The shared context of that method.
 * @throws {TypeError} For `"fork"`, with the reason and the alternative, and for names that are
 * not start methods, with the list of valid ones.
 * @example
 * ```ts
 * import { getContext } from "@multiproc/multiproc";
 *
 * console.log(getContext("spawn").startMethod); // "spawn"
 * ```
 */
export function getContext(method?: StartMethod): Context {
  const checked = method === undefined
    ? defaultStartMethod()
    : checkStartMethod(method, "The context's start method");
  let context = contexts.get(checked);
  if (!context) contexts.set(checked, context = new Context(checked));
  return context;
}
