import { randomUUID } from 'node:crypto';
import { apiError } from '../../errors.js';
import type { CustomerId } from '../../types.js';
import type { Database } from '../database.js';
import { nextSequence } from './sequences.js';
import type { CustomersTable } from '../schema.js';

export type CustomerRow = CustomersTable & { id: CustomerId };

/** Throws CONFLICT (customerNameTaken) if the name exists; concurrency-safe via the unique index. */
export async function createCustomer(db: Database, name: string, now: string): Promise<CustomerRow> {
  const row = { id: randomUUID() as CustomerId, seq: await nextSequence(db, 'customers'), name, created_at: now };
  const res = await db
    .insertInto('customers')
    .values(row)
    .onConflict((oc) => oc.column('name').doNothing())
    .executeTakeFirst();
  if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('customerNameTaken', { name });
  return row;
}

export async function findCustomerByName(db: Database, name: string): Promise<CustomerRow | undefined> {
  return (await db.selectFrom('customers').selectAll().where('name', '=', name).executeTakeFirst()) as CustomerRow | undefined;
}

export async function listCustomers(db: Database): Promise<(CustomerRow & { machines: number })[]> {
  const rows = await db
    .selectFrom('customers as c')
    .leftJoin('machines as m', (j) => j.onRef('m.customer_id', '=', 'c.id').on('m.revoked_at', 'is', null))
    .select(['c.id', 'c.seq', 'c.name', 'c.created_at', (eb) => eb.fn.count<number>('m.id').as('machines')])
    .groupBy(['c.id', 'c.seq', 'c.name', 'c.created_at'])
    .orderBy('c.name')
    .execute();
  return rows.map((r) => ({ ...r, id: r.id as CustomerId, seq: Number(r.seq), machines: Number(r.machines) }));
}

/** Platform-wide (GC visits every customer): every customer id, in id order. */
export async function allCustomerIds(db: Database): Promise<CustomerId[]> {
  return (await db.selectFrom('customers').select('id').orderBy('id').execute()).map((c) => c.id as CustomerId);
}
