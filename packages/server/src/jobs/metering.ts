import { customerOrgs } from '../db/queries/orgs.js';
import { listTiers } from '../db/queries/tiers.js';
import { applyPendingTierOfCustomer, markTierExceededOfCustomer, protectedBytes, storedBytes, upsertUsageDay } from '../db/queries/usage.js';
import { deliverOutbox } from '../mail/outbox.js';
import { enqueueFor, recipientsFor } from '../mail/notify.js';
import { MAIL_TIME_ZONE, tierExceededEmail } from '../mail/templates.js';
import { localDate, nextMonth } from '../observatory/calendar.js';
import { skipUnlessPrimary, type Job, type JobContext, type JobItem, type JobResult } from './job.js';

/**
 * Daily metering (R13): records each customer's protected (logical) and stored volume for
 * the day (Europe/Paris), with the tier in effect. When the protected volume goes over the
 * tier's limit, the customer and its reseller are emailed (once per month) and the smallest
 * tier that holds the volume (above every tier: the largest) applies from the first day of
 * the next month (the terms: no new signature); the switch itself happens on the first
 * metering of that month. An operator setting a tier by hand cancels a pending switch. Backups are
 * never refused for being over a tier.
 */
export class MeteringJob implements Job {
  readonly name = 'metering';
  readonly description = 'daily protected and stored volume per customer; tier crossings (email, next tier from next month)';
  readonly defaultSchedule = '30 23 * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const skipped = await skipUnlessPrimary(ctx, this.name);
    if (skipped) return skipped;
    const started = ctx.clock();
    const today = localDate(started, MAIL_TIME_ZONE);
    const period = today.slice(0, 7);
    const items: JobItem[] = [];
    const counts = { customers: 0, tierChanges: 0, crossings: 0, emails: 0, sent: 0 };
    const tiers = await listTiers(ctx.db);
    const customers = (await customerOrgs(ctx.db)).filter((c) => !ctx.onlyCustomers || ctx.onlyCustomers.includes(c.id));
    for (let c of customers) {
      counts.customers++;
      // A change scheduled by an earlier crossing takes effect on its month.
      if (c.pending_tier_id && c.pending_tier_from && c.pending_tier_from <= today) {
        await applyPendingTierOfCustomer(ctx.db, c.id, c.pending_tier_id, started.toISOString());
        const to = tiers.find((t) => t.id === c.pending_tier_id);
        items.push({ id: c.id, outcome: 'changed', detail: `${c.name} moves to tier ${to?.name ?? c.pending_tier_id} from ${c.pending_tier_from}` });
        ctx.log({ level: 'info', msg: 'tier change applied', customerId: c.id, tier: to?.name, from: c.pending_tier_from });
        c = { ...c, tier_id: c.pending_tier_id, pending_tier_id: null, pending_tier_from: null };
        counts.tierChanges++;
      }
      const prot = await protectedBytes(ctx.db, c.id);
      const stored = await storedBytes(ctx.db, c.id);
      const tier = tiers.find((t) => t.id === c.tier_id);
      await upsertUsageDay(ctx.db, { customer_id: c.id, date: today, protected_bytes: prot, stored_bytes: stored, tier_id: tier?.id ?? null, limit_bytes: tier ? Number(tier.limit_bytes) : null });
      if (!tier || prot <= Number(tier.limit_bytes) || c.tier_exceeded_period === period) continue;

      counts.crossings++;
      // The smallest tier that holds the volume; above every tier, the largest one.
      const larger = tiers.filter((t) => Number(t.limit_bytes) > Number(tier.limit_bytes));
      const next = larger.find((t) => Number(t.limit_bytes) >= prot) ?? larger.at(-1) ?? null;
      const from = `${nextMonth(today)}-01`;
      await markTierExceededOfCustomer(ctx.db, c.id, { period, nextTierId: next?.id ?? null, from: next ? from : null, now: started.toISOString() });
      const recipients = await recipientsFor(ctx.db, c.id);
      const n = await enqueueFor(
        ctx.db,
        recipients,
        'tier_exceeded',
        `tier:${c.id}:${period}`,
        (locale) =>
          tierExceededEmail(
            {
              customerName: c.name,
              tierName: tier.name,
              limitBytes: Number(tier.limit_bytes),
              protectedBytes: prot,
              nextTier: next ? { name: next.name, limitBytes: Number(next.limit_bytes), monthlyPriceCents: next.monthly_price_cents } : null,
              from,
            },
            locale,
          ),
        started,
      );
      counts.emails += n;
      items.push({
        id: c.id,
        outcome: recipients.length === 0 ? 'warning' : 'changed',
        detail: `${c.name} is over its tier ${tier.name} (${prot} > ${tier.limit_bytes} bytes)${next ? `; ${next.name} applies from ${from}` : '; no larger tier exists'}${recipients.length === 0 ? '; nobody to email' : ''}`,
      });
    }
    counts.sent = (await deliverOutbox(ctx.db, ctx.mailer, ctx.clock(), ctx.log)).sent;
    return { job: this.name, startedAt: started.toISOString(), finishedAt: ctx.clock().toISOString(), counts, items };
  }
}
