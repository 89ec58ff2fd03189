import type { Database } from '../database.js';
import type { TombstoneReason } from '../schema.js';

/**
 * Pack tombstones (packs GC removed from the index; such an id is never indexed again) and
 * orphan pack objects GC has seen (docs/GC.md). Every function is scoped to one customer.
 */

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

/** Ids of the customer's tombstoned packs whose object is due for deletion and not deleted yet. */
export async function dueTombstonesOfCustomer(db: Database, customerId: string, now: string): Promise<string[]> {
  const rows = await db
    .selectFrom('pack_tombstones')
    .select('id')
    .where('customer_id', '=', customerId)
    .where('object_deleted_at', 'is', null)
    .where('delete_after', '<=', now)
    .execute();
  return rows.map((r) => r.id);
}

/** Records that the object of one of the customer's tombstoned packs was deleted. */
export async function markTombstoneObjectDeleted(db: Database, customerId: string, packId: string, now: string): Promise<void> {
  await db.updateTable('pack_tombstones').set({ object_deleted_at: now }).where('customer_id', '=', customerId).where('id', '=', packId).execute();
}

/** When GC first saw this pack object of the customer without an index row, if it did. */
export async function orphanFirstSeen(db: Database, customerId: string, packId: string): Promise<string | undefined> {
  return (await db.selectFrom('gc_orphans').select('first_seen_at').where('customer_id', '=', customerId).where('pack_id', '=', packId).executeTakeFirst())?.first_seen_at;
}

/** Records an orphan object of the customer (keeps the first sighting if already recorded). */
export async function recordOrphan(db: Database, customerId: string, packId: string, now: string): Promise<void> {
  await db
    .insertInto('gc_orphans')
    .values({ customer_id: customerId, pack_id: packId, first_seen_at: now })
    .onConflict((oc) => oc.columns(['customer_id', 'pack_id']).doNothing())
    .execute();
}

export async function forgetOrphan(db: Database, customerId: string, packId: string): Promise<void> {
  await db.deleteFrom('gc_orphans').where('customer_id', '=', customerId).where('pack_id', '=', packId).execute();
}

/** Pack ids of the customer's recorded orphans. */
export async function orphansOfCustomer(db: Database, customerId: string): Promise<string[]> {
  return (await db.selectFrom('gc_orphans').select('pack_id').where('customer_id', '=', customerId).execute()).map((r) => r.pack_id);
}
