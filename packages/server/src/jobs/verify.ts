import { createHash } from 'node:crypto';
import { packIdOf, parsePackHeader, type PackEntry } from '@coffre/core';
import { readStoredPackHeader } from '../store/pack-header.js';
import { closePackAlertOfCustomer, closeAlert, hasOpenAlertOnSubject, openAlert, packAlertsWithoutPackOfCustomer } from '../db/queries/alerts.js';
import { findOrg } from '../db/queries/orgs.js';
import { findPack } from '../db/queries/packs.js';
import { blobsOfPack, countPacksOfCustomer, countPacksOfCustomerVerifiedBefore, markPackVerified, packsToVerifyOfCustomer } from '../db/queries/verify.js';
import { deliverOutbox } from '../mail/outbox.js';
import { customerUrl, enqueueFor, recipientsFor } from '../mail/notify.js';
import { alertOpenedEmail } from '../mail/templates.js';
import { packKey } from '../object-keys.js';
import { isNotFound, StoreUnavailableError } from '../store/object-store.js';
import type { CustomerId } from '../types.js';
import { repairPackFromPeer } from '../replication/repair.js';
import { getSiteState } from '../db/queries/replication.js';
import { customersForJob, type Job, type JobContext, type JobItem, type JobResult } from './job.js';

const DAY_MS = 86_400_000;

/**
 * Verification of stored data (R6, R22), without any key: re-reads stored packs and checks
 * each blob against the SHA-256 recorded when it was uploaded. A rolling schedule, customer
 * by customer (the cost of a customer's share follows its own packs): each daily run checks
 * the customer's packs verified longest ago (never-verified first), at least 1/period of
 * them and every pack that would otherwise pass the period, so a full pass completes
 * within `verifyPeriodDays` (default 30). A mismatch or a missing object opens a
 * `verify_mismatch` alert for the customer (one per pack) and emails the operator and the
 * reseller; the pack is checked again on the next run. A pack garbage collection removed in
 * the meantime is skipped, not reported.
 */
export class VerifyJob implements Job {
  readonly name = 'verify';
  readonly description = 're-hash stored blobs against their recorded SHA-256, a full pass within verifyPeriodDays; alert on any mismatch';
  readonly defaultSchedule = '0 5 * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const started = ctx.clock();
    const now = started.toISOString();
    const period = ctx.settings.verifyPeriodDays;
    const items: JobItem[] = [];
    const counts = { packs: 0, verified: 0, blobs: 0, bytes: 0, mismatches: 0, repaired: 0, alerts: 0, emails: 0, sent: 0 };
    const overdueBefore = new Date(started.getTime() - (period - 1) * DAY_MS).toISOString();
    const replica = await isReplica(ctx);
    for (const customerId of await customersForJob(ctx)) {
      const total = await countPacksOfCustomer(ctx.db, customerId);
      counts.packs += total;
      const overdue = await countPacksOfCustomerVerifiedBefore(ctx.db, customerId, overdueBefore);
      const budget = Math.max(Math.ceil(total / period), overdue);
      await this.customer(ctx, customerId, await packsToVerifyOfCustomer(ctx.db, customerId, budget), { now, started, counts, items });
      // Integrity alerts about packs that no longer exist (collected meanwhile) close (on the primary: a replica's alerts are copies).
      for (const a of replica ? [] : await packAlertsWithoutPackOfCustomer(ctx.db, customerId)) {
        await closeAlert(ctx.db, a.id, now);
        items.push({ id: a.id, outcome: 'changed', detail: `${a.subject ?? 'pack'} no longer stored: its integrity alert is closed` });
      }
    }
    counts.sent = (await deliverOutbox(ctx.db, ctx.mailer, ctx.clock(), ctx.log)).sent;
    return { job: this.name, startedAt: now, finishedAt: ctx.clock().toISOString(), counts, items };
  }

  private async customer(
    ctx: JobContext,
    customerId: string,
    batch: readonly { customer_id: string; id: string; size: number }[],
    run: { now: string; started: Date; counts: { verified: number; blobs: number; bytes: number; mismatches: number; repaired: number; alerts: number; emails: number }; items: JobItem[] },
  ): Promise<void> {
    const { now, started, counts, items } = run;
    for (const p of batch) {
      let problem: string | null;
      try {
        problem = await verifyPack(ctx, p.customer_id, p.id, p.size, counts);
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          // The store is out of reach (throttled, down): nothing is known about the pack, which
          // stays due and is checked on the next run. Not an integrity alert.
          items.push({ id: p.id, outcome: 'warning', detail: `pack ${p.id} of customer ${customerId} not checked: the store is unavailable (${err.message}); checked next run` });
          continue;
        }
        // A read error (EIO…) is what verification exists to find: report it, go on.
        problem = `the pack could not be read (${(err as Error).message})`;
      }
      if (!(await findPack(ctx.db, p.customer_id as CustomerId, p.id))) continue; // removed by garbage collection meanwhile: nothing to verify any more
      if (problem !== null && ctx.keys) {
        // Another site's copy (the primary's for a replica, a replica's for the primary), checked on receipt, then checked again here.
        const replica = await isReplica(ctx);
        const from = await repairPackFromPeer({ db: ctx.db, store: ctx.store, keys: ctx.keys }, p.customer_id as CustomerId, p.id, p.size).catch((err: Error) => {
          items.push({ id: p.id, outcome: replica ? 'failed' : 'warning', detail: `pack ${p.id} of customer ${p.customer_id} could not be fetched again from the other site: ${err.message}` });
          return null;
        });
        if (from !== null) {
          const before = problem;
          problem = await verifyPack(ctx, p.customer_id, p.id, p.size, counts).catch((err: Error) => `the pack could not be read (${err.message})`);
          if (problem === null) {
            counts.repaired++;
            items.push({ id: p.id, outcome: 'changed', detail: `pack ${p.id} of customer ${p.customer_id} was damaged (${before}); repaired from site ${from}'s copy` });
          }
        }
        if (problem !== null && replica) {
          counts.mismatches++;
          items.push({ id: p.id, outcome: 'failed', detail: `pack ${p.id} of customer ${p.customer_id}: ${problem}` });
          ctx.log({ level: 'error', msg: 'stored pack failed verification on the replica', customerId: p.customer_id, packId: p.id, problem });
          continue; // the alerts table is the primary's (replicated): the replica reports through its job result and logs
        }
      }
      if (problem === null) {
        await markPackVerified(ctx.db, p.customer_id, p.id, now);
        counts.verified++;
        // Sound again (repaired from a copy): its integrity alert closes.
        if (!(await isReplica(ctx)) && (await closePackAlertOfCustomer(ctx.db, p.customer_id, p.id, now))) items.push({ id: p.id, outcome: 'changed', detail: `pack ${p.id} verifies again: its integrity alert is closed` });
        continue;
      }
      counts.mismatches++;
      items.push({ id: p.id, outcome: 'failed', detail: `pack ${p.id} of customer ${p.customer_id}: ${problem}` });
      ctx.log({ level: 'error', msg: 'stored pack failed verification', customerId: p.customer_id, packId: p.id, problem });
      const subject = `pack:${p.id}`;
      if (await hasOpenAlertOnSubject(ctx.db, p.customer_id, subject)) continue;
      const alert = await openAlert(ctx.db, { customerId: p.customer_id, machineId: null, kind: 'verify_mismatch', now, since: now, errorCode: 'PACK_MISMATCH', subject, notifiedAt: now });
      if (!alert) continue;
      counts.alerts++;
      const c = await findOrg(ctx.db, p.customer_id);
      const recipients = await recipientsFor(ctx.db, p.customer_id, { customer: false, reseller: true, operator: true });
      if (recipients.length === 0) items.push({ id: p.id, outcome: 'warning', detail: `nobody to email about pack ${p.id}: set the operator's alert address (org update operator --alert-email …)` });
      counts.emails += await enqueueFor(
        ctx.db,
        recipients,
        'alert_opened',
        `alert:${alert.id}:opened`,
        (locale) =>
          alertOpenedEmail(
            { customerName: c?.name ?? p.customer_id, machineName: null, kind: 'verify_mismatch', since: now, openedAt: now, errorCode: 'PACK_MISMATCH', consoleUrl: customerUrl(ctx.settings.publicUrl, p.customer_id) },
            locale,
          ),
        started,
      );
    }
  }
}

