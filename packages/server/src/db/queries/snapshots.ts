import type { ManifestUpload } from '@coffre/core';
import type { CustomerId, MachineId } from '../../types.js';
import type { Database } from '../database.js';

export interface SnapshotRow {
  readonly id: string;
  readonly time: string;
  readonly machineId: MachineId;
  readonly machineName: string;
  readonly manifest: ManifestUpload;
}

export async function snapshotExists(db: Database, customerId: CustomerId, id: string): Promise<boolean> {
  const row = await db.selectFrom('snapshots').select('id').where('customer_id', '=', customerId).where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

/** Whether `id` is a committed snapshot of this machine (of this customer); another machine's counts as absent. */
export async function machineSnapshotExists(db: Database, customerId: CustomerId, machineId: MachineId, id: string): Promise<boolean> {
  const row = await db.selectFrom('snapshots').select('id').where('customer_id', '=', customerId).where('id', '=', id).where('machine_id', '=', machineId).executeTakeFirst();
  return row !== undefined;
}

/** Inserts the snapshot row; false if the id is already used by this customer (the caller answers CONFLICT). */
export async function insertSnapshot(
  db: Database,
  a: { customerId: CustomerId; machineId: MachineId; manifest: ManifestUpload; time: string },
): Promise<boolean> {
  const res = await db
    .insertInto('snapshots')
    .values({
      customer_id: a.customerId,
      id: a.manifest.id,
      machine_id: a.machineId,
      parent: a.manifest.parent,
      time: a.time,
      manifest_json: JSON.stringify(a.manifest),
      ref_count: a.manifest.refCount,
      logical_size: a.manifest.logicalSize,
    })
    .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n) === 1;
}

function baseQuery(db: Database, customerId: CustomerId) {
  return db
    .selectFrom('snapshots as s')
    .innerJoin('machines as m', 'm.id', 's.machine_id')
    .select(['s.id', 's.time', 's.machine_id', 'm.name as machine_name', 's.manifest_json'])
    .where('s.customer_id', '=', customerId)
    // Snapshots in the recycle bin are invisible to agents until an administrator restores them.
    .where('s.deleted_at', 'is', null);
}

function toRow(r: { id: string; time: string; machine_id: string; machine_name: string; manifest_json: string }): SnapshotRow {
  return { id: r.id, time: r.time, machineId: r.machine_id as MachineId, machineName: r.machine_name, manifest: JSON.parse(r.manifest_json) as ManifestUpload };
}

export async function getSnapshot(db: Database, customerId: CustomerId, id: string): Promise<SnapshotRow | null> {
  const r = await baseQuery(db, customerId).where('s.id', '=', id).executeTakeFirst();
  return r ? toRow(r) : null;
}

/** Oldest first; ties (same millisecond) broken by id so the order is stable. */
export async function listSnapshots(db: Database, customerId: CustomerId, machineName?: string): Promise<SnapshotRow[]> {
  let q = baseQuery(db, customerId);
  if (machineName !== undefined) q = q.where('m.name', '=', machineName);
  const rows = await q.orderBy('s.time').orderBy('s.id').execute();
  return rows.map(toRow);
}

/**
 * Removes a snapshot row (GC test/admin utility `forgetSnapshot`, and the recycle bin's
 * purge): its chunks become garbage for the next GC. True if a row was removed.
 */
export async function deleteSnapshot(db: Database, customerId: CustomerId, id: string): Promise<boolean> {
  const r = await db.deleteFrom('snapshots').where('customer_id', '=', customerId).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/** Server time of each machine's newest live snapshot, over the given customers' machines. */
export async function latestSnapshotTimePerMachine(db: Database, customerIds: readonly string[]): Promise<Map<string, string>> {
  const rows = await db
    .selectFrom('snapshots')
    .select(['machine_id', (eb) => eb.fn.max('time').as('t')])
    .where('customer_id', 'in', customerIds)
    .where('deleted_at', 'is', null)
    .groupBy('machine_id')
    .execute();
  return new Map(rows.map((r) => [r.machine_id, r.t as string]));
}
