/**
 * Starting a child process that runs the child entry, and making sure it never outlives the
 * parent. `Process` and the process pools use it; both runtimes run the same code, with the
 * command line from the platform seam.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { childProcessCommand, onParentExit } from "./_platform.deno.ts";
import type { ChildHandle, ChildListeners, ChildMessage } from "./_protocol.ts";

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function stopLiveChildren(): void {
  // The children would also see their channel close and exit; killing them here is quicker.
  for (const child of liveChildren) child.kill("SIGTERM");
}

/**
 * Starts a child process on the child entry, connected by an IPC channel and with the parent's
 * stdout and stderr. A daemon child does not keep the parent's event loop alive.
 *
 * @throws {Error} When the runtime cannot be started at all.
 */
export function startChildProcess(
  options: { daemon: boolean },
  listeners: ChildListeners,
): ChildHandle {
  const { command, args } = childProcessCommand();
  const child = spawn(command, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
    windowsHide: true,
  });
  child.on("error", (error) => listeners.error(error));
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
  const reportWhenBoth = () => {
    if (exitCode !== undefined && disconnected) listeners.exit(exitCode);
  };
  child.on("message", (message: ChildMessage) => listeners.message(message));
  child.on("disconnect", () => {
    disconnected = true;
    reportWhenBoth();
  });
  child.on("exit", (code, signal) => {
    liveChildren.delete(child);
    exitCode = code ?? -(signal ? constants.signals[signal] : 1);
    if (!child.connected) disconnected = true;
    reportWhenBoth();
  });
  if (options.daemon) {
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
  }
  return {
    pid: child.pid,
    send: (message) => {
      child.send(message as Parameters<ChildProcess["send"]>[0]);
    },
    stop: (signal) => {
      child.kill(signal);
    },
  };
}