async function isReplica(ctx: JobContext): Promise<boolean> {
  return ctx.keys !== undefined && (await getSiteState(ctx.db))?.role === 'replica';
}

/** Re-hashes every blob of a pack; null when all match, else what is wrong. */
async function verifyPack(ctx: JobContext, customerId: string, packId: string, size: number, counts: { blobs: number; bytes: number }): Promise<string | null> {
  const key = packKey(customerId as CustomerId, packId);
  const st = await ctx.store.stat(key);
  if (!st) return 'the pack object is missing';
  if (st.size !== size) return `the pack object is ${st.size} bytes, ${size} were recorded`;
  // The header: its hash is the pack's id (agents refuse a pack whose header does not match),
  // and it must describe the blobs the index points to.
  let entries: PackEntry[];
  try {
    const head = await readStoredPackHeader(ctx.store, key);
    if (packIdOf(head) !== packId) return 'the pack header does not match the pack id';
    entries = parsePackHeader(head, size);
  } catch (err) {
    if (isNotFound(err)) return 'the pack object is missing';
    return `the pack header is unreadable (${(err as Error).message})`;
  }
  const byOffset = new Map(entries.map((e) => [e.offset, e]));
  const chunks = await blobsOfPack(ctx.db, customerId, packId);
  for (const c of chunks) {
    const e = byOffset.get(c.offset);
    if (!e || e.length !== c.length || e.sha256 !== c.sha256.toString('hex')) return 'the pack header and the index disagree about a blob';
  }
  let bad = 0;
  for (const c of chunks) {
    let blob: Buffer;
    try {
      blob = await ctx.store.get(key, { offset: c.offset, length: c.length });
    } catch (err) {
      if (isNotFound(err)) return 'the pack object is missing';
      throw err;
    }
    counts.blobs++;
    counts.bytes += blob.length;
    if (!createHash('sha256').update(blob).digest().equals(c.sha256)) bad++;
  }
  return bad === 0 ? null : `${bad} of ${chunks.length} blob(s) do not match their recorded SHA-256`;
}
