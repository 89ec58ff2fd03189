import type { CompiledQuery } from 'kysely';

/**
 * Batches whose sizes are all powers of two: full batches of `max` (a power of two), then
 * the rest split by its binary digits (437 → 256, 128, 32, 16, 4, 1). A query whose shape
 * depends on the batch size then has at most log2(max) + 1 shapes, each compiled and
 * prepared once (see `QueryTemplates`), instead of a new SQL text for every leftover size.
 */
export function* pow2Batches<T>(items: readonly T[], max: number): Generator<T[]> {
  if (!(max >= 1) || (max & (max - 1)) !== 0) throw new RangeError(`batch size ${max} is not a power of two`);
  let i = 0;
  for (; i + max <= items.length; i += max) yield items.slice(i, i + max);
  for (let size = max >> 1; size >= 1; size >>= 1) {
    if (items.length - i >= size) {
      yield items.slice(i, i + size);
      i += size;
    }
  }
}

/**
 * Queries compiled by Kysely once per (database, shape) and then re-run with fresh
 * parameters. Building and compiling Kysely's tree for a 512-row insert costs far more
 * than running it; the SQL text is still produced by the database's own dialect, so it
 * stays portable, and a stable text lets the driver reuse its prepared statement.
 *
 * `build` returns the compiled query together with the parameters it must have produced
 * from its placeholder values, so a change in Kysely's parameter order fails loudly on
 * first use instead of silently scrambling columns.
 */
export class QueryTemplates {
  private readonly byDb = new WeakMap<object, Map<string, CompiledQuery>>();

  get<R>(db: object, shape: string, build: () => { compiled: CompiledQuery<R>; expected: readonly unknown[] }): CompiledQuery<R> {
    let shapes = this.byDb.get(db);
    if (!shapes) this.byDb.set(db, (shapes = new Map()));
    const cached = shapes.get(shape);
    if (cached) return cached as CompiledQuery<R>;
    const { compiled, expected } = build();
    const got = compiled.parameters;
    if (got.length !== expected.length || got.some((v, i) => v !== expected[i])) {
      throw new Error(`query template ${shape}: Kysely produced parameters in an unexpected order`);
    }
    shapes.set(shape, compiled);
    return compiled;
  }
}

/** The template re-run with other parameters (same SQL, same order). */
export function withParameters<R>(template: CompiledQuery<R>, parameters: readonly unknown[]): CompiledQuery<R> {
  if (parameters.length !== template.parameters.length) throw new Error(`expected ${template.parameters.length} parameters, got ${parameters.length}`);
  return { ...template, parameters };
}
