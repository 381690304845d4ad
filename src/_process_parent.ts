/**
 * The parent's side of a child process: starting one that runs the child entry, and making sure it
 * never outlives the parent. Both runtimes run this code, with the command line from the platform
 * seam.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import process from "node:process";
import { childProcessCommand, mayRunProgram, onParentExit, unrefTimer } from "./_platform.deno.ts";
import type { ByteStream, ChildHandle, ChildListeners } from "./_channel.ts";
import { openChannel, type PendingChannel } from "./_channel_parent.ts";
import { openRelayedChannel } from "./_relay_parent.ts";
import { newToken, sameToken } from "./_token.ts";
import {
  decodeMessage,
  encodeMessage,
  FrameReader,
  ipcToken,
  joinBytes,
  needsV8,
} from "./_frames.ts";
import { v8 } from "./_v8.deno.ts";
import type { ChildMessage } from "./_protocol.ts";
import type { ChildCommandOptions } from "./_permissions.ts";

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function stopLiveChildren(): void {
  // The children would also see their channel close and exit; killing them here is quicker.
  for (const child of liveChildren) child.kill("SIGTERM");
}

const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv"];
let setprivPath: string | null | undefined;

/**
 * The words that make a child die with its parent whatever the child is doing: util-linux's
 * `setpriv --pdeathsig SIGKILL`, which sets Linux's parent-death signal and then starts the child.
 * The child's own lifeline (its channel closing) runs on its event loop, which a child busy in a
 * synchronous loop never reaches; the kernel's signal needs no help from the child.
 *
 * The kernel sends that signal when the thread that started the child ends, not only the process.
 * A child started from a worker thread (a `Thread`, a `ThreadPool` task) is ended with that thread
 * anyway (`stopLiveChildren` runs when it closes), so the signal changes nothing there but makes
 * sure of it, and of the child's end when the whole process is killed. A child where `setpriv` is
 * missing or this process may not run it relies on its own lifeline alone.
 */
function parentDeathWords(): string[] {
  if (process.platform !== "linux") return [];
  if (setprivPath === undefined) setprivPath = SETPRIV_PATHS.find(mayRunProgram) ?? null;
  return setprivPath === null ? [] : [setprivPath, "--pdeathsig", "SIGKILL", "--"];
}

/**
 * Whether a child has died, or is about to die of a SIGKILL already sent, though its exit has not
 * reached the event loop yet: the kernel's view, where the process table can be read (Linux).
 */
function hasDied(pid: number): boolean {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    // Gone altogether, or /proc cannot be read here: then the exit event is all there is to go by.
    return false;
  }
  if (/^State:\s*[ZX]/m.test(status)) return true;
  // A SIGKILL sent to the whole process waits in its shared pending set (bit 9 is mask 0x100).
  const pending = /^ShdPnd:\s*([0-9a-f]+)/m.exec(status);
  return pending !== null && (BigInt(`0x${pending[1]}`) & 0x100n) !== 0n;
}

/** A child process whose listeners can change hands, as a forkserver spare's do. */
export interface ChildProcessHandle extends ChildHandle {
  readonly pid: number;
  /** Whether the child keeps the parent's event loop alive. */
  setRef(ref: boolean): void;
  /** Sends this child's events to `listeners` from now on. */
  setListeners(listeners: ChildListeners): void;
  /** True until the child has exited. */
  readonly alive: boolean;
}

/** How long after a child's exit its channel and stderr may take to close. */
const DISCONNECT_GRACE_MS = 300;

/** How long a child whose channel has closed may take to exit by itself. */
const CHANNEL_LOSS_GRACE_MS = 1000;

/** How much of a child's stderr is kept for crash reports. */
const STDERR_TAIL_BYTES = 8192;
const STDERR_TAIL_LINES = 20;

/**
 * Keeps the last bytes that a child wrote to stderr. Bytes, not text, so that a character cut in
 * half by a chunk boundary decodes whole.
 */
class StderrTail {
  #chunks: Uint8Array[] = [];
  #size = 0;

  add(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size - this.#chunks[0].length >= STDERR_TAIL_BYTES) {
      this.#size -= this.#chunks.shift()!.length;
    }
  }

  text(): string {
    const bytes = joinBytes(this.#chunks);
    const lines = new TextDecoder().decode(
      bytes.subarray(Math.max(0, bytes.length - STDERR_TAIL_BYTES)),
    )
      .split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-STDERR_TAIL_LINES).join("\n");
  }
}

/** Whether a child's error is a message sent on the channel of a child that has ended. */
function isClosedChannel(error: Error): boolean {
  const code = (error as { code?: string }).code;
  return code === "EPIPE" || code === "ERR_IPC_CHANNEL_CLOSED";
}

/** How the parent sends on a child's channel, whichever carries it. */
interface ParentChannel {
  send(message: unknown): void;
  setRef(ref: boolean): void;
  /** Lets a dead child's channel go: it holds the parent no more, and nothing waits on it. */
  release(): void;
}

