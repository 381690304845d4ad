/**
 * The runtime seam, child side, for Deno: how a worker or child process reaches its parent. Its
 * sibling `_child_link.node.ts` has identical exports.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */
import type { ParentLink } from "./_channel.ts";
import { connectUnix } from "./_unix_socket.deno.ts";
import { channelArguments, sealedLink } from "./_channel_child.ts";
import { readToEnd } from "./_frames.ts";

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
  // Otherwise this is a child process. Its sealed channel needs nothing of Node's compatibility
  // layer, whose start-up would double the child's.
  const { parentPid, path } = channelArguments(Deno.args);
  if (path !== undefined) return await connectViaSocket(path, parentPid);
  // A parent that could not make the sealed channel gave the child Node's IPC channel.
  const { connectViaProcess } = await import("./_node_links.ts");
  return connectViaProcess();
}

/**
 * Joins the sealed channel at `path` with the token from stdin. `Deno.connect` makes its socket
 * close-on-exec, so that no program this child runs inherits it.
 */
async function connectViaSocket(path: string, parentPid: number): Promise<ParentLink> {
  const exit = (code: number) => Deno.exit(code);
  // A parent killed while this child was still booting leaves it an orphan: its parent pid shows.
  // Once joined, the socket is the lifeline (see `sealedLink`); no timer polls, as Deno's first
  // timer alone would add a quarter to a bare start.
  if (parentPid > 0 && Deno.ppid !== parentPid) exit(1);
  const token = readStdin();
  let stream;
  try {
    stream = await connectUnix(path);
  } catch (error) {
    // The parent is gone, or closed the channel: nobody is left to report to.
    if (error instanceof Deno.errors.NotCapable) throw error;
    return exit(1) as never;
  }
  return sealedLink(stream, token, exit, exit);
}

/** All of stdin, which the parent closes after writing the token. */
function readStdin(): Uint8Array {
  return readToEnd((buffer) => Deno.stdin.readSync(buffer));
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
