import { Cron } from 'croner';
import { errorFields } from '../log.js';
import type { Job, JobContext } from './job.js';

/** Server jobs run in the operator's time zone (the practices' too). */
export const JOBS_TIME_ZONE = 'Europe/Paris';

/**
 * Runs each server job on its schedule inside the server process: never two runs of the
 * same job at once (a run still going when the next is due is skipped and logged), a
 * failure is logged and the job runs again at its next time. `coffre-server job run NAME`
 * runs a job on demand next to this; jobs are idempotent, so an overlap changes nothing.
 */
export class JobScheduler {
  private readonly crons: Cron[] = [];
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly ctx: JobContext,
    private readonly jobs: readonly Job[],
    private readonly schedules: Readonly<Record<string, string>> = {},
  ) {}

  start(): void {
    for (const job of this.jobs) {
      const schedule = this.schedules[job.name] ?? job.defaultSchedule;
      this.crons.push(new Cron(schedule, { timezone: JOBS_TIME_ZONE, name: `coffre-${job.name}` }, () => void this.runNow(job)));
    }
  }

  /** Runs a job now unless it is already running; resolves when done (never rejects). */
  runNow(job: Job): Promise<void> {
    const p = this.runOnce(job);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  private async runOnce(job: Job): Promise<void> {
    if (this.running.has(job.name)) {
      this.ctx.log({ level: 'warn', msg: 'job still running, this run is skipped', job: job.name });
      return;
    }
    this.running.add(job.name);
    try {
      const r = await job.run(this.ctx);
      const failed = r.items.filter((i) => i.outcome === 'failed').length;
      this.ctx.log({ level: failed > 0 ? 'warn' : 'info', msg: 'job done', job: job.name, ...r.counts, failedItems: failed });
    } catch (err) {
      this.ctx.log({ level: 'error', msg: 'job failed', job: job.name, ...errorFields(err) });
    } finally {
      this.running.delete(job.name);
    }
  }

  /** Each scheduled job's next run (for logs and tests). */
  nextRuns(): Record<string, Date | null> {
    return Object.fromEntries(this.crons.map((c) => [c.name!.replace(/^coffre-/, ''), c.nextRun()]));
  }

  /** Stops scheduling, then waits (at most `graceMs`) for the runs in progress to finish. */
  async stop(graceMs = 30_000): Promise<void> {
    for (const c of this.crons) c.stop();
    this.crons.length = 0;
    if (this.inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }
}
