import { sql } from 'kysely';
import { SESSION_IDLE_MS } from '../../gc/config.js';
import { staleBefore, type SessionTimes } from '../../gc/cutoff.js';
import type { CustomerId, MachineId } from '../../types.js';
import type { Database } from '../database.js';

/**
 * Upload sessions (docs/GC.md §Upload sessions): one per machine, opened by the first
 * chunk query or pack upload of a backup, refreshed by the next ones, closed by the
 * machine's snapshot commit, abandoned after SESSION_IDLE_MS without a request. GC keeps
 * every chunk touched since the start of the customer's oldest open session.
 *
 * Called before the request touches any chunk, so the session's start is never later
 * than a touch it covers. Read-only in the common case (a session refreshed in the last
 * TOUCH_GRANULARITY_MS).
 */
export async function openUploadSession(db: Database, customerId: CustomerId, machineId: MachineId, now: Date): Promise<void> {
  const iso = now.toISOString();
  const row = await db
    .selectFrom('upload_sessions')
    .select(['started_at', 'last_seen_at'])
    .where('customer_id', '=', customerId)
    .where('machine_id', '=', machineId)
    .executeTakeFirst();
  const openSince = new Date(now.getTime() - SESSION_IDLE_MS).toISOString();
  if (row && row.last_seen_at >= openSince && row.last_seen_at >= staleBefore(now)) return;
  // New, abandoned, or due for a refresh. An open session keeps its start (a racing
  // request of the same machine can never move it later); an abandoned one starts anew.
  // One upsert whose new values are computed from the stored row, so it needs no lock.
  await db
    .insertInto('upload_sessions')
    .values({ customer_id: customerId, machine_id: machineId, started_at: iso, last_seen_at: iso })
    .onConflict((oc) =>
      oc.columns(['customer_id', 'machine_id']).doUpdateSet({
        started_at: sql<string>`case when upload_sessions.last_seen_at >= ${openSince} then upload_sessions.started_at else excluded.started_at end`,
        last_seen_at: sql<string>`case when upload_sessions.last_seen_at > excluded.last_seen_at then upload_sessions.last_seen_at else excluded.last_seen_at end`,
      }),
    )
    .execute();
}

/** The machine's backup committed: its session is over (called inside the commit's transaction). */
export async function closeUploadSession(db: Database, customerId: CustomerId, machineId: MachineId): Promise<void> {
  await db.deleteFrom('upload_sessions').where('customer_id', '=', customerId).where('machine_id', '=', machineId).execute();
}

/** Every session of the customer, open or abandoned (GC's cutoff decides). */
export async function uploadSessions(db: Database, customerId: string): Promise<SessionTimes[]> {
  const rows = await db.selectFrom('upload_sessions').select(['started_at', 'last_seen_at']).where('customer_id', '=', customerId).execute();
  return rows.map((r) => ({ startedAt: r.started_at, lastSeenAt: r.last_seen_at }));
}

/** Removes sessions of the customer abandoned before `before` (an abandoned session never holds GC back; this only tidies). */
export async function dropAbandonedSessions(db: Database, customerId: string, before: string): Promise<number> {
  const r = await db.deleteFrom('upload_sessions').where('customer_id', '=', customerId).where('last_seen_at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Platform-wide (the purge-temp job): every customer that has an upload session row. */
export async function customersWithUploadSessions(db: Database): Promise<string[]> {
  return (await db.selectFrom('upload_sessions').select('customer_id').distinct().execute()).map((r) => r.customer_id);
}
