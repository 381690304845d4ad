/**
 * Unix sockets for the sealed channel, for Node and Bun: `node:net`, whose sockets libuv makes
 * close-on-exec. Also the channel relay's own stdin and stdout, and its signals. Its sibling
 * `_unix_socket.deno.ts` has identical exports.
 *
 * @module
 */
import { connect, createServer, type Socket } from "node:net";
import process from "node:process";
import type { ByteStream, UnixListener } from "./_channel.ts";
import { writeInOrder } from "./_frames.ts";

/**
 * Listens at `path`, handing each connection to `onConnection`. A failure to listen closes the
 * listener: no connection comes.
 */
export function listenUnix(
  path: string,
  onConnection: (stream: ByteStream) => void,
): UnixListener {
  const server = createServer((socket) => onConnection(nodeStream(socket)));
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    server.close();
  };
  server.on("error", close);
  server.listen(path);
  server.unref();
  return { close };
}

/**
 * Connects to the listener at `path`.
 *
 * @throws {Error} When nothing listens there.
 */
export function connectUnix(path: string): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(nodeStream(socket));
    });
  });
}

/**
 * This process's stdin and stdout as one {@linkcode ByteStream}: the pipes of the channel relay
 * (`_relay_main.ts`) to its parent.
 */
export function stdioStream(): ByteStream {
  const { stdin, stdout } = process;
  // A broken pipe means the parent is gone: stdin's end says so.
  stdout.on("error", () => {});
  return {
    write: (buffers) => writeInOrder(stdout, buffers),
    read: (onChunk, onEnd) => {
      stdin.on("data", onChunk);
      stdin.once("end", onEnd);
      stdin.once("error", onEnd);
    },
    setRef: () => {},
    close: () => {
      stdin.destroy();
    },
  };
}

/** Calls `listener` on each `signal` instead of ending the process. */
export function onSignal(signal: "SIGINT" | "SIGTERM", listener: () => void): void {
  process.on(signal, listener);
}

function nodeStream(socket: Socket): ByteStream {
  // An error closes the socket, whose end is what its reader hears.
  socket.on("error", () => {});
  return {
    write: (buffers) =>
      socket.destroyed
        ? Promise.reject(new Error("The channel is closed"))
        : writeInOrder(socket, buffers),
    read: (onChunk, onEnd) => {
      socket.on("data", onChunk);
      socket.once("close", onEnd);
    },
    setRef: (ref) => {
      if (ref) socket.ref();
      else socket.unref();
    },
    close: () => {
      socket.destroy();
    },
  };
}
