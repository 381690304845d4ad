/**
 * The runtime seam, child side, for Deno: how a worker or child process reaches its parent. Its
 * sibling `_child_link.node.ts` has identical exports.
 *
 * @module
 */
import { CHILD_PROCESS_FLAG, type ParentLink } from "./_protocol.ts";

interface WorkerScope {
  postMessage(message: unknown, options?: { transfer?: Transferable[] }): void;
  close(): void;
  onmessage: ((event: MessageEvent) => void) | null;
}

/** Connects to the parent, whether this is a Web Worker, a node worker or a child process. */
export async function connectToParent(): Promise<ParentLink> {
  // Only a Web Worker's global scope defines WorkerGlobalScope (Deno's node workers do not).
  // Web Workers are the common case, and importing node modules would add to their start-up.
  if ("WorkerGlobalScope" in globalThis) {
    return connectViaWorkerScope(globalThis as unknown as WorkerScope);
  }
  const { connectViaIpc, connectViaPort } = await import("./_node_links.ts");
  // A child process is told so on its command line, which spares it node:worker_threads.
  if (Deno.args.includes(CHILD_PROCESS_FLAG)) return connectViaIpc();
  const { parentPort } = await import("node:worker_threads");
  return parentPort ? connectViaPort(parentPort) : connectViaIpc();
}

function connectViaWorkerScope(scope: WorkerScope): ParentLink {
  // Deno.exit() in a Web Worker closes it without any event in the parent, which would leave
  // join() waiting forever; report the code first. process.exit() goes through Deno.exit().
  const exit = Deno.exit;
  Object.defineProperty(Deno, "exit", {
    configurable: true,
    writable: true,
    value: (code = 0): never => {
      scope.postMessage({ type: "exit", code });
      return exit(code);
    },
  });
  return {
    kind: "thread",
    onMessage: (listener) => {
      scope.onmessage = (event) => listener(event.data);
    },
    send: (message, transfer) => {
      scope.postMessage(message, { transfer: (transfer ?? []) as Transferable[] });
      return Promise.resolve();
    },
    finish: () => {},
  };
}