/**
 * The sealed channel (`_channel_parent.ts`): messages sent before the child has joined wait, already
 * serialized, so that a message that cannot be sent throws at once as on any channel.
 */
function sealedChannel(
  pending: PendingChannel,
  onMessage: (message: ChildMessage) => void,
  onError: (error: Error) => void,
  onClose: () => void,
): ParentChannel {
  let stream: ByteStream | undefined;
  let queued: Uint8Array[] | undefined = [];
  let ref = true;
  let released = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    onClose();
  };
  const ignore = () => {};
  pending.onJoin((joined) => {
    stream = joined;
    if (released) joined.close();
    if (!ref) joined.setRef(false);
    if (queued!.length > 0) joined.write(queued!).catch(ignore);
    queued = undefined;
    const reader = new FrameReader((payload) =>
      onMessage(decodeMessage(payload, needsV8(payload) ? v8() : undefined) as ChildMessage)
    );
    return {
      chunk: (chunk) => {
        try {
          reader.push(chunk);
        } catch (error) {
          // A child that breaks the framing can no longer be understood: its channel is cut,
          // which ends it as its parent's death would.
          onError(error as Error);
          joined.close();
        }
      },
      end: close,
    };
  });
  return {
    send: (message) => {
      const buffers = encodeMessage(message, v8())!;
      // A message sent as the child ended finds the channel shut: its exit tells what happened.
      if (queued) queued.push(...buffers);
      else stream!.write(buffers).catch(ignore);
    },
    setRef: (value) => {
      ref = value;
      stream?.setRef(value);
    },
    release: () => {
      released = true;
      pending.close();
      stream?.setRef(false);
      if (queued) close();
    },
  };
}

/**
 * Node's IPC channel, where the sealed one cannot be made (see `openChannel`). The child inherits
 * it as a descriptor, and so do the programs that it runs: the child proves each message its own
 * with the token that it read from its stdin before any user code ran (see `connectViaIpc` in
 * `_node_links.ts`), and any message without it is dropped unheard. Bytes that the runtime cannot
 * read end the child; a frame that a program leaves unfinished holds back what follows it until
 * the child exits.
 */
function ipcChannel(
  child: ChildProcess,
  token: Uint8Array,
  onMessage: (message: ChildMessage) => void,
  onClose: () => void,
): ParentChannel {
  const channel = () => child.channel as { ref?: () => void; unref?: () => void } | undefined;
  const expected = Buffer.from(ipcToken(token), "latin1");
  child.on("message", (envelope: unknown) => {
    if (!Array.isArray(envelope) || envelope.length !== 2) return;
    const [proof, message] = envelope;
    if (typeof proof !== "string" || !sameToken(Buffer.from(proof, "latin1"), expected)) return;
    onMessage(message as ChildMessage);
  });
  child.on("error", (error) => {
    // Bytes that the runtime cannot read leave the rest of the stream unreadable, and the child
    // with nobody to report to: it is ended at once, so that its exit settles its work. (Cutting
    // the channel alone would leave it to fail, loudly, at its next message.)
    if (!isClosedChannel(error) && child.connected) child.kill("SIGKILL");
  });
  child.on("disconnect", onClose);
  return {
    send: (message) => {
      child.send(message as Parameters<ChildProcess["send"]>[0]);
    },
    setRef: (ref) => {
      if (ref) channel()?.ref?.();
      else channel()?.unref?.();
    },
    release: () => channel()?.unref?.(),
  };
}

/**
 * Starts a child process on the child entry, with the parent's stdout and stderr, connected by
 * the sealed channel of `_channel_parent.ts` (or, where this process may not make one, Node's IPC
 * channel). It exits by itself when the parent is gone.
 *
 * @param options `ref: false` for a child that must not keep the parent alive; `command` for its
 * permissions and heap limit. `keepStderrTail` pipes the child's stderr through the parent, byte
 * for byte, keeping its last lines for crash reports (see {@linkcode ChildHandle.stderrTail});
 * otherwise the child writes to the parent's stderr directly.
 * @param listeners Where its messages and its exit go.
 * @throws {Error} When the runtime cannot be started at all.
 */
