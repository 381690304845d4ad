/**
 * The parent's broker, which lets child processes use queues, locks and shared values, as Python's
 * `Manager` does. Shared memory cannot cross into another process, so the object stays in the
 * parent; the child holds a client that sends each operation here, and the broker performs it on
 * the real object for that child.
 *
 * Waits (a `get` on an empty queue, the `acquire` of a held lock) are async waits in the parent:
 * they never block its event loop. Locks taken through the broker are owned by the child's owner
 * id; when the child exits, {@linkcode childExited} releases what it still held (see
 * `AbandonedLockError`) and drops its pending waits.
 *
 * @module
 */
import { releaseOwnedBy } from "./_atomics.ts";
import { type BrokerMessage, brokerReply, type BrokerReplyMessage } from "./_revive.ts";

/** The method through which the broker performs an operation on an object for a child. */
export const brokerOp: unique symbol = Symbol.for("multiproc.brokerOp");

/** An object that child processes can use through the broker. */
export interface Brokered {
  /**
   * Performs `op` with `args` for the child whose owner id is `owner`. `signal` is aborted when
   * that child exits, so that a wait on its behalf ends.
   */
  [brokerOp](op: string, args: unknown[], owner: number, signal: AbortSignal): unknown;
}

const objects = new Map<string, Brokered>();
// Which children use which objects, so that an object is let go once none of them is left.
const usersOf = new Map<string, Set<number>>();
const childStates = new Map<number, { abort: AbortController; ids: Set<string> }>();

/** Keeps `object` under `id` for as long as the child process `ownerId` may use it. */
export function registerBrokered(id: string, object: Brokered, ownerId: number): void {
  objects.set(id, object);
  const state = stateOf(ownerId);
  if (state.ids.has(id)) return;
  state.ids.add(id);
  let users = usersOf.get(id);
  if (!users) usersOf.set(id, users = new Set());
  users.add(ownerId);
}

/** The routing of one child: its owner id and how to reply on its handle. */
export interface BrokerRoute {
  /** The owner id that the child's locks are held under. */
  ownerId: number;
  /** Sends a reply to the child. */
  reply(message: BrokerReplyMessage): void;
}

function stateOf(ownerId: number) {
  let state = childStates.get(ownerId);
  if (!state) childStates.set(ownerId, state = { abort: new AbortController(), ids: new Set() });
  return state;
}

/**
 * Performs a `broker` message from a child process and replies on its route. The Runner and the
 * pool call it for every message of that type.
 *
 * @returns True when `message` was a broker message (and is handled), false otherwise.
 */
export function handleBrokerMessage(message: unknown, route: BrokerRoute): boolean {
  const typed = message as BrokerMessage;
  if (typed?.type !== "broker") return false;
  const state = stateOf(route.ownerId);
  // A call that wants no answer (callId 0) is answered only when it fails.
  const reply = (outcome: { value?: unknown; error?: unknown }) => {
    if (typed.callId !== 0 || "error" in outcome) route.reply(brokerReply(typed, outcome));
  };
  const object = objects.get(typed.id);
  if (!object) {
    reply({
      error: new Error(`The shared object '${typed.id}' is no longer kept by the parent`),
    });
    return true;
  }
  let outcome: unknown;
  try {
    outcome = object[brokerOp](typed.op, typed.args, route.ownerId, state.abort.signal);
  } catch (error) {
    reply({ error });
    return true;
  }
  if (outcome instanceof Promise) {
    outcome.then(
      (value) => {
        // A wait that ended after its child had gone: undo what it took, quietly.
        if (state.abort.signal.aborted) releaseOwnedBy(route.ownerId, false);
        else reply({ value });
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

/**
 * Cleans up after a child that has exited, thread or process: releases the locks it held (marked
 * abandoned, so that the next acquirer learns of it), ends the broker's waits on its behalf, and
 * lets go of objects that no live child uses.
 */
export function childExited(ownerId: number): void {
  releaseOwnedBy(ownerId, true);
  const state = childStates.get(ownerId);
  if (!state) return;
  childStates.delete(ownerId);
  state.abort.abort(new Error("The child process has exited"));
  for (const id of state.ids) {
    const users = usersOf.get(id);
    users?.delete(ownerId);
    if (users && users.size === 0) {
      usersOf.delete(id);
      objects.delete(id);
    }
  }
}
