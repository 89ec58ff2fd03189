/**
 * Settings of the property-based tests (fast-check). Bounded by default so that every
 * fuzz-*.test.ts file finishes in seconds; longer campaigns (docs/SECURITY.md, "Fuzzing"):
 *   COFFRE_FUZZ_RUNS=N     runs per property (default: each property's own, small)
 *   COFFRE_FUZZ_SEED=S     an integer seed, or "random" (default: a fixed seed, so CI is reproducible)
 * On a failure fast-check prints the seed and the path of the shrunk counterexample.
 */
import fc from 'fast-check';

const runs = Number(process.env.COFFRE_FUZZ_RUNS ?? '');
const seedEnv = process.env.COFFRE_FUZZ_SEED;
const seed = seedEnv === 'random' ? undefined : seedEnv !== undefined && seedEnv !== '' ? Number(seedEnv) : 0x0c0ffee;

/** fast-check parameters for a property whose default run count is `defaultRuns`. */
export function fuzzParams<T>(defaultRuns: number): fc.Parameters<T> {
  return { numRuns: Number.isInteger(runs) && runs > 0 ? runs : defaultRuns, ...(seed !== undefined ? { seed } : {}), includeErrorInReport: true };
}

/** A byte array with `n` bits flipped at random places, at least one. */
export function flipBits(data: Uint8Array, positions: readonly number[]): Buffer {
  const out = Buffer.from(data);
  const done = new Set<number>();
  for (const p of positions) {
    const bit = p % (out.length * 8);
    if (done.has(bit)) continue;
    done.add(bit);
    out[bit >> 3]! ^= 1 << (bit & 7);
  }
  return out;
}

export type Mutation =
  | { kind: 'flip'; bits: number[] }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; extra: Uint8Array }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

/** Mutations of a valid encoding: the realistic inputs of a parser (corruption, tampering, truncation). */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

/** Applies a mutation; the result always differs from `data` (except an overwrite by equal bytes, which `changed` tells). */
export function mutate(data: Uint8Array, m: Mutation): { out: Buffer; changed: boolean } {
  const b = Buffer.from(data);
  const at = (n: number) => (b.length === 0 ? 0 : n % (b.length + 1));
  let out: Buffer;
  switch (m.kind) {
    case 'flip':
      out = b.length === 0 ? Buffer.from([1]) : flipBits(b, m.bits);
      break;
    case 'truncate':
      out = b.subarray(0, b.length === 0 ? 0 : m.at % b.length);
      break;
    case 'extend':
      out = Buffer.concat([b, m.extra]);
      break;
    case 'overwrite': {
      out = Buffer.from(b);
      const p = b.length === 0 ? 0 : m.at % b.length;
      Buffer.from(m.bytes).copy(out, p);
      break;
    }
    case 'delete': {
      const p = b.length === 0 ? 0 : m.at % b.length;
      out = Buffer.concat([b.subarray(0, p), b.subarray(p + m.n)]);
      break;
    }
    case 'insert': {
      const p = at(m.at);
      out = Buffer.concat([b.subarray(0, p), m.bytes, b.subarray(p)]);
      break;
    }
  }
  return { out, changed: !out.equals(b) };
}
