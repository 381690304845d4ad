/**
 * The entry of every worker thread and child process: it connects to the parent and hands its
 * messages to the worker's task loop (`_worker_child.ts`), for a one-shot run or a pool worker
 * alike. Only the parent starts this module.
 *
 * @module
 */
import { connectToParent } from "./_child_link.deno.ts";
import { type ParentMessage, TaskMode } from "./_protocol.ts";
import { reportUncaughtErrors, TaskLoop } from "./_worker_child.ts";
import { type BrokerReplyMessage, handleBrokerReply } from "./_broker.ts";
import { adoptContext, importingMainModule } from "./_process_context.ts";

// Marks this realm as a multiproc child before any user module is imported, so that modules can
// tell (test registrations, for one, stay out of children).
(globalThis as Record<symbol, unknown>)[Symbol.for("multiproc.child")] = true;

const link = await connectToParent();
reportUncaughtErrors(link);

// A forkserver spare imports its preload modules before it is handed a target; a run message that
// arrives meanwhile waits for them.
let preloaded: Promise<void> = Promise.resolve();
// Set once the parent gives this child its task or makes it a pool worker.
let loop: TaskLoop | undefined;

link.onMessage((message) => {
  // Replies of the parent's broker to shared objects used in this child process.
  if ((message as BrokerReplyMessage).type === "broker-reply") {
    return handleBrokerReply(message as BrokerReplyMessage);
  }
  const typed = message as ParentMessage;
  switch (typed.type) {
    case "context":
      adoptContext(typed);
      break;
    case "preload":
      preloaded = preload(typed.modules, typed.optional);
      // A failed preload is reported by the run that waits for it, not as an unhandled rejection.
      preloaded.catch(() => {});
      break;
    case "run":
      // A one-shot run is a worker with one task.
      loop = new TaskLoop(link, { batchResults: false, once: { header: typed.header } }, preloaded);
      loop.addTarget({ id: 1, target: typed.target });
      loop.addTasks([1, 1, TaskMode.Apply, typed.args, -1]);
      break;
    case "pool":
      loop = new TaskLoop(link, typed, preloaded);
      break;
    case "target":
      loop?.addTarget(typed);
      break;
    case "tasks":
      loop?.addTasks(typed.tasks);
      break;
    case "skip":
      loop?.skip(typed.ids, typed.reply);
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
    await importingMainModule(() => import(module)).catch(() => {});
  }
  await link.send({ type: "ready" });
}
