import { GC_SCHEDULE, gcOptionsFromEnv } from '../gc/config.js';
import { runGc } from '../gc/gc.js';
import { skipUnlessPrimary, type Job, type JobContext, type JobResult } from './job.js';

/**
 * Garbage collection (docs/GC.md): deletes the chunks no snapshot (live or in the recycle
 * bin) references and nobody touched since the cutoff, deletes packs left empty, repacks
 * sparse ones; no global lock. Settings: gcGraceHours, gcRepackBelow,
 * gcRepackDeleteDelayHours and tempMaxAgeHours (orphan packs) of server.json, overridden by
 * the COFFRE_GC_* variables (tests and operations); `job run gc --dry-run` changes nothing.
 */
export class GcJob implements Job {
  readonly name = 'gc';
  readonly description = 'garbage collection: delete chunks no snapshot needs, empty packs, repack sparse ones (no global lock)';
  readonly defaultSchedule = GC_SCHEDULE;

  readonly supportsDryRun = true;

  async run(ctx: JobContext): Promise<JobResult> {
    const skipped = await skipUnlessPrimary(ctx, this.name);
    if (skipped) return skipped;
    const HOUR = 3_600_000;
    const s = ctx.settings;
    // Settings (server.json), then the COFFRE_GC_* knobs of tests and operations on top.
    const options = {
      graceMs: s.gcGraceHours * HOUR,
      repackBelow: s.gcRepackBelow,
      repackDeleteDelayMs: s.gcRepackDeleteDelayHours * HOUR,
      // Unindexed pack objects are temporary data (R8): the same age as every other.
      orphanAgeMs: s.tempMaxAgeHours * HOUR,
      ...gcOptionsFromEnv(),
    };
    if (ctx.dryRun) options.dryRun = true;
    const r = await runGc({ db: ctx.db, store: ctx.store, clock: ctx.clock, log: ctx.log }, { ...options, ...(ctx.onlyCustomers ? { customerIds: ctx.onlyCustomers } : {}) });
    return { job: this.name, startedAt: r.startedAt, finishedAt: r.finishedAt, counts: { ...r.counts, dryRun: r.dryRun ? 1 : 0 }, items: r.items };
  }
}
