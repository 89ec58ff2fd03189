import { getSiteState } from '../db/queries/replication.js';
import { checkFencing } from '../replication/admin.js';
import { applyDueSiteChanges } from '../admin/sites.js';
import { checkReplicaLag } from '../observatory/replica-lag.js';
import { deliverOutbox } from '../mail/outbox.js';
import { replicatePass } from '../replication/pull.js';
import type { Job, JobContext, JobItem, JobResult } from './job.js';

/**
 * The second site (docs/CONTINUITY.md). On a replica: one pass pulling everything new from
 * the primary — rows, packs (every byte checked), snapshots once complete, the audit chain
 * (checked to extend the copy held) — and deleting what the primary deleted long enough
 * ago. It fails (exit 1 from `job run`) unless the replica then holds everything the
 * primary had when the pass began. On a primary: asks the other sites whether one was
 * promoted above it (then it demotes itself and refuses backups).
 */
export class ReplicateJob implements Job {
  readonly name = 'replicate';
  readonly description = 'replica: pull everything new from the primary (checked, deletions held back); primary: check no other site was promoted';
  readonly defaultSchedule = '* * * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const startedAt = ctx.clock().toISOString();
    const state = await getSiteState(ctx.db);
    const items: JobItem[] = [];
    const done = (counts: Record<string, number>): JobResult => ({ job: this.name, startedAt, finishedAt: ctx.clock().toISOString(), counts, items });
    if (state?.role !== 'replica') {
      if (state?.role !== 'demoted') {
        const applied = await applyDueSiteChanges(ctx);
        if (applied > 0) items.push({ id: 'site-changes', outcome: 'changed', detail: `${applied} announced change(s) of where data live applied` });
        items.push(...(await checkReplicaLag(ctx)));
        await deliverOutbox(ctx.db, ctx.mailer, ctx.clock(), ctx.log);
      }
      const f = await checkFencing(ctx);
      if (f.demotedBy) items.push({ id: 'site', outcome: 'failed', detail: `site ${f.demotedBy} was promoted above this one: this site is demoted and refuses backups (re-join it as a replica)` });
      else if (state?.role === 'demoted') items.push({ id: 'site', outcome: 'warning', detail: 'this site was demoted: re-join it to the new primary as a replica (coffre-server replication join)' });
      else items.push({ id: 'site', outcome: 'ok', detail: `this site is the primary; ${f.asked} other site(s) asked${f.unreachable.length ? `, unreachable: ${f.unreachable.join(', ')}` : ''}` });
      return done({ asked: f.asked, unreachable: f.unreachable.length });
    }
    if (!ctx.keys || !ctx.fingerprint) throw new Error('the replicate job needs the server key and certificate (run it through coffre-server)');
    const r = await replicatePass({ db: ctx.db, store: ctx.store, keys: ctx.keys, clock: ctx.clock, log: ctx.log, settings: ctx.settings, audit: ctx.audit, fingerprint: ctx.fingerprint });
    for (const p of r.problems) items.push({ id: 'replication', outcome: 'failed', detail: p });
    for (const w of r.warnings) items.push({ id: 'replication', outcome: 'warning', detail: w });
    if (r.snapshots.waiting > 0 && r.complete) items.push({ id: 'snapshots', outcome: 'ok', detail: `${r.snapshots.waiting} snapshot(s) committed after the pass began wait for the next pass` });
    items.push({
      id: 'pass',
      outcome: r.complete ? (r.packs.fetched + r.snapshots.added + r.audit.copied > 0 ? 'changed' : 'ok') : 'failed',
      detail: r.complete
        ? `the replica holds everything the primary had at ${r.upTo}: ${r.packs.fetched} pack(s) fetched (${(r.packs.bytes / 1e6).toFixed(1)} MB), ${r.snapshots.added} snapshot(s) and ${r.audit.copied} audit entr${r.audit.copied === 1 ? 'y' : 'ies'} added`
        : `pass incomplete: the replica does not yet hold everything the primary had at ${r.upTo}`,
    });
    return done({
      packsFetched: r.packs.fetched,
      bytesFetched: r.packs.bytes,
      packsPresent: r.packs.present,
      snapshotsAdded: r.snapshots.added,
      snapshotsWaiting: r.snapshots.waiting,
      auditCopied: r.audit.copied,
      held: r.holds.added,
      deleted: r.holds.deleted,
    });
  }
}
