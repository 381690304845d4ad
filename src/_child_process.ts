/**
 * Starting a child process that runs the child entry, and making sure it never outlives the
 * parent. Both runtimes run this code, with the command line from the platform seam.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { childProcessCommand, onParentExit, unrefTimer } from "./_platform.deno.ts";
import type { ChildHandle, ChildListeners, ChildMessage } from "./_protocol.ts";
import type { ChildCommandOptions } from "./_permissions.ts";

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function stopLiveChildren(): void {
  // The children would also see their channel close and exit; killing them here is quicker.
  for (const child of liveChildren) child.kill("SIGTERM");
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

/**
 * Starts a child process on the child entry, connected by an IPC channel, with the parent's stdout
 * and stderr and without stdin. It exits by itself when the parent is gone.
 *
 * @param options `ref: false` for a child that must not keep the parent alive; `command` for its
 * permissions and heap limit.
 * @param listeners Where its messages and its exit go.
 * @throws {Error} When the runtime cannot be started at all.
 */
export function spawnChildProcess(
  options: { ref: boolean; command?: ChildCommandOptions },
  listeners: ChildListeners,
): ChildProcessHandle {
  const { command, args } = childProcessCommand(options.command);
  const child = spawn(command, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
    windowsHide: true,
  });
  let current = listeners;
  child.on("error", (error) => current.error(error));
  if (child.pid === undefined) {
    throw new Error(`Cannot start a child process with '${command}'`);
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onParentExit(stopLiveChildren);
  }
  liveChildren.add(child);
  // The exit can come before the last messages are read; they are all read once the channel
  // has disconnected, so the exit is reported after both.
  let exitCode: number | undefined;
  let disconnected = false;
  let reported = false;
  const reportWhenBoth = () => {
    if (exitCode === undefined || !disconnected || reported) return;
    reported = true;
    current.exit(exitCode);
  };
  child.on("message", (message: ChildMessage) => current.message(message));
  let disconnectDeadline: ReturnType<typeof setTimeout> | undefined;
  child.on("disconnect", () => {
    disconnected = true;
    clearTimeout(disconnectDeadline);
    reportWhenBoth();
  });
  child.on("exit", (code, signal) => {
    liveChildren.delete(child);
    exitCode = code ?? -(signal ? constants.signals[signal] : 1);
    reportWhenBoth();
    // The channel closes with the process; should its event never come, the exit still counts.
    if (!disconnected) {
      disconnectDeadline = setTimeout(() => {
        disconnected = true;
        reportWhenBoth();
      }, 2000);
      unrefTimer(disconnectDeadline);
    }
  });
  const channel = () => child.channel as { ref?: () => void; unref?: () => void } | undefined;
  const handle: ChildProcessHandle = {
    pid: child.pid,
    send: (message) => {
      child.send(message as Parameters<ChildProcess["send"]>[0]);
    },
    stop: (signal) => {
      child.kill(signal);
    },
    setRef: (ref) => {
      if (ref) {
        child.ref();
        channel()?.ref?.();
      } else {
        child.unref();
        channel()?.unref?.();
      }
    },
    setListeners: (next) => {
      current = next;
    },
    get alive() {
      return exitCode === undefined;
    },
  };
  if (!options.ref) handle.setRef(false);
  return handle;
}
