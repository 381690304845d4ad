/**
 * The child's end of its sealed channel (see `_channel_parent.ts`), over a byte stream that each
 * runtime's `_child_link` opens with its own sockets: the token first, then messages as frames.
 *
 * Rules this file keeps:
 * - The child opens the socket itself, before any user code runs, so that its descriptor is
 *   close-on-exec: nothing that the child runs inherits the channel.
 * - The channel is the child's lifeline: when it closes, the parent is gone and the child exits.
 *
 * @module
 */
import type { ByteStream, ParentLink } from "./_channel.ts";
import { decodeMessage, encodeMessage, frame, FrameReader } from "./_frames.ts";
import { CHILD_PROCESS_FLAG } from "./_protocol.ts";

/** How often a child checks that its parent is still the one that started it. */
export const LIFELINE_CHECK_MS = 250;

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
  return {
    kind: "process",
    onMessage: (next) => {
      if (listener) {
        listener = next;
        return;
      }
      listener = next;
      const reader = new FrameReader((payload) => listener!(decodeMessage(payload)));
      stream.read((chunk) => reader.push(chunk), () => exit(1));
    },
    send: (message) => {
      let buffers: Uint8Array[];
      try {
        buffers = encodeMessage(message);
      } catch (error) {
        return Promise.reject(error);
      }
      return stream.write(buffers);
    },
    finish,
  };
}
