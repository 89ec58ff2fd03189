import type { Database } from '../database.js';
import { LockName, writeTransaction } from '../engine.js';

/**
 * Leader leases with a fencing number (`job_leases`) and the scheduled job times claimed
 * under them (`job_ticks`), for several server instances sharing one database.
 *
 * A lease row is never deleted: releasing it only makes it expired, so its `fence` keeps
 * growing for the life of the installation (each change of holder adds one). Whoever holds
 * the lease at a given fence is the only one who could claim ticks with that fence.
 *
 * Every section that reads a lease row and acts on it runs in a write transaction holding
 * `LockName.lease(name)`: acquiring, renewing, releasing and claiming a tick are thus
 * serialised across all instances (SQLite: its single write lock; PostgreSQL: an advisory
 * lock). Times are wall-clock ISO strings (UTC) given by the caller; expiry is compared as
 * instants in JS, never as text in SQL.
 */

export interface LeaseGrant {
  /** The fencing number this holder now holds the lease at. */
  readonly fence: number;
  readonly acquiredAt: string;
  readonly expiresAt: string;
  /** The holder it was taken from (an expired or released lease), null for a new row or a renewal. */
  readonly previousHolder: string | null;
}

export interface LeaseRow {
  readonly name: string;
  readonly holder: string;
  readonly fence: number;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}

/** What a released lease expires at: before any clock's now, however skewed. */
const RELEASED_AT = new Date(0).toISOString();

const isLive = (expiresAt: string, now: Date): boolean => Date.parse(expiresAt) > now.getTime();

/**
 * Takes the lease when it is absent, expired or already this holder's (then it is only
 * extended); null when another holder's lease is still running. A change of holder moves
 * the fence one up (1 for a new row); the same holder keeps its fence.
 */
export async function acquireLease(db: Database, name: string, holder: string, now: Date, leaseMs: number): Promise<LeaseGrant | null> {
  const nowIso = now.toISOString();
  const expiresAt = new Date(now.getTime() + leaseMs).toISOString();
  return writeTransaction(db, [LockName.lease(name)], async (trx) => {
    const row = await trx.selectFrom('job_leases').selectAll().where('name', '=', name).executeTakeFirst();
    if (row === undefined) {
      await trx.insertInto('job_leases').values({ name, holder, fence: 1, acquired_at: nowIso, expires_at: expiresAt }).execute();
      return { fence: 1, acquiredAt: nowIso, expiresAt, previousHolder: null };
    }
    const fence = Number(row.fence);
    if (row.holder === holder) {
      const r = await trx.updateTable('job_leases').set({ expires_at: expiresAt }).where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return null;
      return { fence, acquiredAt: row.acquired_at, expiresAt, previousHolder: null };
    }
    if (isLive(row.expires_at, now)) return null;
    // The lock makes the row unchangeable since it was read; the conditions only make sure.
    const r = await trx
      .updateTable('job_leases')
      .set({ holder, fence: fence + 1, acquired_at: nowIso, expires_at: expiresAt })
      .where('name', '=', name)
      .where('holder', '=', row.holder)
      .where('fence', '=', fence)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return null;
    return { fence: fence + 1, acquiredAt: nowIso, expiresAt, previousHolder: row.holder };
  });
}

/**
 * Extends the lease if it is still this holder's at this fence (expired or not: nobody
 * took it in between, or the fence would have moved). Returns the new expiry, or null when
 * the lease is lost.
 */
export async function renewLease(db: Database, name: string, holder: string, fence: number, now: Date, leaseMs: number): Promise<string | null> {
  const expiresAt = new Date(now.getTime() + leaseMs).toISOString();
  const r = await writeTransaction(db, [LockName.lease(name)], (trx) =>
    trx.updateTable('job_leases').set({ expires_at: expiresAt }).where('name', '=', name).where('holder', '=', holder).where('fence', '=', fence).executeTakeFirst(),
  );
  return Number(r.numUpdatedRows) > 0 ? expiresAt : null;
}

/** Gives the lease up at once if this holder still has it (the row and its fence stay). True when it was held. */
export async function releaseLease(db: Database, name: string, holder: string, fence: number): Promise<boolean> {
  const r = await writeTransaction(db, [LockName.lease(name)], (trx) =>
    trx.updateTable('job_leases').set({ expires_at: RELEASED_AT }).where('name', '=', name).where('holder', '=', holder).where('fence', '=', fence).executeTakeFirst(),
  );
  return Number(r.numUpdatedRows) > 0;
}

/** The lease row as it is (for logs and tests), or undefined when nobody ever took it. */
export async function readLease(db: Database, name: string): Promise<LeaseRow | undefined> {
  const row = await db.selectFrom('job_leases').selectAll().where('name', '=', name).executeTakeFirst();
  return row && { name: row.name, holder: row.holder, fence: Number(row.fence), acquiredAt: row.acquired_at, expiresAt: row.expires_at };
}

/**
 * - claimed: this holder runs the job for this tick;
 * - already-claimed: someone (another instance, or this one) already did;
 * - not-leader: the lease is no longer this holder's at this fence, or it expired.
 */
export type TickClaim = 'claimed' | 'already-claimed' | 'not-leader';

export interface LeaseHolding {
  readonly name: string;
  readonly holder: string;
  readonly fence: number;
}

/**
 * Claims one scheduled time of a job, only while `lease` is still held: holder and fence
 * unchanged and not expired at `now`. A leader that lost its lease (paused longer than
 * the lease, say) finds the fence moved and claims nothing.
 */
export async function claimTick(db: Database, lease: LeaseHolding, job: string, tick: string, now: Date): Promise<TickClaim> {
  return writeTransaction(db, [LockName.lease(lease.name)], async (trx) => {
    const row = await trx.selectFrom('job_leases').select(['holder', 'fence', 'expires_at']).where('name', '=', lease.name).executeTakeFirst();
    if (row === undefined || row.holder !== lease.holder || Number(row.fence) !== lease.fence || !isLive(row.expires_at, now)) return 'not-leader';
    const r = await trx
      .insertInto('job_ticks')
      .values({ job, tick, holder: lease.holder, fence: lease.fence, started_at: now.toISOString(), finished_at: null, outcome: null })
      .onConflict((oc) => oc.columns(['job', 'tick']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0 ? 'claimed' : 'already-claimed';
  });
}

export type TickOutcome = 'ok' | 'failed';

/** Records how a claimed tick ended. */
export async function finishTick(db: Database, job: string, tick: string, holder: string, outcome: TickOutcome, finishedAt: Date): Promise<void> {
  await db.updateTable('job_ticks').set({ finished_at: finishedAt.toISOString(), outcome }).where('job', '=', job).where('tick', '=', tick).where('holder', '=', holder).execute();
}

/** Deletes the ticks scheduled before `before`; returns how many. */
export async function pruneTicks(db: Database, before: Date): Promise<number> {
  const r = await db.deleteFrom('job_ticks').where('tick', '<', before.toISOString()).executeTakeFirst();
  return Number(r.numDeletedRows);
}
