import type { ExpressionBuilder } from 'kysely';
import type { Database } from '../database.js';
import type { DB } from '../schema.js';

/** Counters of integer keys (`sequences`). */
export type SequenceName = 'customers' | 'packs';

/**
 * Hands out the next number of a counter: unique across every process and instance (the
 * row is updated in place; PostgreSQL holds its row lock until the caller's transaction
 * ends). Numbers are never reused; a rolled-back caller leaves a gap. On PostgreSQL call it
 * outside long transactions (or in a short one of its own): a pack's number is taken before
 * the transaction that indexes the pack, so that indexing packs of different customers is
 * not serialised on this row.
 */
export async function nextSequence(db: Database, name: SequenceName): Promise<number> {
  const row = await db
    .updateTable('sequences')
    .set((eb) => ({ last: eb('last', '+', 1) }))
    .where('name', '=', name)
    .returning('last')
    .executeTakeFirst();
  if (!row) throw new Error(`the ${name} counter is missing from the sequences table: the database was not migrated`);
  return Number(row.last);
}

/** `(select seq from customers where id = ?)`: a customer's number in the chunk index, inside a query. */
export function customerSeqOf(eb: ExpressionBuilder<DB, keyof DB>, customerId: string) {
  return eb.selectFrom('customers').select('seq').where('id', '=', customerId);
}

/** `(select seq from packs where customer_id = ? and id = ?)`: one of the customer's packs by its number, inside a query. */
export function packSeqOf(eb: ExpressionBuilder<DB, keyof DB>, customerId: string, packId: string) {
  return eb.selectFrom('packs').select('seq').where('customer_id', '=', customerId).where('id', '=', packId);
}
