/**
 * The runtime seam, child side, for Deno: how a worker or child process reaches its parent. Its
 * sibling `_child_link.node.ts` has identical exports.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */
import type { ParentLink } from "./_channel.ts";

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
  // A node:worker_threads worker has a worker's global scope too, without the name. Its messages
  // are read there rather than through parentPort, whose listener walks each message (a typed
  // array element by element: minutes for 100 MB). This comes before the command-line flag,
  // which a worker inherits from the child process that started it.
  if (typeof (globalThis as Partial<WorkerScope>).postMessage === "function") {
    return connectViaNodeWorkerScope(globalThis as unknown as NodeWorkerScope);
  }
  // Otherwise this is a child process, started with an IPC channel.
  const { connectViaIpc } = await import("./_node_links.ts");
  return connectViaIpc();
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

interface NodeWorkerScope {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
}

function connectViaNodeWorkerScope(scope: NodeWorkerScope): ParentLink {
  return {
    kind: "thread",
    onMessage: (listener) => scope.addEventListener("message", (event) => listener(event.data)),
    send: (message, transfer) => {
      scope.postMessage(message, (transfer ?? []) as Transferable[]);
      return Promise.resolve();
    },
    // The parent stops the worker once it has the outcome.
    finish: () => {},
  };
}
