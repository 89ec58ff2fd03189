import { sql } from 'kysely';
import type { Database } from '../db/database.js';

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
