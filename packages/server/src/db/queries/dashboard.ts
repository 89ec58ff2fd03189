import { sql } from 'kysely';
import type { Database } from '../database.js';

/** The console's views of one customer (routes/dashboard): its snapshots and its volumes over time. */

export interface ConsoleSnapshotRow {
  readonly id: string;
  readonly time: string;
  readonly machine_id: string;
  readonly machine_name: string;
  readonly logical_size: number;
  readonly ref_count: number;
  readonly parent: string | null;
}

/** The customer's live snapshots (optionally one machine's), newest first, at most `limit`. */
export async function liveSnapshotsForConsole(db: Database, customerId: string, machineId: string | undefined, limit: number): Promise<ConsoleSnapshotRow[]> {
  let q = db
    .selectFrom('snapshots as s')
    .innerJoin('machines as m', 'm.id', 's.machine_id')
    .select(['s.id', 's.time', 's.machine_id', 'm.name as machine_name', 's.logical_size', 's.ref_count', 's.parent'])
    .where('s.customer_id', '=', customerId)
    .where('s.deleted_at', 'is', null);
  if (machineId) q = q.where('s.machine_id', '=', machineId);
  const rows = await q.orderBy('s.time', 'desc').limit(limit).execute();
  return rows.map((r) => ({ ...r, logical_size: Number(r.logical_size), ref_count: Number(r.ref_count) }));
}

/** Bytes of the customer's packs by day of upload (UTC date), oldest day first. */
export async function packBytesPerDayOfCustomer(db: Database, customerId: string): Promise<{ day: string; bytes: number }[]> {
  const rows = await db
    .selectFrom('packs')
    .select([sql<string>`substr(created_at, 1, 10)`.as('day'), (eb) => eb.fn.sum<number>('size').as('bytes')])
    .where('customer_id', '=', customerId)
    .groupBy(sql`substr(created_at, 1, 10)`)
    .orderBy('day')
    .execute();
  return rows.map((r) => ({ day: r.day, bytes: Number(r.bytes) }));
}

/** Every snapshot row of the customer (the recycle bin's too), oldest first: time, machine and logical size. */
export async function snapshotSizesOfCustomer(db: Database, customerId: string): Promise<{ time: string; machine_id: string; logical_size: number }[]> {
  const rows = await db.selectFrom('snapshots').select(['time', 'machine_id', 'logical_size']).where('customer_id', '=', customerId).orderBy('time').execute();
  return rows.map((r) => ({ ...r, logical_size: Number(r.logical_size) }));
}
