/**
 * The lab: training loop, metrics, seeds, plotting helpers and the benchmark definition API
 * that every paper's miniature uses.
 *
 * @module
 */
export * from "./train.ts";
export * from "./metrics.ts";
export * from "./stats.ts";
export * from "./tensors.ts";
export * from "./plot.ts";
export { defineBenchmark, PROFILES } from "../benchmarks/harness/define.ts";
export type {
  BenchContext,
  BenchmarkDef,
  CheckResult,
  Profile,
  Reported,
  Row,
} from "../benchmarks/harness/define.ts";
