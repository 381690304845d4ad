/**
 * Unix sockets for the sealed channel, for Deno: `Deno.listen` and `Deno.connect`, whose sockets
 * are close-on-exec. (Deno's `node:net` listener is not: a child started while it listens would
 * inherit it.) Also the channel relay's own stdin and stdout, and its signals. Its sibling
 * `_unix_socket.node.ts` has identical exports.
 *
 * @module
 */
import type { ByteStream, UnixListener } from "./_channel.ts";

/**
 * Listens at `path`, handing each connection to `onConnection`.
 *
 * @throws {Error} When the socket cannot be made (the path exists, or a permission is missing).
 */
export function listenUnix(
  path: string,
  onConnection: (stream: ByteStream) => void,
): UnixListener {
  const listener = Deno.listen({ transport: "unix", path });
  listener.unref();
  let closed = false;
  (async () => {
    try {
      for await (const conn of listener) onConnection(denoStream(conn));
    } catch {
      // Closed while waiting.
    }
  })();
  return {
    close: () => {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch {
        // Already closed.
      }
    },
  };
}

/**
 * Connects to the listener at `path`.
 *
 * @throws {Error} When nothing listens there, or a permission is missing.
 */
export async function connectUnix(path: string): Promise<ByteStream> {
  return denoStream(await Deno.connect({ transport: "unix", path }));
}

/**
 * This process's stdin and stdout as one {@linkcode ByteStream}: the pipes of the channel relay
 * (`_relay_main.ts`) to its parent.
 */
export function stdioStream(): ByteStream {
  return denoStream({
    read: (buffer) => Deno.stdin.read(buffer),
    write: (buffer) => Deno.stdout.write(buffer),
    close: () => Deno.stdin.close(),
    ref: () => {},
    unref: () => {},
  });
}

/** Calls `listener` on each `signal` instead of ending the process. */
export function onSignal(signal: "SIGINT" | "SIGTERM", listener: () => void): void {
  Deno.addSignalListener(signal, listener);
}

/** What a {@linkcode ByteStream} needs of a Deno resource. */
type Connection = Pick<Deno.UnixConn, "read" | "write" | "close" | "ref" | "unref">;

/**
 * A Deno socket as a {@linkcode ByteStream}. Writes go out one after another; the first is tried at
 * once, so that a message sent just before `Deno.exit()` leaves with it.
 */
function denoStream(conn: Connection): ByteStream {
  const queue: Array<{ buffer: Uint8Array; done?: () => void; failed?: (e: unknown) => void }> = [];
  let draining = false;
  let broken: unknown;
  const drain = async () => {
    draining = true;
    try {
      while (queue.length > 0) {
        const item = queue[0];
        while (item.buffer.length > 0) {
          item.buffer = item.buffer.subarray(await conn.write(item.buffer));
        }
        queue.shift();
        item.done?.();
      }
    } catch (error) {
      broken = error;
      for (const item of queue.splice(0)) item.failed?.(error);
    }
    draining = false;
  };
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  };
  return {
    write: (buffers) =>
      new Promise((resolve, reject) => {
        if (broken !== undefined) return reject(broken);
        buffers.forEach((buffer, i) =>
          queue.push(
            i === buffers.length - 1 ? { buffer, done: resolve, failed: reject } : { buffer },
          )
        );
        if (!draining) drain();
      }),
    read: async (onChunk, onEnd) => {
      const buffer = new Uint8Array(256 * 1024);
      for (;;) {
        let read: number | null;
        try {
          read = await conn.read(buffer);
        } catch {
          // A broken socket ends as a closed one does.
          read = null;
        }
        if (read === null) {
          // Closed at the other end: this end goes too, so that its descriptor is not left behind.
          close();
          return onEnd();
        }
        onChunk(buffer.subarray(0, read));
      }
    },
    setRef: (ref) => {
      if (closed) return;
      if (ref) conn.ref();
      else conn.unref();
    },
    close,
  };
}
