/** Largest IN-list per query: far below SQLite's and PostgreSQL's parameter limits. */
export const IN_BATCH = 500;

export function* batches<T>(items: readonly T[], size: number = IN_BATCH): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
