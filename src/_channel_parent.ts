/**
 * The parent's end of a child process's sealed channel: a Unix socket that only the child can
 * join. The parent listens at a random path inside a fresh folder of its own (mode 0700), passes
 * the path on the child's command line and a one-time random token through the child's stdin,
 * which it then closes. The child opens the socket itself, so that its descriptor is close-on-exec
 * and no program that the child runs inherits it, and proves itself by sending the token first.
 * The first connection to do so is the channel; the listener, the socket file and the folder go at
 * once, and any other connection is closed unheard.
 *
 * Rules this file keeps:
 * - No temporary file outlives its channel: the folder is removed when the child joins, when it
 *   exits or cannot start, when the channel is closed, and when the parent exits; the folders of a
 *   parent killed before it could remove them go when the next parent opens its first channel.
 * - Nothing a connection sends before it has proved itself reaches the parent's listeners; a
 *   connection gets one frame, no longer than a token, to do so.
 *
 * @module
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { ByteStream, UnixListener } from "./_channel.ts";
import { FrameReader, TOKEN_BYTES } from "./_frames.ts";
import { mayListenAt, onParentExit } from "./_platform.deno.ts";
import { listenUnix } from "./_unix_socket.deno.ts";
import { newToken, sameToken } from "./_token.ts";

/** The longest path that a Unix socket address holds on Linux and macOS, less a margin. */
export const MAX_SOCKET_PATH = 100;

/** The bytes of the token's frame: its length, then the token. */
const TOKEN_FRAME_BYTES = 4 + TOKEN_BYTES;

const openFolders = new Set<string>();
let exitHookInstalled = false;

function removeFolder(folder: string): void {
  if (!openFolders.delete(folder)) return;
  try {
    rmSync(folder, { recursive: true, force: true });
  } catch {
    // Already gone, or no longer ours to remove.
  }
}

function removeOpenFolders(): void {
  for (const folder of [...openFolders]) removeFolder(folder);
}

// The folders of this library's channels: the pid of the parent that made each, then mkdtemp's part.
const FOLDER_NAME = /^multiproc-(\d+)-[A-Za-z0-9]{6}$/;

/**
 * Removes the channel folders of parents that are gone. A parent removes its own at exit, but one
 * killed by a signal (`SIGKILL` above all) while a child was still joining cannot: the next parent
 * that opens a channel removes them.
 */
function removeFoldersOfDeadParents(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const match = FOLDER_NAME.exec(name);
    if (!match || Number(match[1]) === process.pid || isAlive(Number(match[1]))) continue;
    try {
      rmSync(join(base, name), { recursive: true, force: true });
    } catch {
      // Another user's, or removed meanwhile.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, another user's. Anything else but "no such process": keep the folder.
    return (error as { code?: string }).code !== "ESRCH";
  }
}

/** What the parent does with the bytes of a child's channel once the child has joined. */
export interface JoinedReader {
  chunk(chunk: Uint8Array): void;
  end(): void;
}

/** A listening channel that waits for its child. */
export interface PendingChannel {
  /** The socket's path, for the child's command line. */
  readonly path: string;
  /** The token, for the child's stdin. */
  readonly token: Uint8Array;
  /**
   * Calls `joined` with the child's socket once it has sent the token; what `joined` returns reads
   * all that the child sends after the token.
   */
  onJoin(joined: (stream: ByteStream) => JoinedReader): void;
  /**
   * Calls `ready` once the child may connect, which is when it may be given the token; or with an
   * error when nothing will listen for it.
   */
  onListening(ready: (failure?: Error) => void): void;
  /** Stops waiting: closes the listener and removes the socket and its folder. */
  close(): void;
}

/**
 * Opens a sealed channel for one child, or returns undefined where this process may not: a folder
 * in the temporary directory, a socket in it, and the permissions for both (a Deno parent needs
 * `--allow-write` and `--allow-net` for them, or `-A`). The caller then falls back to the runtime's
 * IPC channel.
 */
export function openChannel(): PendingChannel | undefined {
  let folder: string;
  try {
    const base = tmpdir();
    // A path with a comma could not be granted to a Deno child as one item.
    if (base.includes(",") || !mayListenAt(join(base, "x"), base)) return undefined;
    if (!exitHookInstalled) removeFoldersOfDeadParents(base);
    folder = mkdtempSync(join(base, `multiproc-${process.pid}-`));
  } catch {
    return undefined;
  }
  const path = join(folder, "c");
  if (path.length > MAX_SOCKET_PATH || !mayListenAt(path, folder)) {
    rmSync(folder, { recursive: true, force: true });
    return undefined;
  }
  openFolders.add(folder);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onParentExit(removeOpenFolders);
  }
  const token = newToken();
  let joined: ((stream: ByteStream) => JoinedReader) | undefined;
  let closed = false;
  const unproved = new Set<ByteStream>();
  let listener: UnixListener | undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    listener?.close();
    removeFolder(folder);
    for (const stream of unproved) stream.close();
    unproved.clear();
  };
  const admit = (stream: ByteStream) => {
    if (closed) return stream.close();
    unproved.add(stream);
    let proved = false;
    const reader = new FrameReader((payload) => {
      if (!sameToken(payload, token)) {
        throw new Error("Wrong token");
      }
      proved = true;
    }, TOKEN_BYTES);
    // The token's frame, and not a byte more, is read here: what follows is the child's.
    let unread = TOKEN_FRAME_BYTES;
    let rest: JoinedReader | undefined;
    stream.read((chunk) => {
      if (rest) return rest.chunk(chunk);
      const take = Math.min(unread, chunk.length);
      unread -= take;
      try {
        reader.push(chunk.subarray(0, take));
      } catch {
        unproved.delete(stream);
        return stream.close();
      }
      if (!proved) return;
      unproved.delete(stream);
      close();
      rest = joined!(stream);
      if (take < chunk.length) rest.chunk(chunk.subarray(take));
    }, () => {
      unproved.delete(stream);
      rest?.end();
    });
  };
  try {
    listener = listenUnix(path, admit);
  } catch {
    closed = true;
    removeFolder(folder);
    return undefined;
  }
  return {
    path,
    token,
    onJoin: (listener) => {
      joined = listener;
    },
    // The socket listens already.
    onListening: (ready) => ready(),
    close,
  };
}
