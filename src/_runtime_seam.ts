/**
 * The runtime seam: everything that differs between runtimes, listed once. A runtime provides three
 * modules, each a sibling pair with the same exports: `_platform` (the parent's side: starting
 * threads and child processes, permissions, the process's lifetime), `_child_link` (the child's
 * side: reaching the parent) and `_runtime_errors` (the runtime's own error classes). `*.deno.ts`
 * serves Deno; `*.node.ts` serves Node and Bun, which runs the npm build; the npm build swaps one
 * for the other. Nothing else in the library asks which runtime it runs on, so the specifics of a
 * new runtime go in these files alone.
 *
 * Rules this file keeps:
 * - Types only. The `*Fits` types at the end make the type check fail when a pair drifts from this
 *   list.
 *
 * @module
 */
import type { ChildHandle, ChildListeners, ParentLink } from "./_channel.ts";
import type { ChildCommand, ChildCommandOptions } from "./_permissions.ts";
import type { PermissionsOption } from "./permissions.ts";
import type * as DenoPlatform from "./_platform.deno.ts";
import type * as NodePlatform from "./_platform.node.ts";
import type * as DenoChildLink from "./_child_link.deno.ts";
import type * as NodeChildLink from "./_child_link.node.ts";
import type * as DenoErrors from "./_runtime_errors.deno.ts";
import type * as NodeErrors from "./_runtime_errors.node.ts";

/** What the parent's side of a runtime provides (`_platform.*.ts`). */
export interface ParentSeam {
  /** URL of the module that the user ran, which children import to find exported targets. */
  mainModuleUrl(): string | undefined;
  /** The number of logical CPUs, at least 1. */
  availableCpus(): number;
  /** Whether worker threads take a heap limit. */
  readonly threadHeapLimits: boolean;
  /** The command line (and environment) of a child process, its grants resolved and checked. */
  childProcessCommand(
    options?: ChildCommandOptions,
    what?: string,
    channelPath?: string,
  ): ChildCommand;
  /** The command line of a channel relay that makes `folder` and listens at `sockets` in it. */
  relayProcessCommand(folder: string, sockets: readonly string[]): ChildCommand;
  /** Checks, when a Process or Pool is made, that its children can start as asked. */
  checkChildCommand(options: ChildCommandOptions, what: string): void;
  /** A thread's `permissions` as the runtime's workers take them; undefined for the parent's. */
  threadPermissions(
    value: PermissionsOption | undefined,
    what: string,
  ): Record<string, boolean | string[]> | undefined;
  /** Starts a worker thread running the child entry. */
  startThread(
    options: {
      daemon: boolean;
      name: string;
      maxHeapMb?: number;
      permissions?: Record<string, boolean | string[]>;
    },
    listeners: ChildListeners,
  ): ChildHandle;
  /** Whether this process may start the program at `path`, and it exists. */
  mayRunProgram(path: string): boolean;
  /** Whether this process may make a folder in `folder` and a Unix socket at `path` in it. */
  mayListenAt(path: string, folder: string): boolean;
  /** Runs `hook` once when the process exits. */
  onParentExit(hook: () => void): void;
  /** Lets a timer fire without keeping the process alive for it. */
  unrefTimer(timer: ReturnType<typeof setTimeout>): void;
}

/** What the child's side of a runtime provides (`_child_link.*.ts`). */
export interface ChildSeam {
  /** Connects to the parent, whether the child is a worker thread or a child process. */
  connectToParent(): Promise<ParentLink>;
}

/** The runtime's error classes (`_runtime_errors.*.ts`), so that they cross as themselves. */
export interface ErrorsSeam {
  /** The runtime's error classes by name. */
  runtimeErrorClasses(): Record<string, { prototype: Error }>;
}

type Fits<Seam, Module extends Seam> = Module;

/** Deno's parent side provides the whole {@linkcode ParentSeam}. */
export type DenoParentFits = Fits<ParentSeam, typeof DenoPlatform>;
/** Node's parent side provides the whole {@linkcode ParentSeam}. */
export type NodeParentFits = Fits<ParentSeam, typeof NodePlatform>;
/** Deno's child side provides the whole {@linkcode ChildSeam}. */
export type DenoChildFits = Fits<ChildSeam, typeof DenoChildLink>;
/** Node's child side provides the whole {@linkcode ChildSeam}. */
export type NodeChildFits = Fits<ChildSeam, typeof NodeChildLink>;
/** Deno's error classes provide the whole {@linkcode ErrorsSeam}. */
export type DenoErrorsFits = Fits<ErrorsSeam, typeof DenoErrors>;
/** Node's error classes provide the whole {@linkcode ErrorsSeam}. */
export type NodeErrorsFits = Fits<ErrorsSeam, typeof NodeErrors>;
