import { GC_SCHEDULE, gcOptionsFromEnv } from '../gc/config.js';
import { runGc } from '../gc/gc.js';
import type { Job, JobContext, JobResult } from './job.js';

/**
 * Garbage collection (docs/GC.md): deletes the chunks no snapshot (live or in the recycle
 * bin) references and nobody touched since the cutoff, deletes packs left empty, repacks
 * sparse ones; no global lock. Settings: the defaults in gc/config.ts, overridden by the
 * COFFRE_GC_* variables (tests and operations), COFFRE_GC_DRY_RUN=1 for a dry run.
 */
export class GcJob implements Job {
  readonly name = 'gc';
  readonly description = 'garbage collection: delete chunks no snapshot needs, empty packs, repack sparse ones (no global lock)';
  readonly defaultSchedule = GC_SCHEDULE;

  async run(ctx: JobContext): Promise<JobResult> {
    const env = gcOptionsFromEnv();
    const r = await runGc({ db: ctx.db, store: ctx.store, clock: ctx.clock, log: ctx.log }, env);
    return { job: this.name, startedAt: r.startedAt, finishedAt: r.finishedAt, counts: { ...r.counts, dryRun: r.dryRun ? 1 : 0 }, items: r.items };
  }
}
