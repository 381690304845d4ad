/**
 * The broker, which lets child processes use queues, locks and shared values, as Python's
 * `Manager` does: its wire types, its server (in the realm that owns the objects) and its client
 * (in a child that uses them). Shared memory cannot cross into another process, so an object stays
 * where it was made; the child holds a client that sends each operation here, and the server
 * performs it on the real object on the child's behalf.
 *
 * Rules this file keeps:
 * - It knows nothing of the objects' classes: an object registers a {@linkcode Performer}, and an
 *   operation is a name and its arguments (typed where the object is defined, in `_shared.ts`).
 * - Waits (a `get` on an empty queue, the `acquire` of a held lock) are async waits here: they
 *   never block the event loop.
 * - Locks taken through the broker are owned by the child's owner id; when the child exits,
 *   {@linkcode childExited} releases what it still held (see `AbandonedLockError`) and drops its
 *   pending waits.
 * - A child may pass an object it received on to its own children: it then serves them as a relay,
 *   and their operations reach this server under owner ids that this server gives them, so that a
 *   child can act only for itself and for its own children.
 * - The engines see only {@linkcode handleBrokerMessage}, {@linkcode childExited} (parent side)
 *   and {@linkcode handleBrokerReply} (child side).
 *
 * @module
 */
import { allocateOwnerId, releaseOwnedBy } from "./_atomics.ts";
import type { ParentLink } from "./_channel.ts";
import { deserializeError, serializeError } from "./_error_records.ts";
import type { SerializedError } from "./_protocol.ts";

// ---------------------------------------------------------------------------------------------
// Wire types

/** Child to parent: perform `op` on the broker's object `id`. */
export interface BrokerMessage {
  type: "broker";
  /** The object; empty for a notice about the child (`op` "acknowledge" or "exited"). */
  id: string;
  op: string;
  args: unknown[];
  /** The call to answer; 0 for a call that wants an answer only when it fails. */
  callId: number;
  /** For a call relayed from the child's own child: that child's owner id, as the child knows it. */
  via?: number;
}

/** Parent to child: the outcome of a broker call, or news of an object's state. */
export interface BrokerReplyMessage {
  type: "broker-reply";
  /** The call answered; 0 for an unanswered call's failure or for news only. */
  callId: number;
  /** The object called, for the failure of a call that wanted no answer. */
  id?: string;
  value?: unknown;
  error?: SerializedError;
  /** The latest states of watched objects that changed, as `[id, state]` (see `Performer.watch`). */
  states?: Array<[string, unknown]>;
  /** Set when the child must acknowledge the value, which otherwise goes back (a queue's item). */
  acknowledge?: true;
}

// ---------------------------------------------------------------------------------------------
// Server

/** Who asks for an operation, and for how long the answer is wanted. */
export interface Caller {
  /** The owner id of the thread or process that asks, as locks record it. */
  owner: number;
  /** Aborted when the child process that asks has gone, so that a wait on its behalf ends. */
  signal?: AbortSignal;
  /**
   * For a call from a child: registers how to undo the outcome (an item taken off a queue) should
   * the child never receive it; the child acknowledges what it receives.
   */
  keep?(undo: () => void): void;
}

/** How the broker reaches one object. */
export interface Performer {
  /** Performs `op` with `args` for `caller`; throws a TypeError for an unknown operation. */
  perform(op: string, args: unknown[], caller: Caller): unknown;
  /**
   * The object's state as children see it between calls (whether a lock is held), when it has
   * one; sent with each reply to a child when it changed since that child last heard.
   */
  watch?(): unknown;
}

interface Entry {
  performer: Performer;
  /** The children (owner ids) that use the object. */
  users: Set<number>;
}

const objects = new Map<string, Entry>();

