import { sql } from 'kysely';
import type { Database } from '../database.js';
import type { UsageDailyTable } from '../schema.js';

/**
 * Volumes and metering (R13): what a customer protects and stores, the daily metering
 * rows, and the tier changes metering makes. Scoped to one customer, except
 * `usageDaysOfMonth` (the usage report, platform-wide).
 */

/**
 * Protected volume (R13's measure, what the tiers limit): the logical size of the newest
 * snapshot of each of the customer's machines, summed (a revoked machine's data stay
 * protected, and restorable, until retention removes them).
 */
export async function protectedBytes(db: Database, customerId: string): Promise<number> {
  const rows = await sql<{ total: number | null }>`
    select sum(s.logical_size) as total from snapshots s
    where s.customer_id = ${customerId} and s.deleted_at is null
      and s.time = (select max(s2.time) from snapshots s2 where s2.customer_id = s.customer_id and s2.machine_id = s.machine_id and s2.deleted_at is null)`.execute(db);
  return Number(rows.rows[0]?.total ?? 0);
}

/** Stored volume: the size of the customer's packs (encrypted, deduplicated, compressed). */
export async function storedBytes(db: Database, customerId: string): Promise<number> {
  const r = await db.selectFrom('packs').select((eb) => eb.fn.sum<number>('size').as('s')).where('customer_id', '=', customerId).executeTakeFirst();
  return Number(r?.s ?? 0);
}

/** Records (or overwrites) the customer's metering of one day. */
export async function upsertUsageDay(db: Database, row: UsageDailyTable): Promise<void> {
  const update = { protected_bytes: row.protected_bytes, stored_bytes: row.stored_bytes, tier_id: row.tier_id, limit_bytes: row.limit_bytes };
  await db
    .insertInto('usage_daily')
    .values(row)
    .onConflict((oc) => oc.columns(['customer_id', 'date']).doUpdateSet(update))
    .execute();
}

/** Platform-wide (the usage report): every customer's metering rows of a month (YYYY-MM), by date. */
export async function usageDaysOfMonth(db: Database, month: string): Promise<UsageDailyTable[]> {
  return db.selectFrom('usage_daily').selectAll().where('date', '>=', `${month}-01`).where('date', '<=', `${month}-31`).orderBy('date').execute();
}

/** The customer moves to the tier a crossing scheduled (its month has come). */
export async function applyPendingTierOfCustomer(db: Database, customerId: string, tierId: string, now: string): Promise<void> {
  await db.updateTable('orgs').set({ tier_id: tierId, pending_tier_id: null, pending_tier_from: null, updated_at: now }).where('id', '=', customerId).execute();
}

/** The customer went over its tier in `period` (YYYY-MM): emailed once, the next tier (if any) from `from`. */
export async function markTierExceededOfCustomer(db: Database, customerId: string, a: { period: string; nextTierId: string | null; from: string | null; now: string }): Promise<void> {
  await db
    .updateTable('orgs')
    .set({ tier_exceeded_period: a.period, pending_tier_id: a.nextTierId, pending_tier_from: a.from, updated_at: a.now })
    .where('id', '=', customerId)
    .execute();
}
