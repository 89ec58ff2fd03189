import type { ChunkLocation, PackEntry } from '@coffre/core';
import type { CustomerId } from '../../types.js';
import { batches } from '../batch.js';
import type { Database } from '../database.js';

/** Size of a pack of this customer, or null if it is not indexed. */
export async function findPack(db: Database, customerId: CustomerId, packId: string): Promise<{ size: number; chunkCount: number } | null> {
  const row = await db
    .selectFrom('packs')
    .select(['size', 'chunk_count'])
    .where('customer_id', '=', customerId)
    .where('id', '=', packId)
    .executeTakeFirst();
  return row ? { size: Number(row.size), chunkCount: Number(row.chunk_count) } : null;
}

/**
 * Indexes a pack whose object is already durable, in one transaction. Idempotent: the
 * pack row and chunk ids already indexed are left alone (a chunk keeps its first
 * location). Returns how many chunk ids were new.
 */
export async function indexPack(
  db: Database,
  a: { customerId: CustomerId; packId: string; size: number; entries: readonly PackEntry[]; now: string },
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await trx
      .insertInto('packs')
      .values({ customer_id: a.customerId, id: a.packId, size: a.size, chunk_count: a.entries.length, created_at: a.now })
      .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
      .execute();
    let inserted = 0;
    // 7 parameters a row: 100 rows stay far below every dialect's parameter limit.
    for (const batch of batches(a.entries, 100)) {
      const res = await trx
        .insertInto('chunks')
        .values(
          batch.map((e) => ({ customer_id: a.customerId, id: e.id, pack_id: a.packId, offset: e.offset, length: e.length, sha256: e.sha256, created_at: a.now })),
        )
        .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
        .executeTakeFirst();
      inserted += Number(res.numInsertedOrUpdatedRows ?? 0n);
    }
    return inserted;
  });
}

/** Where each of `ids` is stored for this customer (ids may repeat; absent ones are missing from the map). */
export async function locateChunks(db: Database, customerId: CustomerId, ids: readonly string[]): Promise<Map<string, ChunkLocation>> {
  const found = new Map<string, ChunkLocation>();
  for (const batch of batches([...new Set(ids)])) {
    const rows = await db
      .selectFrom('chunks')
      .select(['id', 'pack_id', 'offset', 'length'])
      .where('customer_id', '=', customerId)
      .where('id', 'in', batch)
      .execute();
    for (const r of rows) found.set(r.id, { pack: r.pack_id, offset: Number(r.offset), length: Number(r.length) });
  }
  return found;
}

/** The subset of `ids` indexed for this customer. */
export async function existingChunks(db: Database, customerId: CustomerId, ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const batch of batches([...new Set(ids)])) {
    const rows = await db.selectFrom('chunks').select('id').where('customer_id', '=', customerId).where('id', 'in', batch).execute();
    for (const r of rows) found.add(r.id);
  }
  return found;
}