/** What the broker knows of one child. */
interface ChildState {
  abort: AbortController;
  ids: Set<string>;
  /** The route, once a message came from the child. */
  route?: BrokerRoute;
  /** The last state sent of each watched object. */
  sent: Map<string, unknown>;
  /** Owner ids given to the child's own children, keyed by the ids that the child knows them by. */
  relayed: Map<number, number>;
  /** How to undo the outcomes sent and not yet acknowledged, by call id. */
  unacknowledged: Map<number, () => void>;
}

const children = new Map<number, ChildState>();

/** Keeps `performer` under `id` for as long as the child `ownerId` may use it. */
export function registerBrokered(id: string, performer: Performer, ownerId: number): void {
  let entry = objects.get(id);
  if (!entry) objects.set(id, entry = { performer, users: new Set() });
  entry.performer = performer;
  const state = stateOf(ownerId);
  state.ids.add(id);
  entry.users.add(ownerId);
  if (performer.watch) state.sent.set(id, performer.watch());
}

/** The routing of one child: its owner id and how to reply on its handle. */
export interface BrokerRoute {
  /** The owner id that the child's locks are held under. */
  ownerId: number;
  /** Sends a reply to the child. */
  reply(message: BrokerReplyMessage): void;
}

function stateOf(ownerId: number): ChildState {
  let state = children.get(ownerId);
  if (!state) {
    state = {
      abort: new AbortController(),
      ids: new Set(),
      sent: new Map(),
      relayed: new Map(),
      unacknowledged: new Map(),
    };
    children.set(ownerId, state);
  }
  return state;
}

/** The changed states of the objects that child `state` watches, to go with a reply. */
function changedStates(state: ChildState): Array<[string, unknown]> | undefined {
  let changed: Array<[string, unknown]> | undefined;
  for (const [id, last] of state.sent) {
    const now = objects.get(id)?.performer.watch?.();
    if (now === last) continue;
    state.sent.set(id, now);
    (changed ??= []).push([id, now]);
  }
  return changed;
}

/**
 * Performs a `broker` message from a child and replies on its route. The engines call it for
 * every message from a child.
 *
 * @returns True when `message` was a broker message (and is handled), false otherwise.
 */
export function handleBrokerMessage(message: unknown, route: BrokerRoute): boolean {
  const typed = message as BrokerMessage;
  if (typed?.type !== "broker") return false;
  const state = stateOf(route.ownerId);
  state.route = route;
  if (typed.id === "") return handleNotice(typed, state);
  let owner = route.ownerId;
  // The child relays for a child of its own, which gets an owner id of this realm.
  if (typed.via !== undefined) owner = relayedOwner(state, typed.via);
  let undo: (() => void) | undefined;
  const entry = objects.get(typed.id);
  // A call that wants no answer (callId 0) is answered only when it fails.
  const reply = (outcome: { value?: unknown; error?: unknown }) => {
    if (typed.callId === 0 && !("error" in outcome)) {
      // The child knows what its own unanswered call did (a release, a set).
      const watch = entry?.performer.watch;
      if (watch && state.sent.has(typed.id)) state.sent.set(typed.id, watch());
      return;
    }
    const answer = brokerReply(typed, outcome);
    const states = changedStates(state);
    if (states) answer.states = states;
    if (undo && !("error" in outcome)) {
      answer.acknowledge = true;
      state.unacknowledged.set(typed.callId, undo);
    }
    route.reply(answer);
  };
  if (!entry) {
    reply({ error: new Error(`The shared object '${typed.id}' is no longer kept by the parent`) });
    return true;
  }
  const caller: Caller = { owner, signal: state.abort.signal };
  if (typed.callId !== 0) caller.keep = (how) => undo = how;
  let outcome: unknown;
  try {
    outcome = entry.performer.perform(typed.op, typed.args, caller);
  } catch (error) {
    reply({ error });
    return true;
  }
  if (outcome instanceof Promise) {
    outcome.then(
      (value) => {
        if (!state.abort.signal.aborted) return reply({ value });
        // A wait that ended after its child had gone: undo what it took, quietly.
        releaseOwnedBy(owner, false);
        undo?.();
      },
      (error) => {
        if (!state.abort.signal.aborted) reply({ error });
      },
    );
  } else {
    reply({ value: outcome });
  }
  return true;
}

