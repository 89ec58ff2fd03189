import { closeAlert, graceMs, openAlert, openAlertsOf, type AlertRow } from '../observatory/alerts.js';
import { machineStates } from '../observatory/machine-states.js';
import type { AlertKind } from '../db/schema.js';
import type { Job, JobContext, JobItem, JobResult } from './job.js';

/**
 * The daily observatory (R5): compares each machine's schedule, as its agent reported it,
 * with what happened. A scheduled backup past due (plus `observatoryGraceMinutes`) with no
 * success since opens a `backup_missed` alert; a latest run that failed opens a
 * `backup_failed` one; each closes once the condition is gone (a success, a new schedule,
 * the machine revoked). Suspended customers are skipped: their backups are refused on
 * purpose. Opening is idempotent: one open alert per machine and kind.
 */
export class ObservatoryJob implements Job {
  readonly name = 'observatory';
  readonly description = 'compare schedules with what happened; open and close backup alerts';
  readonly defaultSchedule = '0 7 * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const started = ctx.clock();
    const now = started.toISOString();
    const customers = await ctx.db.selectFrom('orgs').select('id').where('type', '=', 'customer').where('status', '=', 'active').execute();
    const states = await machineStates(
      ctx.db,
      customers.map((c) => c.id),
      started,
      graceMs(ctx),
    );
    const open = new Map<string, AlertRow>();
    for (const a of await openAlertsOf(ctx.db)) if (a.machine_id) open.set(`${a.machine_id}/${a.kind}`, a);

    const items: JobItem[] = [];
    const counts = { machines: 0, opened: 0, closed: 0, open: 0 };
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
    // Alerts of machines no longer looked at (customer suspended or gone) stay as they are.
    counts.open = (await openAlertsOf(ctx.db)).length;
    return { job: this.name, startedAt: now, finishedAt: ctx.clock().toISOString(), counts, items };
  }
}
