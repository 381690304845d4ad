/**
 * The one mechanism behind every shared object (locks, queues, values, pipes): how an object is
 * made, how it crosses to a thread or process, how it comes back to life there, and how each of
 * its operations runs, here on shared memory or in the parent through the broker.
 *
 * Rules this file keeps:
 * - A kind of object is declared once, as a {@linkcode SharedKind}: its settings, what a thread
 *   receives to share its memory, and a table of typed operations. A new primitive is a new kind;
 *   a new operation is one entry of its table, and callers get its types.
 * - A public class holds a {@linkcode Shared} handle and calls `handle.call("op", ...)`: the handle
 *   runs the operation on this realm's memory, or sends it to the broker when the memory is in
 *   another process. Classes do not branch on where the memory is.
 * - Objects revived in a child are made without their constructor (`Object.create`), so that
 *   constructors take only their public arguments.
 * - A child may pass on what it received: to a thread as shared memory when it has the memory,
 *   and otherwise through its own broker, which relays to its parent's.
 *
 * @module
 */
import { currentOwnerId } from "./_atomics.ts";
import { checkBoolean, checkOptions, checkTimeoutMs, describeValue } from "./_checks.ts";
import { type BrokerClient, type Caller, type Performer, registerBrokered } from "./_broker.ts";
import {
  type Descriptor,
  type Destination,
  encodeOne,
  newObjectId,
  registerReviver,
  rememberInstance,
  type Revivable,
  type ReviveContext,
  reviveOnce,
  toDescriptor,
} from "./_revive.ts";

export type { Caller } from "./_broker.ts";

// deno-lint-ignore no-explicit-any
type Op<S> = (state: S, caller: Caller, ...args: any[]) => unknown;

/** The operations of a kind of object: each takes the state, the caller and its own arguments. */
export type Ops<S> = Record<string, Op<S>>;

/** The arguments of an operation, after the state and the caller. */
// deno-lint-ignore no-explicit-any
export type OpArgs<F> = F extends (state: any, caller: Caller, ...args: infer A) => unknown ? A
  : never;

/** What an operation resolves to. */
// deno-lint-ignore no-explicit-any
export type OpResult<F> = F extends (...args: any[]) => infer R ? Awaited<R> : never;

/**
 * A kind of shared object.
 *
 * @typeParam S The state in shared memory.
 * @typeParam C The settings, fixed at creation; they cross with the object, and may hold other
 *   shared objects (a Condition's lock).
 * @typeParam O The operations.
 */
export interface SharedKind<S, C extends object, O extends Ops<S>> {
  /** The name of the descriptor, which picks the reviver: `"lock"`. */
  kind: string;
  /** The public class, whose prototype revived objects get. */
  type: { prototype: object };
  /** What a thread receives to share the memory: its buffers. */
  share(state: S): unknown;
  /** Rebuilds the state over the buffers that a thread received. */
  attach(shared: unknown, config: C): S;
  /** The operations, which children in other processes reach through the broker. */
  ops: O;
  /**
   * The state that a child process sees between its calls (whether a lock is held, a queue's
   * size): a primitive, sent with the descriptor and with each reply when it changed, so that
   * what a child learns through any call of the broker is at least as new as that call.
   */
  watch?(state: S): unknown;
  /**
   * What a child process does around an operation that goes through the broker (count its holds,
   * fetch a Value's data after the lock is taken): each wrapper gets the handle, the send, and
   * the arguments, and returns what the send returns.
   */
  client?: { [K in keyof O]?: ClientWrapper<S, C, O> };
  /** Called for each object revived in a child process, to set up what it keeps there. */
  revivedRemote?(handle: Shared<S, C, O>, seed: unknown): void;
  /** What a child process receives besides the settings, to start from (a Value's bytes). */
  seed?(state: S): unknown;
  /**
   * True for an object made only of other shared objects (a pipe's end): it crosses as its
   * settings alone, to threads and processes alike, and has no operations of its own.
   */
  plain?: boolean;
  /** Called each time the object is sent to a child, with the child's owner id. */
  sent?(handle: Shared<S, C, O>, ownerId: number): void;
}

/** A wrapper of one operation in a child process (see `SharedKind.client`). */
export type ClientWrapper<S, C extends object, O extends Ops<S>> = (
  handle: Shared<S, C, O>,
  send: () => unknown,
  args: unknown[],
) => unknown;

const HANDLE = Symbol("multiproc.shared");

// The caller of operations run here: one object per owner id, made again only when it changes,
// since locks and queues run an operation per call.
let here: Caller = { owner: 0 };

function callerHere(): Caller {
  const owner = currentOwnerId();
  if (here.owner !== owner) here = { owner };
  return here;
}

/**
 * The handle of one shared object in this realm: its id and settings, and either its state in
 * shared memory or the broker client that reaches it.
 */
