import type { Database } from '../database.js';

/**
 * The verify job's queries (jobs/verify.ts). Choosing what to verify is platform-wide (a
 * rolling pass over every customer's packs); what it reads and marks then names the pack's customer.
 */

/** Platform-wide: how many packs are stored. */
export async function countPacks(db: Database): Promise<number> {
  return Number((await db.selectFrom('packs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
}

/** Platform-wide: how many packs were never verified or last verified before `before`. */
export async function countPacksVerifiedBefore(db: Database, before: string): Promise<number> {
  const r = await db
    .selectFrom('packs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where((eb) => eb.or([eb('verified_at', 'is', null), eb('verified_at', '<', before)]))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Platform-wide: the `limit` packs verified longest ago (never verified first), oldest created first among equals. */
export async function packsToVerify(db: Database, limit: number): Promise<{ customer_id: string; id: string; size: number; verified_at: string | null }[]> {
  const rows = await db
    .selectFrom('packs')
    .select(['customer_id', 'id', 'size', 'verified_at'])
    .orderBy((eb) => eb.fn.coalesce('verified_at', eb.val('')))
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, size: Number(r.size) }));
}

/** Records that one of the customer's packs verified at `now`. */
export async function markPackVerified(db: Database, customerId: string, packId: string, now: string): Promise<void> {
  await db.updateTable('packs').set({ verified_at: now }).where('customer_id', '=', customerId).where('id', '=', packId).execute();
}

/** The index's view of one of the customer's packs: each blob's place and SHA-256, in pack order. */
export async function blobsOfPack(db: Database, customerId: string, packId: string): Promise<{ id: Buffer; offset: number; length: number; sha256: Buffer }[]> {
  const rows = await db.selectFrom('chunks').select(['id', 'offset', 'length', 'sha256']).where('customer_id', '=', customerId).where('pack_id', '=', packId).orderBy('offset').execute();
  return rows.map((r) => ({ id: r.id, offset: Number(r.offset), length: Number(r.length), sha256: r.sha256 }));
}
