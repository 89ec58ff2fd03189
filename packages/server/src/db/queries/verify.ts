import type { Database } from '../database.js';
import { packSeqOf } from './sequences.js';

/**
 * The verify job's queries (jobs/verify.ts), one customer at a time: what a run costs
 * follows each customer's own packs (index packs_verify_idx), not the platform's.
 */

/** How many packs the customer stores. */
export async function countPacksOfCustomer(db: Database, customerId: string): Promise<number> {
  return Number((await db.selectFrom('packs').select((eb) => eb.fn.countAll<number>().as('n')).where('customer_id', '=', customerId).executeTakeFirstOrThrow()).n);
}

/** How many of the customer's packs were never verified or last verified before `before`. */
export async function countPacksOfCustomerVerifiedBefore(db: Database, customerId: string, before: string): Promise<number> {
  const r = await db
    .selectFrom('packs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('customer_id', '=', customerId)
    .where((eb) => eb.or([eb('verified_at', 'is', null), eb('verified_at', '<', before)]))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The customer's `limit` packs verified longest ago: never verified first (oldest created first), then by last verification. */
export async function packsToVerifyOfCustomer(db: Database, customerId: string, limit: number): Promise<{ customer_id: string; id: string; size: number; verified_at: string | null }[]> {
  if (limit <= 0) return [];
  const never = await db
    .selectFrom('packs')
    .select(['customer_id', 'id', 'size', 'verified_at'])
    .where('customer_id', '=', customerId)
    .where('verified_at', 'is', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  const rest =
    never.length >= limit
      ? []
      : await db
          .selectFrom('packs')
          .select(['customer_id', 'id', 'size', 'verified_at'])
          .where('customer_id', '=', customerId)
          .where('verified_at', 'is not', null)
          .orderBy('verified_at')
          .orderBy('created_at')
          .limit(limit - never.length)
          .execute();
  return [...never, ...rest].map((r) => ({ ...r, size: Number(r.size) }));
}

/** Records that one of the customer's packs verified at `now`. */
export async function markPackVerified(db: Database, customerId: string, packId: string, now: string): Promise<void> {
  await db.updateTable('packs').set({ verified_at: now }).where('customer_id', '=', customerId).where('id', '=', packId).execute();
}

/** The index's view of one of the customer's packs: each blob's place and SHA-256, in pack order. */
export async function blobsOfPack(db: Database, customerId: string, packId: string): Promise<{ id: Buffer; offset: number; length: number; sha256: Buffer }[]> {
  const rows = await db
    .selectFrom('chunks')
    .select(['id', 'offset', 'length', 'sha256'])
    .where('pack_seq', '=', (eb) => packSeqOf(eb, customerId, packId))
    .orderBy('offset')
    .execute();
  return rows.map((r) => ({ id: r.id, offset: Number(r.offset), length: Number(r.length), sha256: r.sha256 }));
}
