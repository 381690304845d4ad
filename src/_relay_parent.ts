/**
 * The parent's end of a channel relay: the sealed channel for a parent that may not make Unix
 * sockets itself (a Deno parent without `--allow-write` and `--allow-net`). Such a parent could
 * otherwise only give its children Node's IPC channel, a descriptor that every program a child runs
 * inherits. Instead it starts one helper process, the relay (`_relay_main.ts`), which may make one
 * folder and listen at sockets in it, and nothing more; the relay runs no user code, so its pipes
 * to the parent stay the parent's and its own.
 *
 * For each child the parent sends the relay the child's number and token; the relay listens at a
 * socket of that child's own (`<folder>/<number>`) and says so; only then does the child get its
 * token on stdin, so that it never connects before anything listens. The child joins exactly as
 * it joins a parent's own sealed channel (`_channel_child.ts`); from then the relay carries its
 * bytes. To the parent each relayed channel is a {@linkcode PendingChannel}, as a sealed one is.
 *
 * Rules this file keeps:
 * - One relay serves all of a parent's children, up to {@linkcode SOCKETS_PER_RELAY}, whose socket
 *   paths are granted on its command line; the next children get a new relay. A relay with no
 *   children left goes after a moment, and at once when it has no socket paths left to give.
 * - A relay never keeps the parent alive: its children do, each through its own process.
 * - A relay that dies ends the channels of all its children: those whose channel has not opened yet
 *   get an error, the others see their channel close.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { ByteStream } from "./_channel.ts";
import { type JoinedReader, MAX_SOCKET_PATH, type PendingChannel } from "./_channel_parent.ts";
import { relayFrame, RelayKind, relayReader, writeInOrder } from "./_frames.ts";
import { relayProcessCommand, unrefTimer } from "./_platform.deno.ts";
import { newToken } from "./_token.ts";

/** How many children one relay serves: their socket paths are named on its command line. */
const SOCKETS_PER_RELAY = 64;

/** How long a relay with no children waits for the next before it goes. */
const IDLE_MS = 1000;

/** One child's channel, as the parent holds it. */
interface Relayed {
  ready?: (failure?: Error) => void;
  listening?: boolean;
  failure?: Error;
  joined?: (stream: ByteStream) => JoinedReader;
  reader?: JoinedReader;
  closed: boolean;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A folder name as `mkdtemp` makes them: the next writable parent removes it if it is left. */
function folderName(): string {
  return `multiproc-${process.pid}-${
    Array.from(randomBytes(6), (byte) => LETTERS[byte % LETTERS.length]).join("")
  }`;
}

class Relay {
  readonly folder: string;
  readonly #process: ChildProcess;
  readonly #channels = new Map<number, Relayed>();
  #next = 0;
  #gone = false;
  #dead = false;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(folder: string) {
    this.folder = folder;
    const sockets = Array.from({ length: SOCKETS_PER_RELAY }, (_, i) => join(folder, String(i)));
    const { command, args } = relayProcessCommand(folder, sockets);
    this.#process = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], windowsHide: true });
    const relay = this.#process;
    relay.on(
      "error",
      () => this.#lost(new Error(`Cannot start a channel relay with '${command}'`)),
    );
    relay.on("exit", (code, signal) =>
      this.#lost(
        new Error(
          `The channel relay of this process ended (${
            signal ?? `exit code ${code}`
          }) before the child's channel opened`,
        ),
      ));
    // Its pipes close when it dies, whichever the runtime reports first.
    const broken = () => this.#lost(new Error("The channel relay of this process has closed"));
    relay.stdin!.on("error", broken);
    relay.stdout!.on("close", broken);
    const reader = relayReader((kind, id, data) => this.#heard(kind, id, data));
    relay.stdout!.on("data", (chunk: Uint8Array) => {
      try {
        reader.push(chunk);
      } catch {
        relay.kill("SIGKILL");
      }
    });
    relay.unref();
    for (const pipe of [relay.stdin, relay.stdout]) {
      (pipe as unknown as { unref?: () => void }).unref?.();
    }
  }

  /** Whether the relay can take one more child. */
  get open(): boolean {
    return !this.#gone && this.#next < SOCKETS_PER_RELAY;
  }

