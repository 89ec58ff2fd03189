import type { Database } from '../database.js';

/**
 * GC's lease rows (`gc_lease`, gc/lease.ts): platform-wide by nature, one row per lease
 * name. Reading then writing one (`acquire`) runs in a transaction holding `LockName.lease(name)`.
 */

export async function gcLeaseRow(db: Database, name: string): Promise<{ holder: string; expires_at: string } | undefined> {
  return db.selectFrom('gc_lease').select(['holder', 'expires_at']).where('name', '=', name).executeTakeFirst();
}

/** Makes `holder` the lease's holder until `expiresAt`. */
export async function setGcLease(db: Database, lease: { name: string; holder: string; acquiredAt: string; expiresAt: string }): Promise<void> {
  const values = { name: lease.name, holder: lease.holder, acquired_at: lease.acquiredAt, expires_at: lease.expiresAt };
  await db
    .insertInto('gc_lease')
    .values(values)
    .onConflict((oc) => oc.column('name').doUpdateSet({ holder: values.holder, acquired_at: values.acquired_at, expires_at: values.expires_at }))
    .execute();
}

/** Extends the lease if `holder` still holds it (one conditional UPDATE). */
export async function renewGcLease(db: Database, name: string, holder: string, expiresAt: string): Promise<void> {
  await db.updateTable('gc_lease').set({ expires_at: expiresAt }).where('name', '=', name).where('holder', '=', holder).execute();
}

/** Gives the lease up if `holder` still holds it. */
export async function releaseGcLease(db: Database, name: string, holder: string): Promise<void> {
  await db.deleteFrom('gc_lease').where('name', '=', name).where('holder', '=', holder).execute();
}
