import type { Database } from '../database.js';

/**
 * Retention and the recycle bin (retention/retention.ts): policies, the live snapshots a
 * plan decides about, and the bin. Every function is scoped to one customer, except
 * `binnedBefore` (the bin's purge, platform-wide).
 */

/** A customer organisation by name, with its own retention policy (JSON, null = the default). */
export async function customerPolicyByName(db: Database, name: string): Promise<{ id: string; name: string; retention_json: string | null } | undefined> {
  return db.selectFrom('orgs').select(['id', 'name', 'retention_json']).where('name', '=', name).where('type', '=', 'customer').executeTakeFirst();
}

/** The customer's own retention policy; undefined when there is no such organisation. */
export async function customerPolicy(db: Database, customerId: string): Promise<{ retention_json: string | null } | undefined> {
  return db.selectFrom('orgs').select('retention_json').where('id', '=', customerId).executeTakeFirst();
}

/** The customer's machines with their own policies, by name. */
export async function machinePoliciesOfCustomer(db: Database, customerId: string): Promise<{ id: string; name: string; retention_json: string | null }[]> {
  return db.selectFrom('machines').select(['id', 'name', 'retention_json']).where('customer_id', '=', customerId).orderBy('name').execute();
}

/** Sets (null: removes) the customer's own policy. */
export async function setCustomerPolicy(db: Database, customerId: string, json: string | null, now: string): Promise<void> {
  await db.updateTable('orgs').set({ retention_json: json, updated_at: now }).where('id', '=', customerId).execute();
}

/** Sets (null: removes) the policy of one of the customer's machines; false if it has no such machine. */
export async function setMachinePolicyOfCustomer(db: Database, customerId: string, machineName: string, json: string | null): Promise<boolean> {
  const r = await db.updateTable('machines').set({ retention_json: json }).where('customer_id', '=', customerId).where('name', '=', machineName).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The customer's live snapshots (not in the bin), as retention plans them. */
export async function liveSnapshotsOfCustomer(db: Database, customerId: string): Promise<{ id: string; time: string; machine_id: string; hold_until: string | null }[]> {
  return db.selectFrom('snapshots').select(['id', 'time', 'machine_id', 'hold_until']).where('customer_id', '=', customerId).where('deleted_at', 'is', null).execute();
}

/** The customer's snapshots among `ids` (live or binned), to check before moving them to the bin. */
export async function snapshotsOfCustomerById(db: Database, customerId: string, ids: readonly string[]): Promise<{ id: string; time: string; deleted_at: string | null }[]> {
  return db.selectFrom('snapshots').select(['id', 'time', 'deleted_at']).where('customer_id', '=', customerId).where('id', 'in', [...ids]).execute();
}

/** Moves the customer's live snapshots among `ids` to the bin; returns how many moved. */
export async function binSnapshotsOfCustomer(db: Database, customerId: string, ids: readonly string[], a: { now: string; by: string; reason: string }): Promise<number> {
  const res = await db
    .updateTable('snapshots')
    .set({ deleted_at: a.now, deleted_by: a.by, delete_reason: a.reason })
    .where('customer_id', '=', customerId)
    .where('id', 'in', [...ids])
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** Puts one of the customer's binned snapshots back among the live ones, held until `holdUntil`; false if it is not in the bin. */
export async function unbinSnapshotOfCustomer(db: Database, customerId: string, id: string, holdUntil: string): Promise<boolean> {
  const r = await db
    .updateTable('snapshots')
    .set({ deleted_at: null, deleted_by: null, delete_reason: null, hold_until: holdUntil })
    .where('customer_id', '=', customerId)
    .where('id', '=', id)
    .where('deleted_at', 'is not', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The customer's bin, most recently binned first. */
export async function binOfCustomer(
  db: Database,
  customerId: string,
): Promise<{ id: string; name: string; time: string; deleted_at: string | null; deleted_by: string | null; delete_reason: string | null; logical_size: number }[]> {
  return db
    .selectFrom('snapshots as s')
    .innerJoin('machines as m', 'm.id', 's.machine_id')
    .select(['s.id', 'm.name', 's.time', 's.deleted_at', 's.deleted_by', 's.delete_reason', 's.logical_size'])
    .where('s.customer_id', '=', customerId)
    .where('s.deleted_at', 'is not', null)
    .orderBy('s.deleted_at', 'desc')
    .orderBy('s.time', 'desc')
    .execute();
}

/** The customer's snapshots binned before `before` (index snapshots_customer_bin_idx). */
export async function binnedBeforeOfCustomer(db: Database, customerId: string, before: string): Promise<{ customer_id: string; id: string }[]> {
  return db.selectFrom('snapshots').select(['customer_id', 'id']).where('customer_id', '=', customerId).where('deleted_at', 'is not', null).where('deleted_at', '<', before).execute();
}

/** Deletes one of the customer's snapshot rows if it is still binned before `before`; false if restored meanwhile. */
export async function purgeBinnedSnapshotOfCustomer(db: Database, customerId: string, id: string, before: string): Promise<boolean> {
  const res = await db.deleteFrom('snapshots').where('customer_id', '=', customerId).where('id', '=', id).where('deleted_at', '<', before).executeTakeFirst();
  return Number(res.numDeletedRows) === 1;
}

/** Up to `limit` ids of the customer's snapshots (binned or live) starting with `prefix` (lower-case hex, like the ids). */
export async function snapshotIdsByPrefixOfCustomer(db: Database, customerId: string, prefix: string, binned: boolean, limit: number): Promise<string[]> {
  const q = db.selectFrom('snapshots').select('id').where('customer_id', '=', customerId).where('id', 'like', `${prefix}%`);
  const rows = await (binned ? q.where('deleted_at', 'is not', null) : q.where('deleted_at', 'is', null)).limit(limit).execute();
  return rows.map((r) => r.id);
}
