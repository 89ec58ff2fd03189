import { snapshotExists } from '../db/queries/snapshots.js';
import { customersWithUploadSessions, dropAbandonedSessions } from '../db/queries/upload-sessions.js';
import { isNotFound } from '../store/object-store.js';
import type { CustomerId } from '../types.js';
import type { Job, JobContext, JobItem, JobResult } from './job.js';

/**
 * Temporary data (R8): deletes what uploads left behind once older than `tempMaxAgeHours`
 * (default 24 h, never more than 30 days): the store's temp files and incomplete uploads,
 * and unindexed snapshot reference lists (written to the store before their database row,
 * which never came because the process died in between). Unindexed packs are garbage
 * collection's (docs/GC.md: it tells a pack being repacked from an orphan). Indexed objects
 * are never touched.
 */
export class PurgeTempJob implements Job {
  readonly name = 'purge-temp';
  readonly description = 'delete abandoned uploads and unindexed objects older than tempMaxAgeHours (R8)';
  readonly defaultSchedule = '15 4 * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const started = ctx.clock();
    const cutoff = new Date(started.getTime() - ctx.settings.tempMaxAgeHours * 3_600_000);
    const items: JobItem[] = [];
    const temp = await ctx.store.purgeTemporary(cutoff);
    const counts = { tempFiles: temp.removed, tempBytes: temp.bytes, orphanRefs: 0, orphanBytes: 0, abandonedSessions: 0 };
    if (temp.removed > 0) items.push({ id: 'temporary', outcome: 'changed', detail: `removed ${temp.removed} temporary file(s), ${temp.bytes} bytes` });

    // snapshots/<customerId>/<snapshotId>.refs without a row in snapshots.
    for await (const o of ctx.store.list('snapshots/')) {
      if (o.modifiedAt >= cutoff) continue;
      const m = /^snapshots\/([^/]+)\/([^/]+)\.refs$/.exec(o.key);
      if (!m) continue;
      if (await snapshotExists(ctx.db, m[1]! as CustomerId, m[2]!)) continue;
      await deleteQuietly(ctx, o.key);
      counts.orphanRefs++;
      counts.orphanBytes += o.size;
      items.push({ id: o.key, outcome: 'changed', detail: `removed unindexed reference list ${o.key}` });
    }
    // Upload sessions abandoned that long ago (garbage collection drops them sooner).
    for (const customerId of await customersWithUploadSessions(ctx.db)) {
      const n = await dropAbandonedSessions(ctx.db, customerId, cutoff.toISOString());
      counts.abandonedSessions += n;
      if (n > 0) items.push({ id: customerId, outcome: 'changed', detail: `dropped ${n} abandoned upload session(s) of customer ${customerId}` });
    }
    return { job: this.name, startedAt: started.toISOString(), finishedAt: ctx.clock().toISOString(), counts, items };
  }
}

async function deleteQuietly(ctx: JobContext, key: string): Promise<void> {
  try {
    await ctx.store.delete(key);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
