import { sql } from 'kysely';
import type { Database } from '../database.js';
import { customerSeqOf, packSeqOf } from './sequences.js';

/**
 * Garbage collection's reads and writes of one customer's storage index (docs/GC.md):
 * the GC epoch, the packs and chunk rows it classifies, deletes and repoints, and the
 * snapshot rows of its live set. Every function is scoped to one customer. The deleting
 * and repointing ones run inside a transaction holding `LockName.customer(customerId)`
 * (gc/gc.ts). Tombstones and orphans are in db/queries/tombstones.ts.
 */

/**
 * The customer's GC epoch: bumped by every GC transaction that deletes chunk rows. A
 * snapshot commit reads it before checking its chunks and again in the transaction that
 * inserts the snapshot; if it moved, the check is redone inside that transaction
 * (docs/GC.md §Commit race).
 */
export async function gcEpoch(db: Database, customerId: string): Promise<number> {
  const row = await db.selectFrom('gc_epochs').select('epoch').where('customer_id', '=', customerId).executeTakeFirst();
  return row ? Number(row.epoch) : 0;
}

/** Inside a GC transaction that deletes chunk rows of this customer. */
export async function bumpGcEpoch(trx: Database, customerId: string): Promise<void> {
  await trx
    .insertInto('gc_epochs')
    .values({ customer_id: customerId, epoch: 1 })
    .onConflict((oc) => oc.column('customer_id').doUpdateSet({ epoch: sql<number>`gc_epochs.epoch + 1` }))
    .execute();
}

/** A chunk row as GC sees it. */
export interface GcChunkRow {
  readonly id: Buffer;
  readonly offset: number;
  readonly length: number;
  readonly sha256: Buffer;
  /** ISO time of the last touch, null = the pack's creation (docs/GC.md). */
  readonly touched_at: string | null;
}

/** A pack row as GC sees it. */
export interface GcPackRow {
  readonly id: string;
  readonly size: number;
  readonly created_at: string;
}

/** The chunk rows of one of the customer's packs (through the `chunks(pack_seq)` index). */
export async function chunkRowsOfPack(db: Database, customerId: string, packId: string): Promise<GcChunkRow[]> {
  const rows = await db
    .selectFrom('chunks')
    .select(['id', 'offset', 'length', 'sha256', 'touched_ms'])
    .where('pack_seq', '=', (eb) => packSeqOf(eb, customerId, packId))
    .execute();
  return rows.map((r) => ({
    id: r.id,
    offset: Number(r.offset),
    length: Number(r.length),
    sha256: r.sha256,
    touched_at: r.touched_ms === null ? null : new Date(Number(r.touched_ms)).toISOString(),
  }));
}

/** One page of the customer's packs in id order, after `after` (keyset pagination). */
export async function packPageOfCustomer(db: Database, customerId: string, after: string, limit: number): Promise<GcPackRow[]> {
  const rows = await db.selectFrom('packs').select(['id', 'size', 'created_at']).where('customer_id', '=', customerId).where('id', '>', after).orderBy('id').limit(limit).execute();
  return rows.map((p) => ({ id: p.id, size: Number(p.size), created_at: p.created_at }));
}

/** One of the customer's packs with its creation time, or undefined if it is not indexed. */
export async function gcPackOfCustomer(db: Database, customerId: string, packId: string): Promise<{ size: number; created_at: string } | undefined> {
  const row = await db.selectFrom('packs').select(['size', 'created_at']).where('customer_id', '=', customerId).where('id', '=', packId).executeTakeFirst();
  return row ? { size: Number(row.size), created_at: row.created_at } : undefined;
}

/** Ids per DELETE … IN (…) of dead chunk rows. */
const DELETE_BATCH = 512;

/** Deletes every chunk row of one of the customer's packs. */
export async function deleteChunksOfPack(trx: Database, customerId: string, packId: string): Promise<void> {
  await trx
    .deleteFrom('chunks')
    .where('pack_seq', '=', (eb) => packSeqOf(eb, customerId, packId))
    .execute();
}

/** Deletes the given chunk rows of one of the customer's packs (rows that moved to another pack meanwhile stay). */
export async function deleteChunkRowsOfPack(trx: Database, customerId: string, packId: string, ids: readonly Buffer[]): Promise<void> {
  for (let i = 0; i < ids.length; i += DELETE_BATCH) {
    await trx
      .deleteFrom('chunks')
      .where('pack_seq', '=', (eb) => packSeqOf(eb, customerId, packId))
      .where('id', 'in', ids.slice(i, i + DELETE_BATCH))
      .execute();
  }
}

/** Removes a pack row of the customer. The foreign key from chunks makes this fail if any row still points there. */
export async function deletePackRow(trx: Database, customerId: string, packId: string): Promise<void> {
  await trx.deleteFrom('packs').where('customer_id', '=', customerId).where('id', '=', packId).execute();
}

/** Indexes a pack GC wrote (a repack) unless it already is; `seq` from `nextSequence(db, 'packs')`, taken before the transaction. */
export async function insertRepackedPack(trx: Database, p: { customerId: string; packId: string; seq: number; size: number; chunkCount: number; now: string }): Promise<void> {
  await trx
    .insertInto('packs')
    .values({ customer_id: p.customerId, id: p.packId, seq: p.seq, size: p.size, chunk_count: p.chunkCount, created_at: p.now })
    .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
    .execute();
}

/** Points one of the customer's chunk rows, still in pack `from`, to its copy in pack `to` (its sha256 is unchanged). */
export async function repointChunk(trx: Database, customerId: string, id: Buffer, from: string, to: { packId: string; offset: number; length: number }): Promise<void> {
  await trx
    .updateTable('chunks')
    .set((eb) => ({ pack_seq: packSeqOf(eb, customerId, to.packId), offset: to.offset, length: to.length }))
    .where('customer_seq', '=', (eb) => customerSeqOf(eb, customerId))
    .where('id', '=', id)
    .where('pack_seq', '=', (eb) => packSeqOf(eb, customerId, from))
    .execute();
}

/** Ids of EVERY snapshot row of the customer: live ones and those in the recycle bin alike (GC's live set). */
export async function snapshotIdsOfCustomer(db: Database, customerId: string): Promise<string[]> {
  return (await db.selectFrom('snapshots').select('id').where('customer_id', '=', customerId).execute()).map((r) => r.id);
}

/** What GC checks a snapshot's reference list against, whatever the row's other columns; undefined if the row is gone. */
export async function snapshotRefsOfCustomer(db: Database, customerId: string, snapshotId: string): Promise<{ refsSha256: string; refCount: number } | undefined> {
  const row = await db.selectFrom('snapshots').select(['manifest_json', 'ref_count']).where('customer_id', '=', customerId).where('id', '=', snapshotId).executeTakeFirst();
  if (!row) return undefined;
  const { refsSha256 } = JSON.parse(row.manifest_json) as { refsSha256: string };
  return { refsSha256, refCount: Number(row.ref_count) };
}
