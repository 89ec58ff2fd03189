import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import { acquireLease, claimTick, finishTick, pruneTicks, releaseLease, renewLease, type TickClaim, type TickOutcome } from '../db/queries/leases.js';
import { errorFields } from '../log.js';
import type { Job, JobContext } from './job.js';

/** Server jobs run in the operator's time zone (the practices' too). */
export const JOBS_TIME_ZONE = 'Europe/Paris';

/** The `job_leases` row the schedulers of every instance sharing the database compete for. */
export const SCHEDULER_LEASE = 'scheduler';

/** Claimed ticks are kept this long (`job_ticks`), then deleted by the leader. */
export const TICK_RETENTION_MS = 30 * 86_400_000;
const PRUNE_EVERY_MS = 86_400_000;
const DEFAULT_LEASE_SECONDS = 30;
/** How far back (in leases) a new leader looks for a time nobody ran: a takeover comes at most a lease and a third after the last renewal. */
const CATCH_UP_MS_PER_LEASE_MS = 2;

export interface JobSchedulerOptions {
  /** How long the leader lease lasts; default `ctx.settings.jobLeaseSeconds` (30 s). Renewed every third of it. */
  readonly leaseMs?: number;
  /** The wall clock, in ms since the epoch (default Date.now). Not the server's clock: croner fires on real time. */
  readonly now?: () => number;
  /** This instance's holder id in the lease (default a random UUID, new for each scheduler). */
  readonly holder?: string;
}

/**
 * What became of one scheduled time of a job on this instance (`fire`):
 * - ok / failed: this instance claimed the tick and ran the job (failed: it threw, or
 *   reported failed items, as `job run` exits 1 for);
 * - not-leader: another instance holds the lease (or this one lost it): nothing done;
 * - already-claimed: the tick was claimed before (by another instance, or this one);
 * - busy: the job is still running here from an earlier time; this one is skipped;
 * - error: the claim could not be made (database unreachable…), logged.
 */
export type FireResult = TickOutcome | 'not-leader' | 'already-claimed' | 'busy' | 'error';

interface HeldLease {
  readonly fence: number;
  /** Wall-clock ms the lease runs until, as last written. */
  readonly expiresAt: number;
}

/**
 * Runs each server job on its schedule inside the server process.
 *
 * Several instances may share the database: only one of them, the holder of the
 * `job_leases` row "scheduler", runs the scheduled jobs. Every scheduler tries to take the
 * lease at start and then every third of the lease; the holder renews it at that pace. A
 * change of holder moves the lease's fencing number one up. When a job's time comes, the
 * holder first claims the tick (`job_ticks`: the job and its scheduled time) under the
 * lease, holder and fence unchanged and not expired; a tick already claimed is skipped. So
 * each scheduled time runs once across all instances, and a leader that lost its lease
 * while paused claims nothing. A graceful `stop` gives the lease up at once; a killed
 * process stops renewing it, and another instance takes over when it expires; on taking
 * the lease it runs the times that came meanwhile, if recent (see `catchUp`).
 *
 * In one process: never two runs of the same job at once (a run still going when the next
 * is due is skipped and logged); a failure is logged and the job runs again at its next
 * time. `runNow` and `coffre-server job run NAME` run a job outside the lease and the
 * ticks; jobs are idempotent, so an overlap changes nothing.
 */
export class JobScheduler {
  /** This instance's id in the lease and in the ticks it claims. */
  readonly holder: string;
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly crons: { readonly job: Job; readonly cron: Cron }[] = [];
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private lease: HeldLease | null = null;
  private leaseTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<boolean> | undefined;
  private started = false;
  private stopped = false;
  private lastPrunedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ctx: JobContext,
    private readonly jobs: readonly Job[],
    private readonly schedules: Readonly<Record<string, string>> = {},
    options: JobSchedulerOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? (ctx.settings?.jobLeaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
    if (!Number.isFinite(this.leaseMs) || this.leaseMs <= 0) throw new Error(`the job lease must last a positive time (got ${this.leaseMs} ms)`);
    this.now = options.now ?? Date.now;
    this.holder = options.holder ?? randomUUID();
  }

  /** Schedules the jobs and starts competing for the lease (at once, then every third of the lease). */
  start(): void {
    if (this.started) throw new Error('a job scheduler starts once');
    this.started = true;
    for (const job of this.jobs) {
      const schedule = this.schedules[job.name] ?? job.defaultSchedule;
      const cron = new Cron(schedule, { timezone: JOBS_TIME_ZONE }, (c) => void this.fire(job, scheduledTime(c, c.currentRun() ?? new Date())));
      this.crons.push({ job, cron });
    }
    this.leaseLoop();
  }