  /** Announces a child; its channel listens once the relay says so. */
  channel(): PendingChannel {
    const id = this.#next++;
    const token = newToken();
    const relayed: Relayed = { closed: false };
    this.#channels.set(id, relayed);
    clearTimeout(this.#idle);
    // A relay that has died fails the channel (see `#lost`).
    this.#send(RelayKind.EXPECT, id, token).catch(() => {});
    return {
      path: join(this.folder, String(id)),
      token,
      onJoin: (joined) => {
        relayed.joined = joined;
      },
      onListening: (ready) => {
        if (relayed.listening) return ready();
        if (relayed.failure) return ready(relayed.failure);
        relayed.ready = ready;
      },
      close: () => {
        // A child that has joined keeps its channel: this only stops the waiting.
        if (relayed.reader || relayed.closed) return;
        this.#forget(id, relayed);
      },
    };
  }

  /**
   * Sends one relay message for each item of `data` (one without bytes where there is none), all
   * written at once, so that no other message comes between them.
   */
  #send(kind: number, id: number, ...data: Uint8Array[]): Promise<void> {
    if (this.#gone) return Promise.reject(new Error("The channel is closed"));
    const buffers = data.length === 0
      ? relayFrame(kind, id)
      : data.flatMap((bytes) => relayFrame(kind, id, bytes));
    return writeInOrder(this.#process.stdin!, buffers);
  }

  #heard(kind: number, id: number, data: Uint8Array): void {
    const relayed = this.#channels.get(id);
    if (!relayed) return;
    switch (kind) {
      case RelayKind.LISTENING:
        relayed.listening = true;
        relayed.ready?.();
        return;
      case RelayKind.FAILED:
        relayed.failure = new Error(
          "The channel relay of this process could not listen for a child",
        );
        relayed.ready?.(relayed.failure);
        return this.#forget(id, relayed);
      case RelayKind.JOINED:
        if (!relayed.joined || relayed.closed) return this.#forget(id, relayed);
        relayed.reader = relayed.joined(this.#stream(id, relayed));
        return;
      case RelayKind.DATA:
        relayed.reader?.chunk(data);
        return;
      case RelayKind.END:
        return this.#end(id, relayed);
    }
  }

  /** A joined child's channel as a byte stream, over the relay's pipes. */
  #stream(id: number, relayed: Relayed): ByteStream {
    return {
      write: (buffers) =>
        relayed.closed
          ? Promise.reject(new Error("The channel is closed"))
          : this.#send(RelayKind.DATA, id, ...buffers),
      read: () => {
        // Read through the reader that `joined` returned.
      },
      // The child's own process keeps the parent alive, or not: its channel never does.
      setRef: () => {},
      close: () => {
        if (relayed.closed) return;
        this.#send(RelayKind.CLOSE, id).catch(() => {});
        // As a socket's reader does, this end hears its own close.
        queueMicrotask(() => this.#end(id, relayed));
      },
    };
  }

  #end(id: number, relayed: Relayed): void {
    const reader = relayed.reader;
    this.#forget(id, relayed, false);
    reader?.end();
  }

  #forget(id: number, relayed: Relayed, tell = true): void {
    if (relayed.closed) return;
    relayed.closed = true;
    relayed.reader = undefined;
    this.#channels.delete(id);
    if (tell) this.#send(RelayKind.CLOSE, id).catch(() => {});
    if (this.#channels.size > 0 || this.#gone) return;
    if (this.#next >= SOCKETS_PER_RELAY) return this.#retire();
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#channels.size === 0) this.#retire();
    }, IDLE_MS);
    unrefTimer(this.#idle);
  }

  /** Ends the relay: its stdin closes, and it removes its folder and exits. */
  #retire(): void {
    if (this.#gone) return;
    this.#gone = true;
    if (current === this) current = undefined;
    this.#process.stdin!.end();
  }

  #lost(failure: Error): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#gone = true;
    if (current === this) current = undefined;
    clearTimeout(this.#idle);
    for (const [id, relayed] of [...this.#channels]) {
      if (relayed.reader) {
        this.#end(id, relayed);
        continue;
      }
      if (!relayed.listening) {
        relayed.failure = failure;
        relayed.ready?.(failure);
      }
      this.#forget(id, relayed, false);
    }
  }
}

let current: Relay | undefined;

/**
 * Opens a child's channel through this process's channel relay, starting one where none can take
 * the child; undefined where the socket paths would be too long for a Unix socket or could not be
 * granted as single items.
 */
export function openRelayedChannel(): PendingChannel | undefined {
  if (!current?.open) {
    const folder = join(tmpdir(), folderName());
    if (folder.includes(",") || join(folder, String(SOCKETS_PER_RELAY)).length > MAX_SOCKET_PATH) {
      return undefined;
    }
    try {
      current = new Relay(folder);
    } catch {
      return undefined;
    }
  }
  return current.channel();
}
