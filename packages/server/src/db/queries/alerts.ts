import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { AlertRecord } from '@coffre/core';
import type { Database } from '../database.js';
import type { AlertKind, AlertsTable } from '../schema.js';

/**
 * Alerts (the observatory's about machines, verification's about packs). Functions about
 * a customer's alerts take its id (or ids); the jobs' sweeps over every customer say
 * "platform-wide". Opening is idempotent through the partial unique index on open alerts
 * (one per machine and kind), so none of this needs a lock.
 */

/** Number of open alerts per customer. */
export async function openAlertCounts(db: Database, customerIds: readonly string[]): Promise<{ customerId: string; n: number }[]> {
  if (customerIds.length === 0) return [];
  const rows = await db
    .selectFrom('alerts')
    .select(['customer_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('customer_id', 'in', customerIds)
    .where('closed_at', 'is', null)
    .groupBy('customer_id')
    .execute();
  return rows.map((r) => ({ customerId: r.customer_id, n: Number(r.n) }));
}

/** Alerts of the given customers, open ones first then newest first (at most `limit`). */
export async function listAlerts(db: Database, customerIds: readonly string[], opts: { openOnly: boolean; limit: number }): Promise<AlertRecord[]> {
  if (customerIds.length === 0) return [];
  let q = db
    .selectFrom('alerts as a')
    .innerJoin('orgs as o', 'o.id', 'a.customer_id')
    .leftJoin('machines as m', 'm.id', 'a.machine_id')
    .select(['a.id', 'a.customer_id', 'o.name as customer_name', 'a.machine_id', 'm.name as machine_name', 'a.kind', 'a.opened_at', 'a.closed_at', 'a.since', 'a.error_code'])
    .where('a.customer_id', 'in', customerIds);
  if (opts.openOnly) q = q.where('a.closed_at', 'is', null);
  const rows = await q.orderBy((eb) => eb.case().when('a.closed_at', 'is', null).then(0).else(1).end()).orderBy('a.opened_at', 'desc').limit(opts.limit).execute();
  return rows.map((r) => ({
    id: r.id,
    customerId: r.customer_id,
    customerName: r.customer_name,
    machineId: r.machine_id,
    machineName: r.machine_name ?? null,
    kind: r.kind,
    openedAt: r.opened_at,
    closedAt: r.closed_at,
    since: r.since,
    errorCode: r.error_code,
  }));
}

export type AlertRow = AlertsTable;

/** Platform-wide (the observatory job): every open alert. */
export async function openAlertsOf(db: Database): Promise<AlertRow[]> {
  return db.selectFrom('alerts').selectAll().where('closed_at', 'is', null).execute();
}

/**
 * Opens an alert unless one of this kind is already open for the machine; returns the new
 * one or null. Alerts about no machine (`machineId` null, e.g. a pack) name their `subject`;
 * `notifiedAt` marks an opening email the caller enqueues itself.
 */
export async function openAlert(
  db: Database,
  a: { customerId: string; machineId: string | null; kind: AlertKind; now: string; since: string | null; errorCode: string | null; subject?: string; notifiedAt?: string },
): Promise<AlertRow | null> {
  const row: AlertRow = {
    id: randomUUID(),
    customer_id: a.customerId,
    machine_id: a.machineId,
    kind: a.kind,
    opened_at: a.now,
    closed_at: null,
    since: a.since,
    error_code: a.errorCode,
    last_notified_at: a.notifiedAt ?? null,
    reminders_sent: 0,
    subject: a.subject ?? null,
    closed_notified_at: null,
  };
  const r = await db
    .insertInto('alerts')
    .values(row)
    .onConflict((oc) => oc.columns(['machine_id', 'kind']).where('closed_at', 'is', null).doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1 ? row : null;
}

/** Closes an alert by id (ids are unguessable and come from the alert's own row). */
export async function closeAlert(db: Database, id: string, now: string): Promise<boolean> {
  const r = await db.updateTable('alerts').set({ closed_at: now }).where('id', '=', id).where('closed_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Platform-wide (the observatory job): open alerts about a machine whose opening email is still owed. */
export async function alertsOwingOpenedEmail(db: Database): Promise<AlertRow[]> {
  return db.selectFrom('alerts').selectAll().where('closed_at', 'is', null).where('last_notified_at', 'is', null).where('machine_id', 'is not', null).execute();
}

/** Platform-wide (the observatory job): closed alerts about a machine whose "back to normal" email is still owed. */
export async function alertsOwingClosedEmail(db: Database): Promise<AlertRow[]> {
  return db.selectFrom('alerts').selectAll().where('closed_at', 'is not', null).where('closed_notified_at', 'is', null).where('machine_id', 'is not', null).execute();
}

/** The alert's opening email (or a reminder, then counted) was enqueued. */
export async function markAlertNotified(db: Database, id: string, now: string, remindersSent?: number): Promise<void> {
  await db
    .updateTable('alerts')
    .set(remindersSent === undefined ? { last_notified_at: now } : { last_notified_at: now, reminders_sent: remindersSent })
    .where('id', '=', id)
    .execute();
}

/** The alert's "back to normal" email was enqueued. */
export async function markAlertClosedNotified(db: Database, id: string, now: string): Promise<void> {
  await db.updateTable('alerts').set({ closed_notified_at: now }).where('id', '=', id).execute();
}

/** The customer's open alerts, oldest first. */
export async function openAlertsOfCustomer(db: Database, customerId: string): Promise<AlertRow[]> {
  return db.selectFrom('alerts').selectAll().where('customer_id', '=', customerId).where('closed_at', 'is', null).orderBy('opened_at').execute();
}

/** Whether the customer has an open alert about `subject` (e.g. "pack:<id>"). */
export async function hasOpenAlertOnSubject(db: Database, customerId: string, subject: string): Promise<boolean> {
  return (await db.selectFrom('alerts').select('id').where('customer_id', '=', customerId).where('subject', '=', subject).where('closed_at', 'is', null).executeTakeFirst()) !== undefined;
}

/** Closes the customer's open integrity alert about one of its packs; true if one was open. */
export async function closePackAlertOfCustomer(db: Database, customerId: string, packId: string, now: string): Promise<boolean> {
  const closed = await db
    .updateTable('alerts')
    .set({ closed_at: now })
    .where('customer_id', '=', customerId)
    .where('subject', '=', `pack:${packId}`)
    .where('kind', '=', 'verify_mismatch')
    .where('closed_at', 'is', null)
    .executeTakeFirst();
  return Number(closed.numUpdatedRows) > 0;
}

/** The customer's open integrity alerts about a pack it no longer has (subject "pack:<id>"; the pack looked up by its key). */
export async function packAlertsWithoutPackOfCustomer(db: Database, customerId: string): Promise<{ id: string; subject: string | null }[]> {
  return db
    .selectFrom('alerts')
    .select(['id', 'subject'])
    .where('customer_id', '=', customerId)
    .where('kind', '=', 'verify_mismatch')
    .where('closed_at', 'is', null)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('packs').select('packs.id').whereRef('packs.customer_id', '=', 'alerts.customer_id').where(sql<boolean>`packs.id = substr(alerts.subject, 6)`))),
    )
    .execute();
}

/** The customer's open alert of this kind about `subject` (a site, a pack…), if any. */
export async function openAlertOnSubject(db: Database, customerId: string, kind: AlertKind, subject: string): Promise<AlertRow | undefined> {
  return db.selectFrom('alerts').selectAll().where('customer_id', '=', customerId).where('kind', '=', kind).where('subject', '=', subject).where('closed_at', 'is', null).executeTakeFirst();
}
