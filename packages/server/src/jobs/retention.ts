import { customerOrgs } from '../db/queries/orgs.js';
import { moveToBin, planCustomer, purgeBin } from '../retention/retention.js';
import { skipUnlessPrimary, type Job, type JobContext, type JobItem, type JobResult } from './job.js';

/**
 * Retention (R9): applies each machine's policy to every customer's live snapshots; what no
 * rule keeps goes to the recycle bin (audited, one entry per customer with the ids and the
 * reasons); then the bin is emptied of what has been there longer than `recycleBinDays`.
 * The protection window is enforced twice: by the plan, and by `moveToBin` itself.
 */
export class RetentionJob implements Job {
  readonly name = 'retention';
  readonly description = 'apply the retention policies (removed snapshots go to the recycle bin) and empty the bin of what is older than recycleBinDays';
  readonly defaultSchedule = '0 2 * * *';
  readonly supportsDryRun = true;

  async run(ctx: JobContext): Promise<JobResult> {
    const skipped = await skipUnlessPrimary(ctx, this.name);
    if (skipped) return skipped;
    const now = ctx.clock();
    const items: JobItem[] = [];
    const counts = { customers: 0, kept: 0, binned: 0, purged: 0, failed: 0 };
    const customers = (await customerOrgs(ctx.db)).filter((c) => !ctx.onlyCustomers || ctx.onlyCustomers.includes(c.id));
    const purged: { customerId: string; id: string }[] = [];
    for (const c of customers) {
      counts.customers++;
      // The bin first (what binned before today's plan has had its recycleBinDays), one customer at a time.
      if (!ctx.dryRun) {
        try {
          purged.push(...(await purgeBin(ctx.db, ctx.store, c.id, now, ctx.settings.recycleBinDays, ctx.log)));
        } catch (err) {
          counts.failed++;
          items.push({ id: c.id, outcome: 'failed', detail: `${c.name}: emptying the recycle bin: ${(err as Error).message}` });
          ctx.log({ level: 'error', msg: 'recycle bin purge failed for a customer', customerId: c.id, error: (err as Error).message });
        }
      }
      try {
        const plan = await planCustomer(ctx.db, c.id, now, ctx.settings);
        const remove = plan.decisions.filter((d) => d.action === 'remove');
        counts.kept += plan.decisions.length - remove.length;
        if (remove.length === 0) continue;
        if (ctx.dryRun) {
          counts.binned += remove.length;
          for (const d of remove) items.push({ id: d.id, outcome: 'ok', detail: `would move ${c.name} / ${d.machineName}: snapshot ${d.id.slice(0, 8)} of ${d.time} to the recycle bin (not kept by any rule)` });
          continue;
        }
        const n = await moveToBin(
          ctx.db,
          c.id,
          remove.map((d) => d.id),
          { by: 'retention', reason: 'not kept by any rule of the retention policy', now, protectDays: ctx.settings.protectDays, timeZone: ctx.settings.retentionTimeZone },
        );
        counts.binned += n;
        await ctx.audit.append({
          actorType: 'system',
          actorId: null,
          actorLabel: 'retention',
          orgId: c.id,
          action: 'snapshot.bin',
          target: null,
          ip: null,
          userAgent: null,
          requestId: null,
          outcome: 'success',
          details: { count: n, snapshots: remove.map((d) => ({ id: d.id, machine: d.machineName, time: d.time })) },
        });
        for (const d of remove) items.push({ id: d.id, outcome: 'changed', detail: `${c.name} / ${d.machineName}: snapshot ${d.id.slice(0, 8)} of ${d.time} to the recycle bin (not kept by any rule)` });
      } catch (err) {
        counts.failed++;
        items.push({ id: c.id, outcome: 'failed', detail: `${c.name}: ${(err as Error).message}` });
        ctx.log({ level: 'error', msg: 'retention failed for a customer', customerId: c.id, error: (err as Error).message });
      }
    }
    if (ctx.dryRun) return { job: this.name, startedAt: now.toISOString(), finishedAt: ctx.clock().toISOString(), counts: { ...counts, dryRun: 1 }, items };
    counts.purged = purged.length;
    for (const p of purged) items.push({ id: p.id, outcome: 'changed', detail: `snapshot ${p.id.slice(0, 8)} left the recycle bin for good` });
    if (purged.length > 0) {
      await ctx.audit.append({
        actorType: 'system',
        actorId: null,
        actorLabel: 'retention',
        orgId: null,
        action: 'snapshot.purge',
        target: null,
        ip: null,
        userAgent: null,
        requestId: null,
        outcome: 'success',
        details: { count: purged.length, snapshots: purged },
      });
    }
    return { job: this.name, startedAt: now.toISOString(), finishedAt: ctx.clock().toISOString(), counts, items };
  }
}
