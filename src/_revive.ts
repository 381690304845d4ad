/**
 * How queues, locks and shared values cross to a worker thread or child process and come back to
 * life there as the same object.
 *
 * Structured clone would flatten these class instances into empty objects. So, before the
 * arguments of a task are sent, {@linkcode encodeArgs} swaps each of them for a descriptor that
 * its class writes for the destination: for a thread, the SharedArrayBuffers that hold its state;
 * for a process, the id under which the parent's broker keeps it. In the child,
 * {@linkcode decodeArgs} turns each descriptor back into an object of the same class.
 *
 * Objects are found at the top level of the arguments and one level inside plain arrays and plain
 * objects (`args: [queue]`, `args: [[lockA, lockB]]`, `args: [{ lock, total }]`). Deeper ones, and
 * ones inside Maps, Sets or class instances, are not found.
 *
 * @module
 */
import { adoptOwner, ownerCounter, setWorkerThread } from "./_atomics.ts";
import { type BrokerClient, brokerClient } from "./_broker.ts";
import type { ParentLink } from "./_channel.ts";

/** Where an object is being sent. */
export type Destination = "thread" | "process";

/** What an object's class writes to send it: its kind, and data that structured clone accepts. */
export interface Descriptor {
  kind: string;
  data: unknown;
}

/** The method that makes an object revivable in a child. */
export const toDescriptor: unique symbol = Symbol.for("multiproc.toDescriptor");

/** An object that can be passed as an argument to a child and be the same object there. */
export interface Revivable {
  /** Writes the descriptor; for a process, the object registers with the broker for `ownerId`. */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor;
}

// The key that marks a descriptor among the arguments; a string, as structured clone drops symbols.
const MARK = "__multiprocShared__";

interface Encoded {
  [MARK]: string;
  data: unknown;
  owner: number;
  counter?: Int32Array;
}

/** Options for {@linkcode encodeArgs}. */
export interface EncodeOptions {
  /** Whether the child is a worker thread or a child process. */
  destination: Destination;
  /** The owner id of the child, recorded in the locks that it takes (see `allocateOwnerId`). */
  ownerId: number;
}

function isRevivable(value: object): value is Revivable {
  return toDescriptor in value;
}

/**
 * Replaces the revivable objects among `args` by their descriptors for `options.destination`.
 *
 * @returns `args` itself when it holds nothing revivable (the common case, for which only a
 * `typeof` per argument is paid), or a copy with the objects replaced.
 * @throws {TypeError} When an object cannot go to that destination.
 */
export function encodeArgs(args: readonly unknown[], options: EncodeOptions): unknown[] {
  return replaceObjects(args, (value) => encodeValue(value, options, true));
}

/** `items` with each object in it replaced by `replace(object)`; `items` itself when none was. */
function replaceObjects(
  items: readonly unknown[],
  replace: (value: object) => unknown,
): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const value = items[i];
    if (typeof value !== "object" || value === null) continue;
    const replaced = replace(value);
    if (replaced !== value) (out ??= [...items])[i] = replaced;
  }
  return out ?? (items as unknown[]);
}

function encodeValue(value: object, options: EncodeOptions, descend: boolean): unknown {
  if (isRevivable(value)) return encodeOne(value, options);
  if (!descend) return value;
  if (Array.isArray(value)) {
    return replaceObjects(value, (item) => encodeValue(item, options, false));
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item !== "object" || item === null) continue;
    const encoded = encodeValue(item, options, false);
    if (encoded !== item) (out ??= { ...value })[key] = encoded;
  }
  return out ?? value;
}

/** Encodes one revivable object; its class calls this for the objects that it holds. */
export function encodeOne(value: Revivable, options: EncodeOptions): Encoded {
  const { kind, data } = value[toDescriptor](options.destination, options.ownerId);
  return {
    [MARK]: kind,
    data,
    owner: options.ownerId,
    counter: options.destination === "thread" ? ownerCounter() : undefined,
  };
}

function isEncoded(value: unknown): value is Encoded {
  return typeof value === "object" && value !== null && MARK in value;
}

// ---------------------------------------------------------------------------------------------
// The child side

/** What a reviver is given besides the descriptor's data. */
export interface ReviveContext {
  /** Whether this child is a worker thread or a child process. */
  where: Destination;
  /** The client of the parent's broker, for objects whose memory stays in the parent. */
  client(): BrokerClient;
  /** Revives a descriptor nested in `data` (a Value's lock, for one). */
  revive(encoded: unknown): unknown;
}

