import { randomUUID } from 'node:crypto';
import { apiError } from '../../errors.js';
import type { Database } from '../database.js';
import type { TiersTable } from '../schema.js';

export async function createTier(db: Database, t: { name: string; limitBytes: number; monthlyPriceCents: number }, now: string): Promise<TiersTable> {
  const row: TiersTable = { id: randomUUID(), name: t.name, limit_bytes: t.limitBytes, monthly_price_cents: t.monthlyPriceCents, created_at: now };
  const res = await db.insertInto('tiers').values(row).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
  if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('tierNameTaken', { name: t.name });
  return row;
}

/** The price list, smallest limit first. */
export async function listTiers(db: Database): Promise<TiersTable[]> {
  return (await db.selectFrom('tiers').selectAll().orderBy('limit_bytes').execute()).map((t) => ({ ...t, limit_bytes: Number(t.limit_bytes) }));
}

export async function findTierByName(db: Database, name: string): Promise<TiersTable | undefined> {
  return db.selectFrom('tiers').selectAll().where('name', '=', name).executeTakeFirst();
}

/** A tier of the price list (platform-wide, like every tier query). */
export async function findTier(db: Database, id: string): Promise<TiersTable | undefined> {
  return db.selectFrom('tiers').selectAll().where('id', '=', id).executeTakeFirst();
}
