/**
 * The child's end of its sealed channel (see `_channel_parent.ts`), over a byte stream that each
 * runtime's `_child_link` opens with its own sockets: the token first, then messages as frames.
 *
 * Rules this file keeps:
 * - The child opens the socket itself, before any user code runs, so that its descriptor is
 *   close-on-exec: nothing that the child runs inherits the channel.
 * - The channel is the child's lifeline: when it closes, the parent is gone and the child exits.
 *   Only the parent holds the other end (close-on-exec there too: no other child of the parent
 *   inherits it), so it closes exactly when the parent exits or is killed.
 *
 * @module
 */
import type { ByteStream, ParentLink } from "./_channel.ts";
import { decodeMessage, encodeMessage, frame, FrameReader, needsV8 } from "./_frames.ts";
import { loadedV8, loadV8 } from "./_v8.deno.ts";
import { CHILD_PROCESS_FLAG } from "./_protocol.ts";

/**
 * Where the parent told this child to find its channel: the parent's pid and the sealed channel's
 * socket path, which follow the child-process flag on the command line. No path means Node's IPC
 * channel.
 */
export function channelArguments(args: readonly string[]): { parentPid: number; path?: string } {
  const at = args.indexOf(CHILD_PROCESS_FLAG);
  return { parentPid: at < 0 ? 0 : Number(args[at + 1]), path: at < 0 ? undefined : args[at + 2] };
}

/**
 * The child's link over its sealed channel: sends the token at once, and exits through `exit` when
 * the channel closes.
 *
 * @param stream The socket, connected to the parent's path.
 * @param token The token read from stdin.
 * @param exit Ends the process at once with a code.
 * @param finish Ends the process once its output is out (see {@linkcode ParentLink.finish}).
 */
export function sealedLink(
  stream: ByteStream,
  token: Uint8Array,
  exit: (code: number) => void,
  finish: (code: number) => void,
): ParentLink {
  stream.write(frame(token)).catch(() => exit(1));
  let listener: ((message: unknown) => void) | undefined;
  // Frames and sends that wait for the V8 serializer to load, so that later ones keep their order
  // behind them; undefined while none waits.
  let reading: Promise<void> | undefined;
  let sending: Promise<void> | undefined;
  const deliver = (payload: Uint8Array) => {
    const serializer = loadedV8();
    if (reading === undefined && (serializer || !needsV8(payload))) {
      return listener!(decodeMessage(payload, serializer));
    }
    // The chunk's buffer is read into again: the frame is kept as a copy until its turn.
    const copy = payload.slice();
    const turn: Promise<void> = (reading ?? Promise.resolve())
      .then(() => needsV8(copy) ? loadV8() : undefined)
      .then((loaded) => listener!(decodeMessage(copy, loaded)))
      .finally(() => {
        if (reading === turn) reading = undefined;
      });
    reading = turn;
  };
  return {
    kind: "process",
    onMessage: (next) => {
      if (listener) {
        listener = next;
        return;
      }
      listener = next;
      const reader = new FrameReader(deliver);
      stream.read((chunk) => reader.push(chunk), () => exit(1));
    },
    send: (message) => {
      let buffers: Uint8Array[] | undefined;
      try {
        buffers = sending === undefined ? encodeMessage(message, loadedV8()) : undefined;
      } catch (error) {
        return Promise.reject(error);
      }
      // Written at once where it can be, so that a message sent just before an exit leaves.
      if (buffers) return stream.write(buffers);
      const turn = (sending ?? Promise.resolve())
        .then(() => loadV8())
        .then((loaded) => stream.write(encodeMessage(message, loaded)!));
      const settled = turn.then(() => {}, () => {});
      sending = settled;
      settled.then(() => {
        if (sending === settled) sending = undefined;
      });
      return turn;
    },
    finish,
  };
}