/** Turns a descriptor's data back into an object. */
export type Reviver = (data: unknown, context: ReviveContext) => unknown;

const revivers = new Map<string, Reviver>();

/** Registers how objects of `kind` come back to life; each class module does it on load. */
export function registerReviver(kind: string, reviver: Reviver): void {
  revivers.set(kind, reviver);
}

let linkSeen: ParentLink | undefined;

/**
 * Brings the objects among `args` back to life in this child, the inverse of
 * {@linkcode encodeArgs}. Call it for every task, before the target runs.
 *
 * @param loadClasses Imports the modules of the shared classes, which register their revivers.
 * The child entry passes it: this module sits below those classes and does not import them.
 * @returns `args` itself when it holds no descriptor; otherwise (a promise of) a copy.
 */
export function decodeArgs(
  args: unknown[],
  link: ParentLink,
  loadClasses: () => Promise<unknown>,
): unknown[] | Promise<unknown[]> {
  if (linkSeen !== link) {
    linkSeen = link;
    setWorkerThread(link.kind === "thread");
  }
  let found = false;
  for (const value of args) {
    if (typeof value === "object" && value !== null && containsEncoded(value)) {
      found = true;
      break;
    }
  }
  if (!found) return args;
  return loadClasses().then(() => args.map((value) => decodeValue(value, link, true)));
}

function containsEncoded(value: object): boolean {
  if (isEncoded(value)) return true;
  if (Array.isArray(value)) return value.some(isEncoded);
  // Only plain objects hold encoded ones, as encodeValue() makes them; Object.values() of a typed
  // array would copy every element first (seconds for 100 MB).
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).some(isEncoded);
}

function decodeValue(value: unknown, link: ParentLink, descend: boolean): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (isEncoded(value)) return reviveEncoded(value, link);
  if (!descend) return value;
  if (Array.isArray(value)) return value.map((item) => decodeValue(item, link, false));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = decodeValue(item, link, false);
  return out;
}

function reviveEncoded(encoded: Encoded, link: ParentLink): unknown {
  adoptOwner(encoded.owner, encoded.counter, link.kind === "thread");
  const reviver = revivers.get(encoded[MARK]);
  if (!reviver) throw new TypeError(`Unknown kind of shared object: '${encoded[MARK]}'`);
  const context: ReviveContext = {
    where: link.kind,
    client: () => brokerClient(link),
    revive: (inner) => isEncoded(inner) ? reviveEncoded(inner, link) : inner,
  };
  return reviver(encoded.data, context);
}

// The same object, passed in several tasks, comes back as the same instance.
const revived = new Map<string, WeakRef<object>>();
// Entries go once their object has been collected, so that a long-lived worker does not pile up ids.
const forgetRevived = new FinalizationRegistry<string>((id) => {
  if (revived.get(id)?.deref() === undefined) revived.delete(id);
});

/**
 * Returns the live instance with `id` in this realm, or makes one with `make`: an object passed
 * twice (or held by two others) is one object in the child.
 */
export function reviveOnce<T extends object>(id: string, make: () => T): T {
  const existing = revived.get(id)?.deref();
  if (existing) return existing as T;
  const made = make();
  rememberInstance(id, made);
  return made;
}

/** Registers an object made in this realm under `id`, so that it revives as itself here. */
export function rememberInstance(id: string, object: object): void {
  revived.set(id, new WeakRef(object));
  forgetRevived.register(object, id);
}

let idCounter = 0;
const realmTag = Math.random().toString(36).slice(2, 10);

/** A new id for a shared object, unique across the program. */
export function newObjectId(): string {
  return `${realmTag}-${++idCounter}`;
}

/**
 * Runs the hooks that objects revived in a child process registered for the end of a task, such
 * as a SharedArray writing its changes back to the parent. Call it after the target returns.
 */
export async function settleTask(): Promise<void> {
  if (taskEndHooks.size === 0) return;
  const hooks: Array<() => unknown> = [];
  for (const ref of taskEndHooks) {
    const hook = ref.deref();
    if (hook) hooks.push(hook);
    else taskEndHooks.delete(ref);
  }
  await Promise.all(hooks.map((hook) => hook()));
}

const taskEndHooks = new Set<WeakRef<() => unknown>>();

/** Registers `hook` to run at the end of each task in this child (see {@linkcode settleTask}). */
export function onTaskEnd(hook: () => unknown): void {
  taskEndHooks.add(new WeakRef(hook));
}
