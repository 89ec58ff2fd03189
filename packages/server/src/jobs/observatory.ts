import type { Database } from '../db/database.js';
import { alertsOwingClosedEmail, alertsOwingOpenedEmail, closeAlert, markAlertClosedNotified, markAlertNotified, openAlert, openAlertsOf, type AlertRow } from '../db/queries/alerts.js';
import { findMachine } from '../db/queries/machines.js';
import { activeCustomerIds, findOrg } from '../db/queries/orgs.js';
import type { AlertKind } from '../db/schema.js';
import { deliverOutbox } from '../mail/outbox.js';
import { customerUrl, enqueueFor, recipientsFor } from '../mail/notify.js';
import { alertClosedEmail, alertOpenedEmail, alertReminderEmail, type AlertEmailInput } from '../mail/templates.js';
import { graceMs } from '../observatory/alerts.js';
import { machineStates } from '../observatory/machine-states.js';
import { skipUnlessPrimary, type Job, type JobContext, type JobItem, type JobResult } from './job.js';

/**
 * The daily observatory (R5): compares each machine's schedule, as its agent reported it,
 * with what happened. A scheduled backup past due (plus `observatoryGraceMinutes`) with no
 * success since opens a `backup_missed` alert; a latest run that failed opens a
 * `backup_failed` one; each closes once the condition is gone (a success, a new schedule,
 * the machine revoked). Suspended customers are skipped: their backups are refused on
 * purpose. Opening is idempotent: one open alert per machine and kind.
 *
 * Each opening emails the customer's alert address and its reseller's (each in its own
 * language); while an alert stays open a reminder follows every `alertReminderHours`; a
 * closing sends "back to normal". Emails go through the outbox (retried until the SMTP
 * server takes them), delivered at the end of the run.
 */
/** A reminder is due once this fraction of `alertReminderHours` has passed (daily runs drift, DST days last 23 h). */
const REMINDER_SLACK = 0.9;

export class ObservatoryJob implements Job {
  readonly name = 'observatory';
  readonly description = 'compare schedules with what happened; open and close backup alerts; alert, reminder and back-to-normal emails';
  readonly defaultSchedule = '0 7 * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const skipped = await skipUnlessPrimary(ctx, this.name);
    if (skipped) return skipped;
    const started = ctx.clock();
    const now = started.toISOString();
    const states = await machineStates(ctx.db, await activeCustomerIds(ctx.db), started, graceMs(ctx));
    const open = new Map<string, AlertRow>();
    for (const a of await openAlertsOf(ctx.db)) if (a.machine_id) open.set(`${a.machine_id}/${a.kind}`, a);

    const items: JobItem[] = [];
    const counts = { machines: 0, opened: 0, closed: 0, open: 0, reminders: 0, emails: 0, sent: 0, unaddressed: 0 };
    const want = (machineId: string, kind: AlertKind, wanted: boolean, since: string | null, errorCode: string | null) => ({ machineId, kind, wanted, since, errorCode });
    for (const s of states) {
      counts.machines++;
      const m = s.machine;
      const active = m.revoked_at === null;
      const checks = [
        want(m.id, 'backup_failed', active && s.status.status === 'failed', s.latestRun?.finishedAt ?? null, s.latestRun?.errorCode ?? null),
        want(m.id, 'backup_missed', active && s.status.overdue, s.status.missedAt?.toISOString() ?? null, null),
      ];
      for (const c of checks) {
        const existing = open.get(`${c.machineId}/${c.kind}`);
        if (c.wanted && !existing) {
          const created = await openAlert(ctx.db, { customerId: m.customer_id, machineId: m.id, kind: c.kind, now, since: c.since, errorCode: c.errorCode });
          if (created) {
            counts.opened++;
            items.push({ id: created.id, outcome: 'changed', detail: `opened ${c.kind} for machine ${m.name}` });
          }
        } else if (!c.wanted && existing) {
          if (await closeAlert(ctx.db, existing.id, now)) {
            counts.closed++;
            items.push({ id: existing.id, outcome: 'changed', detail: `closed ${c.kind} for machine ${m.name}` });
          }
        }
        open.delete(`${c.machineId}/${c.kind}`);
      }
    }

