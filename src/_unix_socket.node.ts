/**
 * Unix sockets for the sealed channel, for Node and Bun: `node:net`, whose sockets libuv makes
 * close-on-exec. Its sibling `_unix_socket.deno.ts` has identical exports.
 *
 * @module
 */
import { connect, createServer, type Socket } from "node:net";
import type { ByteStream, UnixListener } from "./_channel.ts";

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

function nodeStream(socket: Socket): ByteStream {
  // An error closes the socket, whose end is what its reader hears.
  socket.on("error", () => {});
  return {
    write: (buffers) =>
      new Promise((resolve, reject) => {
        if (socket.destroyed) return reject(new Error("The channel is closed"));
        buffers.forEach((buffer, i) =>
          socket.write(
            buffer,
            i < buffers.length - 1 ? undefined : (error) => error ? reject(error) : resolve(),
          )
        );
      }),
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
