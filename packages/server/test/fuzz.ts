/**
 * Settings of the server's property-based tests (fast-check), as in packages/core/test/fuzz.ts:
 * COFFRE_FUZZ_RUNS=N runs per property, COFFRE_FUZZ_SEED=S (an integer, or "random"); bounded
 * and reproducible by default (docs/SECURITY.md, "Fuzzing").
 */
import type fc from 'fast-check';

const runs = Number(process.env.COFFRE_FUZZ_RUNS ?? '');
const seedEnv = process.env.COFFRE_FUZZ_SEED;
export const FUZZ_SEED: number | undefined = seedEnv === 'random' ? undefined : seedEnv !== undefined && seedEnv !== '' ? Number(seedEnv) : 0x0c0ffee;

export function fuzzRuns(defaultRuns: number): number {
  return Number.isInteger(runs) && runs > 0 ? runs : defaultRuns;
}

export function fuzzParams<T>(defaultRuns: number): fc.Parameters<T> {
  return { numRuns: fuzzRuns(defaultRuns), ...(FUZZ_SEED !== undefined ? { seed: FUZZ_SEED } : {}), includeErrorInReport: true };
}