  /** Whether this instance holds the lease (as far as it knows: held and not expired by its clock). */
  isLeader(): boolean {
    return this.lease !== null && this.now() < this.lease.expiresAt;
  }

  /** The fencing number this instance holds the lease at, null when it does not hold it (for logs and tests). */
  get fence(): number | null {
    return this.lease?.fence ?? null;
  }

  /**
   * One step of the lease loop, which `start` repeats every third of the lease: renews the
   * lease when held (noting its loss when it was taken over), else tries to take it; the
   * leader also deletes old ticks once a day. Resolves to `isLeader()`; never rejects.
   * Concurrent calls share one step.
   */
  refreshLease(): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /**
   * One scheduled time of a job (what its cron calls, with the time it was due): runs the
   * job if this instance is the leader and claims the tick; records how it ended. Resolves
   * when done; never rejects.
   */
  fire(job: Job, scheduledAt: Date): Promise<FireResult> {
    return this.track(this.fireOnce(job, scheduledAt.toISOString()));
  }

  /**
   * Runs a job now unless it is already running here; resolves when done (never rejects).
   * Outside the lease and the ticks: on any instance, leader or not, and recorded nowhere
   * but the log (for tests and on-demand runs).
   */
  runNow(job: Job): Promise<void> {
    return this.track(this.runOnce(job));
  }

  /** Each scheduled job's next run (for logs and tests). */
  nextRuns(): Record<string, Date | null> {
    return Object.fromEntries(this.crons.map((c) => [c.job.name, c.cron.nextRun()]));
  }