    // Emails: openings, closings, then reminders of what stayed open long enough.
    const reminderMs = ctx.settings.alertReminderHours * 3_600_000;
    const notify = async (a: AlertRow, what: 'opened' | 'closed' | 'reminder', reminder = 0): Promise<void> => {
      const input = await emailInput(ctx.db, a, ctx.settings.publicUrl);
      const recipients = await recipientsFor(ctx.db, a.customer_id);
      if (recipients.length === 0) {
        counts.unaddressed++;
        ctx.log({ level: 'warn', msg: 'alert with nobody to tell', customerId: a.customer_id, kind: a.kind });
        items.push({ id: a.id, outcome: 'warning', detail: `no alert address for ${input.customerName} nor its reseller: nobody was told (${what} ${a.kind})` });
        return;
      }
      const kind = `alert_${what}`;
      const key = `alert:${a.id}:${what}${what === 'reminder' ? `:${reminder}` : ''}`;
      counts.emails += await enqueueFor(
        ctx.db,
        recipients,
        kind,
        key,
        (locale) => (what === 'opened' ? alertOpenedEmail(input, locale) : what === 'closed' ? alertClosedEmail({ ...input, closedAt: a.closed_at ?? now }, locale) : alertReminderEmail(input, locale, reminder)),
        started,
      );
    };
    // Openings and closings whose email is still owed, this run's or an interrupted run's:
    // enqueue (idempotent, keyed), then mark — a crash in between only enqueues again.
    const owedOpen = await alertsOwingOpenedEmail(ctx.db);
    for (const a of owedOpen) {
      await notify(a, 'opened');
      await markAlertNotified(ctx.db, a.id, now);
    }
    for (const a of await alertsOwingClosedEmail(ctx.db)) {
      await notify(a, 'closed');
      await markAlertClosedNotified(ctx.db, a.id, now);
    }
    // Reminders only for what the observatory still watches (an active customer's active
    // machine); the job runs daily, so "24 hours" allows a little slack (runs drift by
    // milliseconds, and a spring daylight-saving day is 23 hours long).
    const watched = new Set(states.filter((s) => s.machine.revoked_at === null).map((s) => s.machine.id as string));
    for (const a of await openAlertsOf(ctx.db)) {
      if (owedOpen.some((o) => o.id === a.id) || !a.machine_id || !watched.has(a.machine_id)) continue;
      const last = Date.parse(a.last_notified_at ?? a.opened_at);
      if (started.getTime() - last < reminderMs * REMINDER_SLACK) continue;
      const n = a.reminders_sent + 1;
      await notify(a, 'reminder', n);
      await markAlertNotified(ctx.db, a.id, now, n);
      counts.reminders++;
      items.push({ id: a.id, outcome: 'changed', detail: `reminder ${n} for ${a.kind}` });
    }
    // Alerts of machines no longer looked at (customer suspended or gone) stay as they are.
    counts.open = (await openAlertsOf(ctx.db)).length;
    counts.sent = (await deliverOutbox(ctx.db, ctx.mailer, ctx.clock(), ctx.log)).sent;
    return { job: this.name, startedAt: now, finishedAt: ctx.clock().toISOString(), counts, items };
  }
}

/** What an alert email says, from the alert row. */
export async function emailInput(db: Database, a: AlertRow, publicUrl: string | null): Promise<AlertEmailInput> {
  const c = await findOrg(db, a.customer_id);
  const m = a.machine_id ? await findMachine(db, a.machine_id) : undefined;
  return {
    customerName: c?.name ?? a.customer_id,
    machineName: m?.name ?? null,
    kind: a.kind,
    since: a.since,
    openedAt: a.opened_at,
    errorCode: a.error_code,
    consoleUrl: customerUrl(publicUrl, a.customer_id),
  };
}
