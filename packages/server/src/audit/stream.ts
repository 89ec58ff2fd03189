import type { AuditEntry } from './chain.js';
import { exportObject, toCsvRows } from './export.js';

/** CSV export of entries read in pages from the database: header once, then a line per entry. */
export async function* csvChunks(entries: AsyncIterable<AuditEntry>): AsyncGenerator<string> {
  const [header] = toCsvRows([]);
  yield header!;
  let batch: AuditEntry[] = [];
  for await (const e of entries) {
    batch.push(e);
    if (batch.length >= 500) {
      yield [...toCsvRows(batch)].slice(1).join('');
      batch = [];
    }
  }
  if (batch.length > 0) yield [...toCsvRows(batch)].slice(1).join('');
}

/** JSON export: one array, an object per entry with the AuditEntry field names, streamed. */
export async function* jsonChunks(entries: AsyncIterable<AuditEntry>): AsyncGenerator<string> {
  yield '[';
  let first = true;
  for await (const e of entries) {
    yield `${first ? '\n' : ',\n'}${JSON.stringify(exportObject(e))}`;
    first = false;
  }
  yield '\n]\n';
}