  /**
   * Stops scheduling and renewing, waits (at most `graceMs`) for the runs in progress to
   * finish, then gives the lease up so another instance takes over at once.
   * `release: false` keeps it instead, as a killed process would (for tests): another
   * instance takes over when it expires.
   */
  async stop(graceMs = 30_000, opts: { readonly release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    for (const c of this.crons) c.cron.stop();
    this.crons.length = 0;
    clearTimeout(this.leaseTimer);
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    await this.refreshing;
    const lease = this.lease;
    this.lease = null;
    if (lease === null || opts.release === false) return;
    try {
      if (await releaseLease(this.ctx.db, SCHEDULER_LEASE, this.holder, lease.fence)) {
        this.ctx.log({ level: 'info', msg: 'job scheduler lease released', holder: this.holder, fence: lease.fence });
      }
    } catch (err) {
      this.ctx.log({ level: 'warn', msg: 'job scheduler lease not released: another instance takes over when it expires', holder: this.holder, fence: lease.fence, ...errorFields(err) });
    }
  }

  private leaseLoop(): void {
    if (this.stopped) return;
    void this.refreshLease().then(() => {
      if (this.stopped) return;
      this.leaseTimer = setTimeout(() => this.leaseLoop(), this.leaseMs / 3);
      this.leaseTimer.unref();
    });
  }

  private async refreshOnce(): Promise<boolean> {
    const now = new Date(this.now());
    try {
      if (this.lease !== null) {
        const fence = this.lease.fence;
        const expiresAt = await renewLease(this.ctx.db, SCHEDULER_LEASE, this.holder, fence, now, this.leaseMs);
        if (expiresAt !== null) this.lease = { fence, expiresAt: Date.parse(expiresAt) };
        else this.lost(fence, 'taken over by another instance');
      }
      if (this.lease === null) {
        const grant = await acquireLease(this.ctx.db, SCHEDULER_LEASE, this.holder, now, this.leaseMs);
        if (grant !== null) {
          this.lease = { fence: grant.fence, expiresAt: Date.parse(grant.expiresAt) };
          this.ctx.log({ level: 'info', msg: 'job scheduler lease acquired', holder: this.holder, fence: grant.fence, previousHolder: grant.previousHolder });
          this.catchUp(now);
        }
      }
    } catch (err) {
      this.ctx.log({ level: 'error', msg: 'job scheduler lease refresh failed', holder: this.holder, ...errorFields(err) });
    }
    if (this.lease !== null && now.getTime() - this.lastPrunedAt >= PRUNE_EVERY_MS) await this.pruneTicks(now);
    return this.isLeader();
  }

  /**
   * On taking the lease: each job's latest time, if it came within the last two leases, is
   * fired now. A time that came while nobody led (the leader died and its lease had to
   * expire first; the followers' crons fired and did nothing) is thus run late, not
   * skipped; one already claimed (run, or begun, by the previous leader) is skipped as usual.
   */
  private catchUp(now: Date): void {
    if (!this.started || this.stopped) return;
    for (const { job, cron } of this.crons) {
      const last = latestTime(cron, now);
      if (last !== undefined && now.getTime() - last.getTime() <= CATCH_UP_MS_PER_LEASE_MS * this.leaseMs) void this.fire(job, last);
    }
  }

  private lost(fence: number, reason: string): void {
    this.lease = null;
    this.ctx.log({ level: 'warn', msg: 'job scheduler lease lost', holder: this.holder, fence, reason });
  }

  private async pruneTicks(now: Date): Promise<void> {
    this.lastPrunedAt = now.getTime();
    try {
      const deleted = await pruneTicks(this.ctx.db, new Date(now.getTime() - TICK_RETENTION_MS));
      if (deleted > 0) this.ctx.log({ level: 'info', msg: 'old job ticks deleted', deleted });
    } catch (err) {
      this.ctx.log({ level: 'warn', msg: 'old job ticks not deleted', ...errorFields(err) });
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  private async fireOnce(job: Job, tick: string): Promise<FireResult> {
    const lease = this.lease;
    if (lease === null || !this.isLeader()) return 'not-leader';
    if (this.running.has(job.name)) {
      this.ctx.log({ level: 'warn', msg: 'job still running, this run is skipped', job: job.name, tick });
      return 'busy';
    }
    this.running.add(job.name);
    try {
      let claim: TickClaim;
      try {
        claim = await claimTick(this.ctx.db, { name: SCHEDULER_LEASE, holder: this.holder, fence: lease.fence }, job.name, tick, new Date(this.now()));
      } catch (err) {
        this.ctx.log({ level: 'error', msg: 'job tick not claimed, this run is skipped', job: job.name, tick, ...errorFields(err) });
        return 'error';
      }
      if (claim === 'not-leader') {
        if (this.lease === lease) this.lost(lease.fence, `tick ${tick} of ${job.name} not claimable: the lease moved or expired`);
        return 'not-leader';
      }
      if (claim === 'already-claimed') {
        this.ctx.log({ level: 'info', msg: 'job tick already claimed, this run is skipped', job: job.name, tick });
        return 'already-claimed';
      }
      const outcome = await this.execute(job, { tick, fence: lease.fence });
      try {
        await finishTick(this.ctx.db, job.name, tick, this.holder, outcome, new Date(this.now()));
      } catch (err) {
        this.ctx.log({ level: 'error', msg: 'job tick end not recorded', job: job.name, tick, outcome, ...errorFields(err) });
      }
      return outcome;
    } finally {
      this.running.delete(job.name);
    }
  }

  private async runOnce(job: Job): Promise<void> {
    if (this.running.has(job.name)) {
      this.ctx.log({ level: 'warn', msg: 'job still running, this run is skipped', job: job.name });
      return;
    }
    this.running.add(job.name);
    try {
      await this.execute(job, {});
    } finally {
      this.running.delete(job.name);
    }
  }

  /** Runs the job and logs how it went; failed when it threw or reported failed items. */
  private async execute(job: Job, fields: Readonly<Record<string, unknown>>): Promise<TickOutcome> {
    try {
      const r = await job.run(this.ctx);
      const failed = r.items.filter((i) => i.outcome === 'failed').length;
      this.ctx.log({ level: failed > 0 ? 'warn' : 'info', msg: 'job done', job: job.name, ...fields, ...r.counts, failedItems: failed });
      return failed > 0 ? 'failed' : 'ok';
    } catch (err) {
      this.ctx.log({ level: 'error', msg: 'job failed', job: job.name, ...fields, ...errorFields(err) });
      return 'failed';
    }
  }
}

/**
 * The scheduled time a cron fired for (`firedAt`: when it actually fired, a few ms late or
 * more): its latest time at or before `firedAt`, to the second (the minute for five-field
 * schedules). Instances firing a few ms apart name the same tick.
 */
export function scheduledTime(cron: Cron, firedAt: Date): Date {
  return latestTime(cron, firedAt) ?? new Date(Math.floor(firedAt.getTime() / 60_000) * 60_000);
}

/** The cron's latest time at or before `at`, if any. */
function latestTime(cron: Cron, at: Date): Date | undefined {
  return cron.previousRuns(1, new Date(at.getTime() + 1))[0];
}