/** A notice about the child rather than a call: an acknowledgement, or a relayed child's exit. */
function handleNotice(message: BrokerMessage, state: ChildState): true {
  if (message.op === "acknowledge") {
    state.unacknowledged.delete(message.args[0] as number);
  } else if (message.op === "news") {
    // A child read a watched state (locked(), isSet()): tell it what changed since it last heard.
    state.route?.reply({ type: "broker-reply", callId: 0, states: changedStates(state) ?? [] });
  } else if (message.op === "exited" && message.via !== undefined) {
    const owner = state.relayed.get(message.via);
    state.relayed.delete(message.via);
    if (owner !== undefined) releaseOwnedBy(owner, true);
  }
  return true;
}

function relayedOwner(state: ChildState, via: number): number {
  let owner = state.relayed.get(via);
  if (owner === undefined) state.relayed.set(via, owner = allocateOwnerId());
  return owner;
}

function brokerReply(
  message: BrokerMessage,
  outcome: { value?: unknown; error?: unknown },
): BrokerReplyMessage {
  const reply: BrokerReplyMessage = { type: "broker-reply", callId: message.callId };
  if (message.callId === 0) reply.id = message.id;
  if ("error" in outcome) reply.error = serializeError(outcome.error);
  else reply.value = outcome.value;
  return reply;
}

const exitHooks = new Map<number, Array<() => void>>();

/** Runs `hook` once the child `ownerId` (thread or process) has exited. */
export function whenChildExits(ownerId: number, hook: () => void): void {
  let hooks = exitHooks.get(ownerId);
  if (!hooks) exitHooks.set(ownerId, hooks = []);
  hooks.push(hook);
}

/**
 * Cleans up after a child that has exited, thread or process: releases the locks it held (marked
 * abandoned, so that the next acquirer learns of it), ends the broker's waits on its behalf, and
 * lets go of objects that no live child uses. A relay tells its own server too.
 */
