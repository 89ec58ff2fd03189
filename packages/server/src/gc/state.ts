import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { TombstoneReason } from '../db/schema.js';

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

export interface TombstoneRow {
  readonly id: string;
  readonly size: number;
  readonly reason: TombstoneReason;
  readonly deleteAfter: string;
  readonly objectDeletedAt: string | null;
}

/** The tombstone of a pack id, if GC ever removed it from the index (such an id is never indexed again). */
export async function findTombstone(db: Database, customerId: string, packId: string): Promise<TombstoneRow | null> {
  const r = await db
    .selectFrom('pack_tombstones')
    .select(['id', 'size', 'reason', 'delete_after', 'object_deleted_at'])
    .where('customer_id', '=', customerId)
    .where('id', '=', packId)
    .executeTakeFirst();
  return r ? { id: r.id, size: Number(r.size), reason: r.reason, deleteAfter: r.delete_after, objectDeletedAt: r.object_deleted_at } : null;
}

/** Records that a pack left the index; the object may be deleted from `deleteAfter` on. Idempotent. */
export async function insertTombstone(
  trx: Database,
  t: { customerId: string; packId: string; size: number; reason: TombstoneReason; replacedBy?: string | null; now: string; deleteAfter: string },
): Promise<void> {
  await trx
    .insertInto('pack_tombstones')
    .values({
      customer_id: t.customerId,
      id: t.packId,
      size: t.size,
      reason: t.reason,
      replaced_by: t.replacedBy ?? null,
      deleted_at: t.now,
      delete_after: t.deleteAfter,
      object_deleted_at: null,
    })
    .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
    .execute();
}
