import { randomUUID } from 'node:crypto';
import type { AlertRecord } from '@coffre/core';
import type { Database } from '../db/database.js';
import type { AlertKind, AlertsTable } from '../db/schema.js';
import type { ServerSettings } from '../datadir.js';

export function graceMs(deps: { readonly settings: Pick<ServerSettings, 'observatoryGraceMinutes'> }): number {
  return deps.settings.observatoryGraceMinutes * 60_000;
}

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

export async function closeAlert(db: Database, id: string, now: string): Promise<boolean> {
  const r = await db.updateTable('alerts').set({ closed_at: now }).where('id', '=', id).where('closed_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
