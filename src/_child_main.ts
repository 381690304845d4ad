/**
 * The entry of every worker thread and child process: it receives a target, runs it, and sends the
 * outcome back. Only the parent starts this module.
 *
 * @module
 */
import { connectToParent } from "./_child_link.deno.ts";
import {
  describeValue,
  findUncloneableArgument,
  type ParentMessage,
  type RunMessage,
  serializeError,
  type TransferList,
} from "./_protocol.ts";
import { resolveTarget } from "./_target_resolve.ts";
import { PoolChild } from "./_pool_child.ts";
import { isTransfer } from "./_transfer_marker.ts";
import { type BrokerReplyMessage, decodeArgs, handleBrokerReply, settleTask } from "./_revive.ts";

// Marks this realm as a multiproc child before any user module is imported, so that modules can
// tell (test registrations, for one, stay out of children).
(globalThis as Record<symbol, unknown>)[Symbol.for("multiproc.child")] = true;

const link = await connectToParent();

// A forkserver spare imports its preload modules before it is handed a target; a run message that
// arrives meanwhile waits for them.
let preloaded: Promise<void> = Promise.resolve();
// Set once the parent makes this child a pool worker.
let pool: PoolChild | undefined;

link.onMessage((message) => {
  // Replies of the parent's broker to shared objects used in this child process.
  if ((message as BrokerReplyMessage).type === "broker-reply") {
    return handleBrokerReply(message as BrokerReplyMessage);
  }
  const typed = message as ParentMessage;
  switch (typed.type) {
    case "preload":
      preloaded = preload(typed.modules, typed.optional);
      // A failed preload is reported by the run that waits for it, not as an unhandled rejection.
      preloaded.catch(() => {});
      break;
    case "run":
      void runOnce(typed);
      break;
    case "pool":
      pool = new PoolChild(link, typed, preloaded);
      break;
    case "target":
      pool?.addTarget(typed);
      break;
    case "tasks":
      pool?.addTasks(typed.tasks);
      break;
    case "skip":
      pool?.skip(typed.ids);
      break;
  }
});

async function preload(modules: string[], optional: string[]): Promise<void> {
  // Imported one after another, in the order given, as Python's forkserver does.
  for (const module of modules) {
    try {
      await import(module);
    } catch (error) {
      await link.send({ type: "ready" });
      throw new TypeError(`Cannot preload the module '${module}'`, { cause: error });
    }
  }
  for (const module of optional) {
    // A main module that fails here fails again, with its error, for a target that needs it.
    await import(module).catch(() => {});
  }
  await link.send({ type: "ready" });
}

async function runOnce(run: RunMessage): Promise<void> {
  let value: unknown;
  try {
    await preloaded;
    const target = await resolveTarget(run.target);
    value = await target(...await decodeArgs(run.args, link));
    await settleTask();
  } catch (error) {
    await reportError(run.name, error);
    return;
  }
  // A result wrapped with transfer() moves its buffers to a parent thread instead of copying.
  let transfers: TransferList | undefined;
  if (isTransfer(value)) {
    transfers = link.kind === "thread" ? value.list : undefined;
    value = value.value;
  }
  const bad = findUncloneableArgument([value]);
  try {
    if (bad) throw new TypeError(`${describeValue(bad.culprit)} is not cloneable`);
    await link.send({ type: "result", value }, transfers);
  } catch (error) {
    const where = bad?.path ? ` (at ${bad.path})` : "";
    await reportError(
      run.name,
      new TypeError(
        `The return value of the target cannot be sent to the parent${where}: ${
          error instanceof Error ? error.message : String(error)
        }; return data that structured clone accepts`,
      ),
    );
    return;
  }
  link.finish(0);
}

async function reportError(name: string, error: unknown): Promise<void> {
  // Like Python's traceback on stderr for an uncaught exception in a thread or process.
  console.error(link.kind === "process" ? `Process ${name}:` : `Exception in thread ${name}:`);
  console.error(error);
  await link.send({ type: "error", error: serializeError(error) });
  link.finish(1);
}
