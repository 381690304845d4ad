/**
 * The entry of a channel relay: a helper process that a parent starts when it may not make Unix
 * sockets itself (a Deno parent without `--allow-write` and `--allow-net`), so that its children
 * still get a sealed channel instead of an inherited descriptor (see `_relay_parent.ts`).
 *
 * The relay makes its folder (mode 0700) and listens, for each child that the parent announces, at
 * a socket of that child's own in it. The first connection there to prove the child's token is the
 * child's channel: the socket file goes at once, and the relay carries bytes between that
 * connection and its own stdin and stdout, which only the parent holds.
 *
 * Rules this file keeps:
 * - The relay runs no code but this: no user module, no program. So nothing else ever holds its
 *   pipes to the parent, and its grants (its folder, and the socket paths named on its command
 *   line) reach no user code.
 * - Its lifeline is its stdin: when the parent exits or is killed, the relay removes its folder and
 *   exits. An interrupt from the terminal is the parent's to act on, not the relay's.
 * - Nothing a connection sends before it has proved itself reaches the parent.
 *
 * @module
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { ByteStream, UnixListener } from "./_channel.ts";
import { sameToken } from "./_token.ts";
import { FrameReader, relayFrame, RelayKind, relayReader, TOKEN_BYTES } from "./_frames.ts";
import { listenUnix, onSignal, stdioStream } from "./_unix_socket.deno.ts";

/** One child's channel as the relay holds it. */
interface Relayed {
  token: Uint8Array;
  path: string;
  listener?: UnixListener;
  unproved: Set<ByteStream>;
  joined?: ByteStream;
}

const folder = process.argv.at(-1)!;
const parent = stdioStream();
const channels = new Map<number, Relayed>();
let ended = false;

function end(code: number): never {
  if (!ended) {
    ended = true;
    try {
      rmSync(folder, { recursive: true, force: true });
    } catch {
      // Removed already.
    }
  }
  return process.exit(code);
}

function tell(kind: number, id: number, data?: Uint8Array): void {
  parent.write(relayFrame(kind, id, data)).catch(() => end(0));
}

/** Stops listening for a child, and removes its socket file. */
function stopListening(relayed: Relayed): void {
  relayed.listener?.close();
  relayed.listener = undefined;
  for (const stream of relayed.unproved) stream.close();
  relayed.unproved.clear();
  try {
    rmSync(relayed.path, { force: true });
  } catch {
    // Gone already.
  }
}

function forget(id: number): void {
  const relayed = channels.get(id);
  if (!relayed) return;
  channels.delete(id);
  stopListening(relayed);
  relayed.joined?.close();
}

/** Reads a connection's first frame: the token of the child that it claims to be. */
function admit(id: number, relayed: Relayed, stream: ByteStream): void {
  if (channels.get(id) !== relayed || relayed.joined) return stream.close();
  relayed.unproved.add(stream);
  let proved = false;
  const reader = new FrameReader((payload) => {
    if (!sameToken(payload, relayed.token)) throw new Error("Wrong token");
    proved = true;
  }, TOKEN_BYTES);
  // The token's frame, and not a byte more, is read here: what follows is the child's.
  let unread = 4 + TOKEN_BYTES;
  let joined = false;
  stream.read((chunk) => {
    if (joined) return tell(RelayKind.DATA, id, chunk.slice());
    const take = Math.min(unread, chunk.length);
    unread -= take;
    try {
      reader.push(chunk.subarray(0, take));
    } catch {
      relayed.unproved.delete(stream);
      return stream.close();
    }
    if (!proved) return;
    relayed.unproved.delete(stream);
    stopListening(relayed);
    relayed.joined = stream;
    joined = true;
    tell(RelayKind.JOINED, id);
    if (take < chunk.length) tell(RelayKind.DATA, id, chunk.slice(take));
  }, () => {
    relayed.unproved.delete(stream);
    if (!joined || channels.get(id) !== relayed) return;
    channels.delete(id);
    tell(RelayKind.END, id);
  });
}

function expect(id: number, token: Uint8Array): void {
  if (channels.has(id) || token.length !== TOKEN_BYTES) return tell(RelayKind.FAILED, id);
  const relayed: Relayed = {
    token: token.slice(),
    path: join(folder, String(id)),
    unproved: new Set(),
  };
  channels.set(id, relayed);
  try {
    relayed.listener = listenUnix(relayed.path, (stream) => admit(id, relayed, stream));
  } catch {
    channels.delete(id);
    return tell(RelayKind.FAILED, id);
  }
  tell(RelayKind.LISTENING, id);
}

const reader = relayReader((kind, id, data) => {
  switch (kind) {
    case RelayKind.EXPECT:
      return expect(id, data);
    case RelayKind.DATA:
      // Bytes for a child that has gone are dropped: its end is on its way to the parent.
      channels.get(id)?.joined?.write([data.slice()]).catch(() => {});
      return;
    case RelayKind.CLOSE:
      return forget(id);
  }
});

onSignal("SIGINT", () => {});
onSignal("SIGTERM", () => end(0));
mkdirSync(folder, { mode: 0o700 });
parent.read((chunk) => {
  try {
    reader.push(chunk);
  } catch {
    end(1);
  }
}, () => end(0));
