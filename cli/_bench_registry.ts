/**
 * The `multiproc bench` subcommands, in the order that the usage lists them. Adding one is a
 * module that exports a {@linkcode BenchCommand} and a line here.
 *
 * @module
 */
import type { BenchCommand } from "./_bench.ts";
import { distributedBench } from "./_bench_distributed.ts";
import { gilBench } from "./_bench_gil.ts";
import { poolBench } from "./_bench_pool_command.ts";
import { startBench } from "./_bench_start.ts";

/** Every benchmark that `multiproc bench <name>` runs. */
export const benchCommands: readonly BenchCommand[] = [
  gilBench,
  startBench,
  poolBench,
  distributedBench,
];
