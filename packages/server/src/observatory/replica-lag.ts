import { closeAlert, markAlertClosedNotified, openAlert, openAlertOnSubject } from '../db/queries/alerts.js';
import { findOrg } from '../db/queries/orgs.js';
import { allCustomerSites } from '../db/queries/sites.js';
import type { JobContext, JobItem } from '../jobs/job.js';
import { customerUrl, enqueueFor, recipientsFor } from '../mail/notify.js';
import { alertClosedEmail, alertOpenedEmail, type AlertEmailInput } from '../mail/templates.js';

/**
 * On the primary: a customer whose replica copy is further behind than
 * `replicaLagAlertHours` (the replica reports after each complete pass; a replica that
 * stopped pulling, or fails, stops reporting) gets a `replica_lag` alert, emailed to the
 * operator; it closes, with a "back to normal" email, once the replica has caught up.
 */
export async function checkReplicaLag(ctx: Pick<JobContext, 'db' | 'clock' | 'settings' | 'log'>): Promise<JobItem[]> {
  const now = ctx.clock();
  const iso = now.toISOString();
  const limitMs = ctx.settings.replicaLagAlertHours * 3_600_000;
  const items: JobItem[] = [];
  for (const cs of await allCustomerSites(ctx.db)) {
    if (!cs.replica_site) continue;
    const since = cs.replicated_up_to ?? cs.updated_at; // never replicated: since it was given this replica
    const behind = now.getTime() - Date.parse(since) > limitMs;
    const subject = `site:${cs.replica_site}`;
    const open = await openAlertOnSubject(ctx.db, cs.customer_id, 'replica_lag', subject);
    const org = await findOrg(ctx.db, cs.customer_id);
    const input: AlertEmailInput = { customerName: org?.name ?? cs.customer_id, machineName: null, kind: 'replica_lag', since, openedAt: open?.opened_at ?? iso, errorCode: null, consoleUrl: customerUrl(ctx.settings.publicUrl, cs.customer_id) };
    const operator = await recipientsFor(ctx.db, cs.customer_id, { customer: false, reseller: false, operator: true });
    if (behind && !open) {
      const a = await openAlert(ctx.db, { customerId: cs.customer_id, machineId: null, kind: 'replica_lag', now: iso, since, errorCode: null, subject, notifiedAt: iso });
      if (!a) continue;
      await enqueueFor(ctx.db, operator, 'alert_opened', `alert:${a.id}:opened`, (locale) => alertOpenedEmail(input, locale), now);
      if (operator.length === 0) items.push({ id: a.id, outcome: 'warning', detail: `nobody to email about ${input.customerName}'s replica: set the operator's alert address` });
      items.push({ id: a.id, outcome: 'failed', detail: `the replica of ${input.customerName} on ${cs.replica_site} holds everything up to ${since} only (more than ${ctx.settings.replicaLagAlertHours} h behind)` });
      ctx.log({ level: 'error', msg: 'replica behind', customerId: cs.customer_id, site: cs.replica_site, since });
    } else if (!behind && open && (await closeAlert(ctx.db, open.id, iso))) {
      await enqueueFor(ctx.db, operator, 'alert_closed', `alert:${open.id}:closed`, (locale) => alertClosedEmail({ ...input, closedAt: iso }, locale), now);
      await markAlertClosedNotified(ctx.db, open.id, iso);
      items.push({ id: open.id, outcome: 'changed', detail: `the replica of ${input.customerName} on ${cs.replica_site} has caught up: alert closed` });
    }
  }
  return items;
}
