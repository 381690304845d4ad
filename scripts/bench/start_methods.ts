/**
 * Start-up time and memory of spawn, forkserver and threads: the table of `multiproc bench start`,
 * with its options (`--counts 1,8,32`, `--samples 10`, `--memory 4`, `--json`, `--svg FILE`).
 * `start.ts` beside it compares multiproc with a bare `new Worker` and `Deno.Command` instead.
 *
 *     deno run -A scripts/bench/start_methods.ts [--counts 1,8,32]
 */
import { main } from "../../cli/main.ts";

if (import.meta.main) {
  Deno.exitCode = await main(["bench", "start", ...Deno.args]);
}