export class Shared<S, C extends object, O extends Ops<S>> {
  /** The id under which the object is known in every realm. */
  readonly id: string;
  /** The kind. */
  readonly kind: SharedKind<S, C, O>;
  /** The settings. */
  readonly config: C;
  /** The state, when this realm shares the memory. */
  readonly local: S | undefined;
  /** The broker client, when the memory is in another process. */
  readonly remote: BrokerClient | undefined;
  /**
   * What this realm keeps of its own for the object: a child's copy of a Value's bytes, a child's
   * count of its holds of a lock, the children that hold a pipe's end.
   */
  mirror: unknown;

  private constructor(
    kind: SharedKind<S, C, O>,
    id: string,
    config: C,
    local: S | undefined,
    remote: BrokerClient | undefined,
  ) {
    this.kind = kind;
    this.id = id;
    this.config = config;
    this.local = local;
    this.remote = remote;
  }

  /**
   * Makes a new object of `kind` and binds it to `object`, the public instance being constructed.
   */
  static create<S, C extends object, O extends Ops<S>>(
    object: object,
    kind: SharedKind<S, C, O>,
    config: C,
    state: S,
  ): Shared<S, C, O> {
    return bind(object, new Shared(kind, newObjectId(), config, state, undefined));
  }

  /**
   * Registers how objects of `kind` come back to life in a child, and gives its class the
   * crossing to children: each instance is written by its handle.
   */
  static define<S, C extends object, O extends Ops<S>>(kind: SharedKind<S, C, O>): void {
    Object.defineProperty(kind.type.prototype, toDescriptor, {
      configurable: true,
      value(this: object, destination: Destination, ownerId: number): Descriptor {
        return handleOf<Shared<S, C, O>>(this).describe(destination, ownerId);
      },
    });
    registerReviver(kind.kind, (data, context) => {
      const wire = data as Wire;
      return reviveOnce(wire.id, () => {
        const config = reviveConfig(wire.config, context) as C;
        const local = wire.shared === undefined ? undefined : kind.attach(wire.shared, config);
        const remote = local === undefined ? context.client() : undefined;
        const handle = new Shared(kind, wire.id, config, local, remote);
        const object = Object.create(kind.type.prototype);
        bind(object, handle);
        if (remote) {
          if (kind.watch) remote.seed(wire.id, wire.watched);
          kind.revivedRemote?.(handle, wire.seed);
        }
        return object;
      });
    });
  }