export function spawnChildProcess(
  options: { ref: boolean; command?: ChildCommandOptions; keepStderrTail?: boolean },
  listeners: ChildListeners,
): ChildProcessHandle {
  // A parent that may not make sockets has them made by its channel relay.
  const sealed = openChannel() ?? openRelayedChannel();
  let runtime;
  try {
    runtime = childProcessCommand(options.command, undefined, sealed?.path);
  } catch (error) {
    sealed?.close();
    throw error;
  }
  const [command, ...args] = [...parentDeathWords(), runtime.command, ...runtime.args];
  const stderr = options.keepStderrTail ? "pipe" : "inherit";
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      env: runtime.env,
      // The sealed channel's token goes through stdin, which then reads as empty.
      // So does the IPC channel's: the child proves its messages with it (see `ipcChannel`).
      stdio: sealed ? ["pipe", "inherit", stderr] : ["pipe", "inherit", stderr, "ipc"],
      ...(sealed ? {} : { serialization: "advanced" as const }),
      windowsHide: true,
    });
  } catch (error) {
    sealed?.close();
    throw error;
  }
  if (child.pid === undefined) {
    // The runtime could not start. Its 'error' event follows; nothing else may answer for it,
    // and the pipes, if any, close unheard.
    child.on("error", () => {});
    child.stdin?.on("error", () => {});
    child.stdin?.destroy();
    child.stderr?.destroy();
    sealed?.close();
    throw new Error(`Cannot start a child process with '${command}'`);
  }
  const token = sealed?.token ?? newToken();
  let current = listeners;
  if (child.stdin) {
    const stdin = child.stdin;
    // A child that dies before reading it leaves the write to fail: its exit says why.
    stdin.on("error", () => {});
    if (!sealed) stdin.end(token);
    // The child connects once it has the token: only when something listens for it.
    sealed?.onListening((failure) => {
      if (!failure) return stdin.end(token);
      stdin.end();
      child.kill("SIGKILL");
      current.error(failure);
    });
  }
  let tail: StderrTail | undefined;
  // Ends when the pipe closes, so that a crash report holds the child's last lines.
  let stderrOpen = false;
  if (options.keepStderrTail && child.stderr) {
    const stderrTail = tail = new StderrTail();
    stderrOpen = true;
    child.stderr.on("data", (chunk: Uint8Array) => {
      stderrTail.add(chunk);
      process.stderr.write(chunk);
    });
    child.stderr.on("close", () => {
      stderrOpen = false;
      reportWhenBoth();
    });
  }
  child.on("error", (error) => {
    // A message sent as the child ended (an answer to its last request) finds the channel shut:
    // that is no failure of the child's, whose exit tells what happened to it.
    if (isClosedChannel(error)) return;
    current.error(error);
  });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onParentExit(stopLiveChildren);
  }
  liveChildren.add(child);
  // The exit can come before the last messages are read; they are all read once the channel
  // has closed, so the exit is reported after both (and after the stderr pipe's end).
  let exitCode: number | undefined;
  let disconnected = false;
  let reported = false;
  let disconnectDeadline: ReturnType<typeof setTimeout> | undefined;
  let lossDeadline: ReturnType<typeof setTimeout> | undefined;
  const reportWhenBoth = () => {
    if (exitCode === undefined || !disconnected || stderrOpen || reported) return;
    reported = true;
    clearTimeout(disconnectDeadline);
    current.exit(exitCode);
  };
  const onMessage = (message: ChildMessage) => current.message(message);
  const onClose = () => {
    disconnected = true;
    reportWhenBoth();
    if (exitCode !== undefined) return;
    // A child whose channel is gone (its relay died, say) can no longer be reached: unless it is
    // on its way out already, it is ended, so that its exit settles its work.
    lossDeadline = setTimeout(() => child.kill("SIGKILL"), CHANNEL_LOSS_GRACE_MS);
    unrefTimer(lossDeadline);
  };
  const channel = sealed
    ? sealedChannel(sealed, onMessage, (error) => current.error(error), onClose)
    : ipcChannel(child, token, onMessage, onClose);
  child.on("exit", (code, signal) => {
    liveChildren.delete(child);
    clearTimeout(lossDeadline);
    exitCode = code ?? -(signal ? constants.signals[signal] : 1);
    reportWhenBoth();
    // The channel closes with the process; should its event never come, the exit still counts.
    // (Deno sometimes never reports the disconnect of a child that exited while a message to it
    // was on its way.) A grandchild that inherited stderr may hold the pipe open. The channel of a
    // dead child must not hold the parent open either: the deadline, short, does until then.
    // A child that died before it joined its sealed channel takes the channel's folder with it.
    channel.release();
    if (!disconnected || stderrOpen) {
      (child.stderr as { unref?: () => void } | null)?.unref?.();
      disconnectDeadline = setTimeout(() => {
        disconnected = true;
        stderrOpen = false;
        reportWhenBoth();
      }, DISCONNECT_GRACE_MS);
    }
  });
  const handle: ChildProcessHandle = {
    pid: child.pid,
    send: (message) => channel.send(message),
    stop: (signal) => {
      child.kill(signal);
    },
    setRef: (ref) => {
      channel.setRef(ref);
      if (ref) {
        child.ref();
        (child.stderr as { ref?: () => void } | null)?.ref?.();
      } else {
        child.unref();
        (child.stderr as { unref?: () => void } | null)?.unref?.();
      }
    },
    setListeners: (next) => {
      current = next;
    },
    stderrTail: () => tail?.text() ?? "",
    get alive() {
      return exitCode === undefined && !hasDied(child.pid!);
    },
  };
  if (!options.ref) handle.setRef(false);
  return handle;
}
