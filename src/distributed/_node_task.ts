/**
 * What a worker node's local pool runs: a group of a job's tasks, in a worker thread or process of
 * that node, never on the node's main thread (which must stay free to renew BullMQ's locks).
 * Worker side.
 *
 * Rules this file keeps:
 * - Arguments are decoded and results encoded here, so that the node's main thread only moves
 *   text.
 * - Every task of the group gets an outcome, whatever the others do: one task's error is its own.
 *
 * @module
 */
import type { TargetSpec } from "../_protocol.ts";
import { TaskMode } from "../_protocol.ts";
import { resolveTarget } from "../_target_resolve.ts";
import { decode, encode, UnsendableValueError } from "./_codec.ts";
import { Outcome, type WireOutcome, type WireTask } from "./_wire.ts";

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * A target as the node hands it over: found, or refused with the reason. `sameFile` says that the
 * module's content hash matched the client's: its export of that name is the function, even where
 * the client's runtime prints its source differently (Bun transpiles what it loads).
 */
export type NodeTarget = { spec: TargetSpec; sameFile?: boolean } | { refused: string };

const resolved = new Map<string, Promise<AnyFunction>>();

function lookUp(spec: TargetSpec, sameFile: boolean): Promise<AnyFunction> {
  const key = JSON.stringify(spec);
  let found = resolved.get(key);
  if (!found) {
    if (resolved.size >= 1000) resolved.clear();
    found = sameFile && spec.module && spec.name
      ? import(spec.module).then((namespace: Record<string, unknown>) => {
        const value = namespace[spec.name];
        return typeof value === "function" ? value as AnyFunction : resolveTarget(spec);
      })
      : resolveTarget(spec);
    resolved.set(key, found);
  }
  return found;
}

function encodeResult(value: unknown): string {
  try {
    return encode(value);
  } catch (error) {
    if (!(error instanceof UnsendableValueError)) throw error;
    throw new TypeError(
      `The task's result cannot be sent back${
        error.path ? ` (at ${error.path})` : ""
      }: ${error.message}`,
    );
  }
}

/**
 * Does nothing: the node runs it once per local worker at start, so that its first tasks find
 * their workers started and this module loaded (a recovered task starts without that delay).
 *
 * @returns Nothing.
 */
export function warmUp(): void {}

/**
 * Runs `tasks` one after the other and gives their outcomes as JSON text.
 *
 * @param targets The job's targets, by index.
 * @param tasks The tasks to run.
 * @returns A JSON array of outcomes, one per task, in order.
 */
export async function runNodeTasks(targets: NodeTarget[], tasks: WireTask[]): Promise<string> {
  const outcomes: WireOutcome[] = [];
  for (const [id, targetIndex, mode, args] of tasks) {
    const started = performance.now();
    let kind: Outcome = Outcome.Value;
    let payload: string;
    try {
      const target = targets[targetIndex];
      if ("refused" in target) throw new TypeError(target.refused);
      const fn = await lookUp(target.spec, target.sameFile === true);
      const values = decode(args) as unknown[];
      let result: unknown;
      if (mode === TaskMode.Apply) result = await fn(...values);
      else {
        const out = new Array(values.length);
        for (let i = 0; i < values.length; i++) {
          out[i] =
            await (mode === TaskMode.Starmap ? fn(...(values[i] as unknown[])) : fn(values[i]));
        }
        result = out;
      }
      payload = encodeResult(result);
    } catch (error) {
      kind = Outcome.Thrown;
      try {
        payload = encode(error);
      } catch {
        payload = encode(new Error(`The task threw a value that cannot be sent: ${String(error)}`));
      }
    }
    outcomes.push([id, kind, payload, performance.now() - started]);
  }
  return JSON.stringify(outcomes);
}