export function childExited(ownerId: number): void {
  releaseOwnedBy(ownerId, true);
  client?.ownerExited(ownerId);
  const hooks = exitHooks.get(ownerId);
  exitHooks.delete(ownerId);
  for (const hook of hooks ?? []) hook();
  const state = children.get(ownerId);
  if (!state) return;
  children.delete(ownerId);
  for (const relayed of state.relayed.values()) releaseOwnedBy(relayed, true);
  state.abort.abort(new Error("The child process has exited"));
  // What was sent and never received goes back.
  for (const undo of state.unacknowledged.values()) undo();
  for (const id of state.ids) {
    const entry = objects.get(id);
    entry?.users.delete(ownerId);
    if (entry && entry.users.size === 0) objects.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/** Requests from a child to the objects that its parent's broker keeps. */
export class BrokerClient {
  #link: ParentLink;
  #nextCallId = 1;
  #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  // Errors of calls that nobody awaited (a release, a set): thrown by the object's next call.
  #deferred = new Map<string, Error>();
  #states = new Map<string, unknown>();
  #newsAsked = false;
  // Owners of this realm's children that called through this client, to be reported on exit.
  #relayedFor = new Set<number>();

  /**
   * Creates the client of one link.
   *
   * @param link The line to the parent.
   */
  constructor(link: ParentLink) {
    this.#link = link;
  }

  /**
   * Performs `op` on object `id` in the parent and resolves with its outcome.
   *
   * @param via The owner id of this realm's child that the call is relayed for, if any.
   */
  call(id: string, op: string, args: unknown[], via?: number): Promise<unknown> {
    const deferred = this.#deferred.get(id);
    if (deferred) {
      this.#deferred.delete(id);
      return Promise.reject(deferred);
    }
    const callId = this.#nextCallId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(callId, { resolve, reject });
      this.#send({ type: "broker", id, op, args, callId }, via).catch((error) => {
        this.#pending.delete(callId);
        reject(error);
      });
    });
  }

  /**
   * Performs `op` without waiting, and without an answer unless it fails; an error surfaces at
   * the object's next call. Sent in order with the calls, so a release follows its writes.
   */
  cast(id: string, op: string, args: unknown[], via?: number): void {
    this.throwDeferred(id);
    this.#send({ type: "broker", id, op, args, callId: 0 }, via).catch((error) =>
      this.#deferred.set(id, error)
    );
  }

  #send(message: BrokerMessage, via: number | undefined): Promise<void> {
    if (via !== undefined) {
      message.via = via;
      this.#relayedFor.add(via);
    }
    return this.#link.send(message);
  }

  /** Throws the error of an earlier unawaited call on object `id`, if there was one. */
  throwDeferred(id: string): void {
    const deferred = this.#deferred.get(id);
    if (deferred) {
      this.#deferred.delete(id);
      throw deferred;
    }
  }

  /**
   * The last state that the parent sent of object `id` (see `Performer.watch`). Reading it also
   * asks the parent for news, unless a request is on its way, so that a child that polls a state
   * (`while (!event.isSet()) await sleep(50)`) sees a change made elsewhere at its next read.
   */
  state(id: string): unknown {
    if (!this.#newsAsked) {
      this.#newsAsked = true;
      this.#link.send(
        { type: "broker", id: "", op: "news", args: [], callId: 0 } satisfies BrokerMessage,
      )
        .catch(() => this.#newsAsked = false);
    }
    return this.#states.get(id);
  }

  /** Records a state of object `id` known here before any news came (from its descriptor). */
  seed(id: string, state: unknown): void {
    if (!this.#states.has(id)) this.#states.set(id, state);
  }

  /** Records a state of object `id` that this child brought about itself (a release, a set). */
  know(id: string, state: unknown): void {
    this.#states.set(id, state);
  }

  /** Tells the parent that a child of this realm, which used relayed objects, has exited. */
  ownerExited(owner: number): void {
    if (!this.#relayedFor.delete(owner)) return;
    this.#link.send({ type: "broker", id: "", op: "exited", args: [], callId: 0, via: owner })
      .catch(() => {});
  }

  /** Settles the call that `message` answers, and records the states that came with it. */
  settle(message: BrokerReplyMessage): void {
    if (message.states) {
      for (const [id, state] of message.states) this.#states.set(id, state);
    }
    if (message.callId === 0) {
      // News that a read of a state asked for (see `state()`).
      if (message.id === undefined && message.error === undefined) this.#newsAsked = false;
      if (message.id && message.error) {
        this.#deferred.set(message.id, deserializeError(message.error));
      }
      return;
    }
    if (message.acknowledge) {
      this.#link.send(
        {
          type: "broker",
          id: "",
          op: "acknowledge",
          args: [message.callId],
          callId: 0,
        } satisfies BrokerMessage,
      ).catch(() => {});
    }
    const pending = this.#pending.get(message.callId);
    if (!pending) return;
    this.#pending.delete(message.callId);
    if (message.error) pending.reject(deserializeError(message.error));
    else pending.resolve(message.value);
  }
}

let client: BrokerClient | undefined;
let clientLink: ParentLink | undefined;

/** The client of this child's link to its parent, made at the first use. */
export function brokerClient(link: ParentLink): BrokerClient {
  if (clientLink !== link) {
    clientLink = link;
    client = new BrokerClient(link);
  }
  return client!;
}

/** Hands a `broker-reply` message from the parent to the call that waits for it. */
export function handleBrokerReply(message: BrokerReplyMessage): void {
  client?.settle(message);
}