  /**
   * Performs `op`: on this realm's memory, or in the parent through the broker.
   *
   * @returns A promise of its outcome; a synchronous error becomes a rejection.
   */
  call<K extends keyof O & string>(op: K, ...args: OpArgs<O[K]>): Promise<OpResult<O[K]>> {
    const remote = this.remote;
    if (remote) {
      const send = () => remote.call(this.id, op, args);
      const wrapper = this.kind.client?.[op];
      try {
        return (wrapper ? wrapper(this, send, args) : send()) as Promise<OpResult<O[K]>>;
      } catch (error) {
        return Promise.reject(error);
      }
    }
    try {
      return Promise.resolve(
        this.kind.ops[op](this.local!, callerHere(), ...args) as OpResult<O[K]>,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Like {@linkcode Shared.prototype.call}, with the arguments made by `args`, whose checks
   * become a rejection too.
   */
  callWith<K extends keyof O & string>(
    op: K,
    args: () => OpArgs<O[K]>,
  ): Promise<OpResult<O[K]>> {
    try {
      return this.call(op, ...args());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Performs `op` without waiting for its outcome. Here it runs at once, throws at once and
   * returns the outcome; through the broker, it returns undefined, and a failure is thrown by the
   * object's next call.
   */
  cast<K extends keyof O & string>(op: K, ...args: OpArgs<O[K]>): OpResult<O[K]> | undefined {
    const remote = this.remote;
    if (remote) {
      const send = () => remote.cast(this.id, op, args);
      const wrapper = this.kind.client?.[op];
      if (wrapper) wrapper(this, send, args);
      else send();
      return undefined;
    }
    return this.kind.ops[op](this.local!, callerHere(), ...args) as OpResult<O[K]>;
  }

  /**
   * The state in this realm's memory, for what only works there (the sync forms, which block
   * the thread).
   *
   * @throws {Error} For an object whose memory is in another process.
   */
  here(what: string): S {
    if (this.local === undefined) {
      throw new Error(
        `${what} works only where the object's memory is shared: this one is in another process; use the async form with await`,
      );
    }
    return this.local;
  }

  /** The watched state (see `SharedKind.watch`): from memory, or as the broker last told. */
  watched(): unknown {
    if (this.local !== undefined) return this.kind.watch?.(this.local);
    return this.remote!.state(this.id);
  }

  /** Writes the descriptor that takes the object to a child. */
  describe(destination: Destination, ownerId: number): Descriptor {
    const config = encodeConfig(this.config, destination, ownerId);
    const { kind, local, id } = this;
    kind.sent?.(this, ownerId);
    if (local !== undefined && (destination === "thread" || kind.plain)) {
      return { kind: kind.kind, data: { id, config, shared: kind.share(local) } satisfies Wire };
    }
    registerBrokered(id, this.#performer(), ownerId);
    const wire: Wire = { id, config, watched: this.watched() };
    if (kind.seed && local !== undefined) wire.seed = kind.seed(local);
    else if (this.remote) wire.seed = (this.mirror as { seed?(): unknown } | undefined)?.seed?.();
    return { kind: kind.kind, data: wire };
  }

  #performer(): Performer {
    const { kind, local, remote, id } = this;
    if (remote) {
      // A relay: this realm's children reach the object through this realm's own parent.
      return {
        perform: (op, args, caller) => remote.call(id, checkOp(kind, op), args, caller.owner),
        watch: kind.watch ? () => remote.state(id) : undefined,
      };
    }
    const state = local!;
    return {
      perform: (op, args, caller) => kind.ops[checkOp(kind, op)](state, caller, ...args),
      watch: kind.watch ? () => kind.watch!(state) : undefined,
    };
  }
}

function checkOp(kind: { kind: string; ops: object }, op: string): string {
  if (!Object.hasOwn(kind.ops, op)) {
    throw new TypeError(`Unknown operation '${op}' of a shared ${kind.kind}`);
  }
  return op;
}

/** What crosses for one object. */
interface Wire {
  id: string;
  config: unknown;
  /** For a thread that shares the memory: its buffers. */
  shared?: unknown;
  /** For a child that goes through the broker: the watched state now. */
  watched?: unknown;
  /** For a child that goes through the broker: what it starts from. */
  seed?: unknown;
}

function bind<T>(object: object, handle: T): T {
  Object.defineProperty(object, HANDLE, { value: handle });
  rememberInstance((handle as { id: string }).id, object);
  return handle;
}

/**
 * The handle of a shared object.
 *
 * @throws {TypeError} When `object` is not one of this library's shared objects.
 */
export function handleOf<H>(object: object): H {
  const handle = (object as Record<symbol, H | undefined>)[HANDLE];
  if (handle === undefined) throw new TypeError("Expected a shared object of multiproc");
  return handle;
}

/** The handle of `object`, or undefined when it has none. */
export function maybeHandleOf<H>(object: unknown): H | undefined {
  return typeof object === "object" && object !== null
    ? (object as Record<symbol, H | undefined>)[HANDLE]
    : undefined;
}

function isRevivable(value: unknown): value is Revivable {
  return typeof value === "object" && value !== null && toDescriptor in value;
}

function encodeConfig(config: object, destination: Destination, ownerId: number): unknown {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    out[key] = isRevivable(value) ? encodeOne(value, { destination, ownerId }) : value;
  }
  return out;
}

function reviveConfig(config: unknown, context: ReviveContext): object {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config as object)) out[key] = context.revive(value);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The arguments of waits, as every shared object takes them

/** A bare number where an options object goes: Python's seconds, or a misread call. */
function refuseNumber(what: string, value: unknown, keys: string): never {
  throw new TypeError(
    `${what} takes an options object { ${keys} }: received ${
      describeValue(value)
    }; pass { timeoutMs: ${describeValue(value)} } to wait up to that many milliseconds`,
  );
}

/**
 * The timeout of an acquire, put or get: `false` (Python's `blocking=False`) or `{ blocking: false }` for
 * none, `true` or nothing for no limit.
 */
export function blockingTimeout(
  options: { blocking?: boolean; timeoutMs?: number } | boolean | undefined,
  what: string,
): number {
  if (options === undefined) return Infinity;
  if (typeof options === "boolean") return options ? Infinity : 0;
  if (typeof options === "number") refuseNumber(what, options, "blocking, timeoutMs");
  const { blocking, timeoutMs } = checkOptions(options, what, ["blocking", "timeoutMs"]);
  checkBoolean(blocking, "blocking", what);
  checkTimeoutMs(timeoutMs, what);
  if (blocking === false) {
    if (timeoutMs !== undefined) {
      throw new TypeError(
        `${what} cannot take 'timeoutMs' with 'blocking: false', as in Python: pass one of them`,
      );
    }
    return 0;
  }
  return timeoutMs ?? Infinity;
}

/** The timeout of a wait. */
export function waitTimeout(
  options: { timeoutMs?: number } | undefined,
  what: string,
  fallback: number = Infinity,
): number {
  if (options === undefined) return fallback;
  if (typeof options === "number") refuseNumber(what, options, "timeoutMs");
  const { timeoutMs } = checkOptions(options, what, ["timeoutMs"]);
  return checkTimeoutMs(timeoutMs, what) ?? fallback;
}

/** Runs `body`, turning a synchronous throw into a rejection, as an async method would. */
export function rejecting<T>(body: () => Promise<T>): Promise<T> {
  try {
    return body();
  } catch (error) {
    return Promise.reject(error);
  }
}
