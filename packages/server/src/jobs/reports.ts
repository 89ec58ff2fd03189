import type { Database } from '../db/database.js';
import { openAlertCounts, openAlertsOfCustomer } from '../db/queries/alerts.js';
import { activeOrgs } from '../db/queries/orgs.js';
import { runCountsOfCustomerSince } from '../db/queries/runs.js';
import { protectedBytes, storedBytes } from '../db/queries/usage.js';
import { deliverOutbox } from '../mail/outbox.js';
import { customerUrl, enqueueFor, recipientsFor } from '../mail/notify.js';
import { customerSitesOf } from '../admin/sites.js';
import { customerWeeklyEmail, MAIL_TIME_ZONE, resellerDailyEmail, type CustomerLine } from '../mail/templates.js';
import { graceMs } from '../observatory/alerts.js';
import { isoWeek, localDate } from '../observatory/calendar.js';
import { customerRollup, machineStates, type MachineState } from '../observatory/machine-states.js';
import { emailInput } from './observatory.js';
import { skipUnlessPrimary, type Job, type JobContext, type JobItem, type JobResult } from './job.js';

const DAY_MS = 86_400_000;

/**
 * Report emails (R4): every day, a summary per reseller of all its customers' statuses (to
 * the reseller's alert address); once per ISO week (the first run of the week, Monday
 * morning by default), a report per customer (to its alert address): runs of the past 7
 * days, volumes, last proven restore of each machine, open alerts. Each email is enqueued
 * once per day / week whatever the number of runs (outbox keys), so `job run reports` can
 * be run again safely.
 */
export class ReportsJob implements Job {
  readonly name = 'reports';
  readonly description = 'daily summary per reseller and weekly report per customer (emails)';
  readonly defaultSchedule = '0 8 * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const skipped = await skipUnlessPrimary(ctx, this.name);
    if (skipped) return skipped;
    const started = ctx.clock();
    const day = localDate(started, MAIL_TIME_ZONE);
    const week = isoWeek(day);
    const items: JobItem[] = [];
    const counts = { resellers: 0, customers: 0, emails: 0, unaddressed: 0, sent: 0 };
    const orgs = await activeOrgs(ctx.db);
    const customers = orgs.filter((o) => o.type === 'customer');
    const states = await machineStates(
      ctx.db,
      customers.map((c) => c.id),
      started,
      graceMs(ctx),
    );
    const alerts = new Map((await openAlertCounts(ctx.db, customers.map((c) => c.id))).map((r) => [r.customerId, r.n]));
    const statesOf = (id: string): MachineState[] => states.filter((s) => (s.machine.customer_id as string) === id);
    const line = async (c: (typeof customers)[number]): Promise<CustomerLine> => {
      const { status, lastSuccessAt } = customerRollup(statesOf(c.id));
      return {
        name: c.name,
        status,
        lastSuccessAt,
        openAlerts: alerts.get(c.id) ?? 0,
        protectedBytes: await protectedBytes(ctx.db, c.id),
      };
    };

    // Daily summary per reseller.
    for (const r of orgs.filter((o) => o.type === 'reseller')) {
      if (!r.alert_email) {
        counts.unaddressed++;
        items.push({ id: r.id, outcome: 'warning', detail: `reseller ${r.name} has no alert address: no daily summary` });
        continue;
      }
      const mine = customers.filter((c) => c.parent_id === r.id).sort((a, b) => a.name.localeCompare(b.name, 'fr'));
      const lines = await Promise.all(mine.map(line));
      counts.resellers++;
      const n = await enqueueFor(
        ctx.db,
        [{ address: r.alert_email, locale: r.locale, role: 'reseller' }],
        'reseller_daily',
        `report:daily:${r.id}:${day}`,
        (locale) => resellerDailyEmail({ resellerName: r.name, day: started.toISOString(), customers: lines, consoleUrl: ctx.settings.publicUrl }, locale),
        started,
      );
      counts.emails += n;
      if (n > 0) items.push({ id: r.id, outcome: 'changed', detail: `daily summary for ${r.name} (${lines.length} customers)` });
    }

    // Weekly report per customer.
    for (const c of customers) {
      const recipients = await recipientsFor(ctx.db, c.id, { reseller: false });
      if (recipients.length === 0) {
        counts.unaddressed++;
        items.push({ id: c.id, outcome: 'warning', detail: `customer ${c.name} has no alert address: no weekly report` });
        continue;
      }
      counts.customers++;
      const input = await weeklyInput(ctx.db, c, statesOf(c.id), started, week, ctx.settings.publicUrl, ctx.settings.replicaLagAlertHours);
      const n = await enqueueFor(ctx.db, recipients, 'customer_weekly', `report:weekly:${c.id}:${week}`, (locale) => customerWeeklyEmail(input, locale), started);
      counts.emails += n;
      if (n > 0) items.push({ id: c.id, outcome: 'changed', detail: `weekly report ${week} for ${c.name}` });
    }
    counts.sent = (await deliverOutbox(ctx.db, ctx.mailer, ctx.clock(), ctx.log)).sent;
    return { job: this.name, startedAt: started.toISOString(), finishedAt: ctx.clock().toISOString(), counts, items };
  }
}

async function weeklyInput(db: Database, c: { id: string; name: string }, states: readonly MachineState[], now: Date, week: string, publicUrl: string | null, replicaLagHours: number) {
  const from = new Date(now.getTime() - 7 * DAY_MS);
  const runs = await runCountsOfCustomerSince(db, c.id, from.toISOString());
  const n = (r: string) => runs.get(r) ?? 0;
  const open = await openAlertsOfCustomer(db, c.id);
  return {
    customerName: c.name,
    week,
    from: from.toISOString(),
    to: now.toISOString(),
    runs: { success: n('success'), partial: n('partial'), failed: n('failed') },
    protectedBytes: await protectedBytes(db, c.id),
    storedBytes: await storedBytes(db, c.id),
    machines: states
      .filter((s) => s.machine.revoked_at === null)
      .map((s) => ({ name: s.machine.name, status: s.status.status, lastSuccessAt: s.lastSuccessAt, lastRestoreTest: s.lastRestoreTest })),
    openAlerts: await Promise.all(open.map((a) => emailInput(db, a, publicUrl))),
    consoleUrl: customerUrl(publicUrl, c.id),
    sites: await customerSitesOf(db, c.id),
    replicaLagHours,
  };
}
