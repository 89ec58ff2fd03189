import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Cron } from 'croner';
import { initDataDir, JOB_NAMES, type ServerSettings } from '../src/datadir.js';
import type { Database } from '../src/db/database.js';
import { acquireLease, claimTick, readLease, releaseLease } from '../src/db/queries/leases.js';
import { allJobs } from '../src/jobs/index.js';
import type { Job, JobContext, JobResult } from '../src/jobs/job.js';
import { JOBS_TIME_ZONE, JobScheduler, SCHEDULER_LEASE, scheduledTime, type JobSchedulerOptions } from '../src/jobs/scheduler.js';
import type { LogEntry } from '../src/log.js';
import { eventually, testDatabase } from './kit.js';

function fakeJob(name: string, body: () => Promise<void>, opts: { failedItems?: number } = {}): Job & { runs: number } {
  const job = {
    name,
    description: 'test job',
    defaultSchedule: '0 7 * * *',
    runs: 0,
    async run(): Promise<JobResult> {
      job.runs++;
      await body();
      const items = Array.from({ length: opts.failedItems ?? 0 }, (_, i) => ({ id: `item-${i}`, outcome: 'failed' as const, detail: 'broken' }));
      return { job: name, startedAt: '', finishedAt: '', counts: { seen: 1 }, items };
    },
  };
  return job;
}

function context(logs: LogEntry[], db: Database = null as never, settings: ServerSettings = null as never): JobContext {
  return { db, clock: () => new Date(), log: (e) => logs.push(e), settings, mailer: null, store: null as never, audit: null as never };
}

/** A wall clock moved by hand (the scheduler's `now` option). */
class Wall {
  constructor(public t = Date.parse('2026-03-02T05:59:00.000Z')) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Schedulers made by `instance`: stopped by `close` (their crons would keep the test process alive). */
const live = new Set<JobScheduler>();

/**
 * One database of the selected engine (an SQLite file, or a PostgreSQL database) opened by
 * `handles` separate handles (as separate server processes would); `close` stops the
 * schedulers made meanwhile and removes it.
 */
async function sharedDatabase(handles = 2): Promise<{ dbs: Database[]; close: () => Promise<void> }> {
  const t = await testDatabase();
  const dbs: Database[] = [t.db];
  for (let i = 1; i < handles; i++) dbs.push((await t.open()).db);
  return {
    dbs,
    close: async () => {
      for (const s of live) await s.stop(0, { release: false });
      live.clear();
      await t.close();
    },
  };
}

interface Instance {
  readonly s: JobScheduler;
  readonly logs: LogEntry[];
}

function instance(db: Database, jobs: readonly Job[], opts: JobSchedulerOptions, schedules: Readonly<Record<string, string>> = {}): Instance {
  const logs: LogEntry[] = [];
  const s = new JobScheduler(context(logs, db), jobs, schedules, opts);
  live.add(s);
  return { s, logs };
}

const LEASE_MS = 30_000;
const T1 = new Date('2026-03-02T06:00:00.000Z');
const T2 = new Date('2026-03-03T06:00:00.000Z');

async function tickRows(db: Database, job: string) {
  return db.selectFrom('job_ticks').selectAll().where('job', '=', job).orderBy('tick').execute();
}

describe('the in-server job scheduler', () => {
  it('never runs the same job twice at once: the overlapping run is skipped and logged', async () => {
    const logs: LogEntry[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const job = fakeJob('slow', () => gate);
    const s = new JobScheduler(context(logs), [job]);
    const first = s.runNow(job);
    await s.runNow(job);
    assert.equal(job.runs, 1);
    assert.ok(logs.some((l) => l.level === 'warn' && l.msg === 'job still running, this run is skipped' && l.job === 'slow'));
    release();
    await first;
    assert.ok(logs.some((l) => l.msg === 'job done' && l.job === 'slow' && l.seen === 1));
    await s.runNow(job);
    assert.equal(job.runs, 2, 'runs again once the first is over');
  });

  it('stop waits for a run in progress to finish', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let finished = false;
    const job = fakeJob('long', async () => {
      await gate;
      finished = true;
    });
    const s = new JobScheduler(context([]), [job]);
    void s.runNow(job);
    setTimeout(release, 50);
    await s.stop(5_000);
    assert.equal(finished, true, 'stop returned only after the run ended');
  });

  it('a failing job is logged and does not throw; it can run again', async () => {
    const logs: LogEntry[] = [];
    const job = fakeJob('broken', () => Promise.reject(new Error('disk on fire')));
    const s = new JobScheduler(context(logs), [job]);
    await s.runNow(job);
    await s.runNow(job);
    assert.equal(job.runs, 2);
    assert.equal(logs.filter((l) => l.level === 'error' && l.msg === 'job failed' && l.error === 'disk on fire').length, 2);
  });

  it('schedules each job by its default or the configured cron, in Europe/Paris; stop clears them', async () => {
    const { dbs, close } = await sharedDatabase(1);
    try {
      const a = fakeJob('a', async () => undefined);
      const b = fakeJob('b', async () => undefined);
      const s = new JobScheduler(context([], dbs[0]), [a, b], { b: '30 3 * * 1' }, { leaseMs: LEASE_MS });
      s.start();
      const next = s.nextRuns();
      await s.stop();
      const paris = (d: Date | null | undefined) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d!);
      assert.match(paris(next.a), /^\w{3} 07:00$/);
      assert.equal(paris(next.b), 'Mon 03:30');
      assert.deepEqual(s.nextRuns(), {});
    } finally {
      await close();
    }
  });

  it('the settings know every job by name (jobSchedules is checked against this list)', () => {
    assert.deepEqual([...JOB_NAMES].sort(), allJobs().map((j) => j.name).sort());
  });

  it('server.json: an invalid job schedule is refused at start with the job named', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'coffre-sched-'));
    try {
      writeFileSync(path.join(dir, 'server.json'), JSON.stringify({ v: 1, jobSchedules: { observatory: '0 25 * * *' } }));
      await assert.rejects(initDataDir(dir), /jobSchedules\.observatory: invalid schedule "0 25 \* \* \*": the hour \(0-23\) field is out of range/);
      writeFileSync(path.join(dir, 'server.json'), JSON.stringify({ v: 1, jobSchedules: { observatory: '15 6 * * *' } }));
      assert.deepEqual((await initDataDir(dir)).settings.jobSchedules, { observatory: '15 6 * * *' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a tick is the scheduled time the cron fired for, the same however late it fired', () => {
    const daily = new Cron('0 7 * * *', { timezone: JOBS_TIME_ZONE, paused: true });
    for (const firedAt of ['2026-03-02T06:00:00.000Z', '2026-03-02T06:00:00.004Z', '2026-03-02T06:00:00.930Z', '2026-03-02T06:00:02.500Z']) {
      assert.equal(scheduledTime(daily, new Date(firedAt)).toISOString(), '2026-03-02T06:00:00.000Z', firedAt);
    }
    const everyFive = new Cron('*/5 * * * *', { timezone: JOBS_TIME_ZONE, paused: true });
    assert.equal(scheduledTime(everyFive, new Date('2026-03-02T06:05:00.017Z')).toISOString(), '2026-03-02T06:05:00.000Z');
    assert.equal(scheduledTime(everyFive, new Date('2026-03-02T06:09:59.999Z')).toISOString(), '2026-03-02T06:05:00.000Z');
  });
});

describe('several scheduler instances on one database', () => {
  it('only one becomes leader (fence 1), and renewing keeps the lease past its first expiry', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wall = new Wall();
      const a = instance(dbs[0]!, [], { leaseMs: LEASE_MS, now: wall.now });
      const b = instance(dbs[1]!, [], { leaseMs: LEASE_MS, now: wall.now });
      assert.equal(await a.s.refreshLease(), true);
      assert.equal(await b.s.refreshLease(), false);
      assert.equal(a.s.isLeader(), true);
      assert.equal(b.s.isLeader(), false);
      assert.equal(a.s.fence, 1);
      assert.equal(b.s.fence, null);
      const row = await readLease(dbs[0]!, SCHEDULER_LEASE);
      assert.equal(row?.holder, a.s.holder);
      assert.equal(row?.fence, 1);
      assert.equal(Date.parse(row!.expiresAt) - Date.parse(row!.acquiredAt), LEASE_MS);
      assert.ok(a.logs.some((l) => l.level === 'info' && l.msg === 'job scheduler lease acquired' && l.fence === 1 && l.holder === a.s.holder));

      wall.advance(20_000);
      assert.equal(await a.s.refreshLease(), true, 'renewed');
      wall.advance(20_000); // 40 s after the first acquisition: only the renewal keeps it
      assert.equal(await b.s.refreshLease(), false);
      assert.equal(a.s.isLeader(), true);
      assert.equal((await readLease(dbs[0]!, SCHEDULER_LEASE))?.holder, a.s.holder);
      assert.equal(a.s.fence, 1, 'renewing keeps the fence');
    } finally {
      await close();
    }
  });

  it('a tick fired on both instances runs the job once, recorded with the holder and fence', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wall = new Wall();
      const job = fakeJob('observatory', async () => undefined);
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      await b.s.refreshLease();
      const results = await Promise.all([a.s.fire(job, T1), b.s.fire(job, T1)]);
      assert.deepEqual(results, ['ok', 'not-leader']);
      assert.equal(job.runs, 1);
      const [tick, ...more] = await tickRows(dbs[1]!, 'observatory');
      assert.equal(more.length, 0);
      assert.equal(tick?.tick, T1.toISOString());
      assert.equal(tick?.holder, a.s.holder);
      assert.equal(Number(tick?.fence), 1);
      assert.equal(tick?.outcome, 'ok');
      assert.equal(tick?.started_at, new Date(wall.t).toISOString());
      assert.equal(tick?.finished_at, new Date(wall.t).toISOString());

      assert.equal(await a.s.fire(job, T1), 'already-claimed', 'the same time again is skipped');
      assert.equal(job.runs, 1);
      assert.ok(a.logs.some((l) => l.msg === 'job tick already claimed, this run is skipped' && l.tick === T1.toISOString()));
      assert.equal(await a.s.fire(job, T2), 'ok', 'the next time runs');
      assert.equal(job.runs, 2);
    } finally {
      await close();
    }
  });

  it('a graceful stop gives the lease up at once; the next leader skips the tick already run', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wall = new Wall();
      const job = fakeJob('reports', async () => undefined);
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      assert.equal(await a.s.fire(job, T1), 'ok');
      assert.equal(await b.s.refreshLease(), false);
      await a.s.stop();
      assert.equal(a.s.isLeader(), false);
      assert.ok(a.logs.some((l) => l.level === 'info' && l.msg === 'job scheduler lease released' && l.fence === 1));
      // No time has passed: only the release lets B in.
      assert.equal(await b.s.refreshLease(), true);
      assert.equal(b.s.fence, 2, 'a new holder moves the fence');
      assert.ok(b.logs.some((l) => l.msg === 'job scheduler lease acquired' && l.fence === 2 && l.previousHolder === a.s.holder));
      assert.equal(await b.s.fire(job, T1), 'already-claimed', 'B firing the same time a moment later does not run it again');
      assert.equal(job.runs, 1);
      assert.equal(await b.s.fire(job, T2), 'ok');
      assert.equal(job.runs, 2);
      assert.deepEqual(
        (await tickRows(dbs[0]!, 'reports')).map((r) => [r.tick, r.holder, Number(r.fence)]),
        [
          [T1.toISOString(), a.s.holder, 1],
          [T2.toISOString(), b.s.holder, 2],
        ],
      );
    } finally {
      await close();
    }
  });

  it('stop lets a claimed run finish and records it before giving the lease up', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wall = new Wall();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const job = fakeJob('metering', () => gate);
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      const run = a.s.fire(job, T1);
      await eventually('the job started', async () => job.runs === 1);
      assert.equal(await a.s.fire(job, T2), 'busy', 'the next time is skipped while the run goes on');
      assert.equal((await tickRows(dbs[0]!, 'metering')).length, 1, 'the skipped time was not claimed');
      setTimeout(release, 50);
      await a.s.stop(5_000);
      assert.equal(await run, 'ok');
      const [tick] = await tickRows(dbs[0]!, 'metering');
      assert.equal(tick?.outcome, 'ok');
      assert.equal(await b.s.refreshLease(), true, 'released after the run');
    } finally {
      await close();
    }
  });

  it('a crashed leader (no release) is replaced once its lease expires, and the new leader runs the next tick', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wall = new Wall();
      const job = fakeJob('retention', async () => undefined);
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      assert.equal(await a.s.fire(job, T1), 'ok');
      await a.s.stop(0, { release: false });
      assert.ok(!a.logs.some((l) => l.msg === 'job scheduler lease released'));
      assert.equal((await readLease(dbs[1]!, SCHEDULER_LEASE))?.holder, a.s.holder, 'the dead leader still holds the lease');
      wall.advance(LEASE_MS - 1_000);
      assert.equal(await b.s.refreshLease(), false, 'not before the lease expires');
      assert.equal(await b.s.fire(job, T2), 'not-leader');
      wall.advance(1_001);
      assert.equal(await b.s.refreshLease(), true, 'taken over once expired');
      assert.equal(b.s.fence, 2);
      assert.equal(await b.s.fire(job, T2), 'ok');
      assert.equal(job.runs, 2);
      const ticks = await tickRows(dbs[1]!, 'retention');
      assert.deepEqual(
        ticks.map((r) => [r.tick, r.holder, Number(r.fence)]),
        [
          [T1.toISOString(), a.s.holder, 1],
          [T2.toISOString(), b.s.holder, 2],
        ],
      );
    } finally {
      await close();
    }
  });

  it('a stale leader whose lease was taken over cannot claim a tick though it still believes it leads', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      // A was paused: its own clock reading predates the lease expiry B sees.
      const wallA = new Wall();
      const wallB = new Wall(wallA.t + LEASE_MS + 1_000);
      const job = fakeJob('verify', async () => undefined);
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: wallA.now });
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: wallB.now });
      await a.s.refreshLease();
      assert.equal(await b.s.refreshLease(), true);
      assert.equal(b.s.fence, 2);
      assert.equal(a.s.isLeader(), true, 'A has not noticed');
      assert.equal(a.s.fence, 1);
      assert.equal(await a.s.fire(job, T1), 'not-leader');
      assert.equal(job.runs, 0);
      assert.equal((await tickRows(dbs[0]!, 'verify')).length, 0, 'nothing claimed');
      assert.equal(a.s.isLeader(), false, 'A learnt it lost the lease');
      assert.ok(a.logs.some((l) => l.level === 'warn' && l.msg === 'job scheduler lease lost' && l.fence === 1));
      assert.equal(await a.s.refreshLease(), false, 'and does not take it back while B holds it');
      assert.equal(await b.s.fire(job, T1), 'ok', 'the tick is still there for the real leader');
      assert.equal(job.runs, 1);
    } finally {
      await close();
    }
  });

  it('a renewal finds the lease taken over: the loss is logged and the instance follows', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wallA = new Wall();
      const wallB = new Wall(wallA.t + LEASE_MS + 1_000);
      const a = instance(dbs[0]!, [], { leaseMs: LEASE_MS, now: wallA.now });
      const b = instance(dbs[1]!, [], { leaseMs: LEASE_MS, now: wallB.now });
      await a.s.refreshLease();
      await b.s.refreshLease();
      assert.equal(await a.s.refreshLease(), false);
      assert.equal(a.s.fence, null);
      assert.ok(a.logs.some((l) => l.level === 'warn' && l.msg === 'job scheduler lease lost' && l.reason === 'taken over by another instance'));
      assert.equal((await readLease(dbs[0]!, SCHEDULER_LEASE))?.holder, b.s.holder, "A's renewal did not touch B's lease");
    } finally {
      await close();
    }
  });

  it('the fence refuses a claim made under an older holding, even by the same holder', async () => {
    const { dbs, close } = await sharedDatabase(1);
    const db = dbs[0]!;
    try {
      const t0 = new Date('2026-03-02T05:59:00.000Z');
      const a1 = await acquireLease(db, 'test', 'A', t0, 1_000);
      assert.equal(a1?.fence, 1);
      assert.equal(await acquireLease(db, 'test', 'B', t0, 1_000), null, 'held by A');
      assert.equal(await releaseLease(db, 'test', 'A', 1), true);
      assert.equal((await acquireLease(db, 'test', 'B', t0, 1_000))?.fence, 2);
      assert.equal(await releaseLease(db, 'test', 'B', 2), true);
      assert.equal((await acquireLease(db, 'test', 'A', t0, 1_000))?.fence, 3);
      assert.equal(await claimTick(db, { name: 'test', holder: 'A', fence: 1 }, 'gc', T1.toISOString(), t0), 'not-leader', 'fence 1 is over');
      assert.equal(await claimTick(db, { name: 'test', holder: 'B', fence: 2 }, 'gc', T1.toISOString(), t0), 'not-leader', 'so is B');
      assert.equal(await claimTick(db, { name: 'test', holder: 'A', fence: 3 }, 'gc', T1.toISOString(), new Date(t0.getTime() + 1_000)), 'not-leader', 'expired');
      assert.equal(await claimTick(db, { name: 'test', holder: 'A', fence: 3 }, 'gc', T1.toISOString(), t0), 'claimed');
      assert.equal(await claimTick(db, { name: 'test', holder: 'A', fence: 3 }, 'gc', T1.toISOString(), t0), 'already-claimed');
      assert.equal(await releaseLease(db, 'test', 'B', 2), false, 'B no longer holds it');
    } finally {
      await close();
    }
  });

  it('a failed job records its tick as failed (thrown, or failed items); the error is logged', async () => {
    const { dbs, close } = await sharedDatabase(1);
    try {
      const wall = new Wall();
      const throws = fakeJob('purge-temp', () => Promise.reject(new Error('disk on fire')));
      const failedItems = fakeJob('mail', async () => undefined, { failedItems: 2 });
      const a = instance(dbs[0]!, [throws, failedItems], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      wall.advance(1_234);
      assert.equal(await a.s.fire(throws, T1), 'failed');
      assert.equal(await a.s.fire(failedItems, T1), 'failed');
      const [thrown] = await tickRows(dbs[0]!, 'purge-temp');
      assert.equal(thrown?.outcome, 'failed');
      assert.equal(thrown?.finished_at, new Date(wall.t).toISOString());
      assert.equal((await tickRows(dbs[0]!, 'mail'))[0]?.outcome, 'failed');
      assert.ok(a.logs.some((l) => l.level === 'error' && l.msg === 'job failed' && l.job === 'purge-temp' && l.error === 'disk on fire' && l.tick === T1.toISOString()));
      assert.ok(a.logs.some((l) => l.level === 'warn' && l.msg === 'job done' && l.job === 'mail' && l.failedItems === 2));
      assert.equal(await a.s.fire(throws, T2), 'failed', 'and it runs again at its next time');
      assert.equal(throws.runs, 2);
    } finally {
      await close();
    }
  });

  it('runNow runs on any instance, outside the lease and the ticks', async () => {
    const { dbs, close } = await sharedDatabase();
    try {
      const wall = new Wall();
      const job = fakeJob('gc', async () => undefined);
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      await b.s.refreshLease();
      await b.s.runNow(job);
      assert.equal(job.runs, 1);
      assert.equal((await tickRows(dbs[0]!, 'gc')).length, 0);
    } finally {
      await close();
    }
  });

  it('the leader deletes ticks older than 30 days when it takes the lease', async () => {
    const { dbs, close } = await sharedDatabase(1);
    const db = dbs[0]!;
    try {
      const wall = new Wall();
      const day = 86_400_000;
      const row = (daysAgo: number) => {
        const at = new Date(wall.t - daysAgo * day).toISOString();
        return { job: 'observatory', tick: at, holder: 'old', fence: 1, started_at: at, finished_at: at, outcome: 'ok' };
      };
      await db.insertInto('job_ticks').values([row(31), row(29)]).execute();
      const a = instance(db, [], { leaseMs: LEASE_MS, now: wall.now });
      await a.s.refreshLease();
      assert.deepEqual(
        (await tickRows(db, 'observatory')).map((r) => r.tick),
        [new Date(wall.t - 29 * day).toISOString()],
      );
      assert.ok(a.logs.some((l) => l.msg === 'old job ticks deleted' && l.deleted === 1));
    } finally {
      await close();
    }
  });

  it('the lease lasts settings.jobLeaseSeconds unless told otherwise', async () => {
    const { dbs, close } = await sharedDatabase(1);
    try {
      const s = new JobScheduler(context([], dbs[0], { jobLeaseSeconds: 5 } as ServerSettings), [], {}, { now: new Wall().now });
      await s.refreshLease();
      const row = await readLease(dbs[0]!, SCHEDULER_LEASE);
      assert.equal(Date.parse(row!.expiresAt) - Date.parse(row!.acquiredAt), 5_000);
    } finally {
      await close();
    }
  });

  describe('a new leader runs the latest time of each job if it came within the last two leases', () => {
    // Fires for real only on 29 February at 07:00 in Paris: never while these tests run.
    const schedules = { leap: '0 7 29 2 *' };
    const due = new Date('2028-02-29T06:00:00.000Z');

    it('a time that came while nobody led (the leader died) is run late, once', async () => {
      const { dbs, close } = await sharedDatabase(3);
      const job = fakeJob('leap', async () => undefined);
      // A leads from a minute before the time, then dies; its lease expires 30 s before the time.
      const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: () => due.getTime() - 60_000 }, schedules);
      const b = instance(dbs[1]!, [job], { leaseMs: LEASE_MS, now: () => due.getTime() + 20_000 }, schedules);
      const c = instance(dbs[2]!, [job], { leaseMs: LEASE_MS, now: () => due.getTime() + 25_000 }, schedules);
      try {
        await a.s.refreshLease();
        await a.s.stop(0, { release: false });
        b.s.start();
        await eventually('B ran the missed time', async () => (await tickRows(dbs[0]!, 'leap')).some((r) => r.outcome !== null));
        assert.equal(job.runs, 1);
        const [tick] = await tickRows(dbs[0]!, 'leap');
        assert.equal(tick?.tick, due.toISOString());
        assert.equal(tick?.holder, b.s.holder);
        await b.s.stop();
        c.s.start(); // C takes over after B: the time was run already
        await eventually('C leads', async () => c.s.isLeader());
        await c.s.stop();
        assert.equal(job.runs, 1);
        assert.ok(c.logs.some((l) => l.msg === 'job tick already claimed, this run is skipped' && l.tick === due.toISOString()));
      } finally {
        await close();
      }
    });

    for (const [late, runs] of [
      [2 * LEASE_MS, 1],
      [2 * LEASE_MS + 1_000, 0],
    ] as const) {
      it(`taking the lease ${late / 1000} s after the time runs it ${runs} time(s)`, async () => {
        const { dbs, close } = await sharedDatabase(1);
        const job = fakeJob('leap', async () => undefined);
        const a = instance(dbs[0]!, [job], { leaseMs: LEASE_MS, now: () => due.getTime() + late }, schedules);
        try {
          a.s.start();
          await eventually('A leads', async () => a.s.isLeader());
          await a.s.stop(); // waits for the run it may have started
          assert.equal(job.runs, runs);
          assert.equal((await tickRows(dbs[0]!, 'leap')).length, runs);
        } finally {
          await close();
        }
      });
    }
  });

  it('started on real time: one leader, and the other takes over by itself when the leader dies', async () => {
    const { dbs, close } = await sharedDatabase();
    const leaseMs = 300;
    const a = instance(dbs[0]!, [fakeJob('observatory', async () => undefined)], { leaseMs });
    const b = instance(dbs[1]!, [fakeJob('observatory', async () => undefined)], { leaseMs });
    try {
      a.s.start();
      await eventually('A leads', async () => a.s.isLeader(), 2_000);
      b.s.start();
      // B tries at start and then every 100 ms: it must keep failing while A renews.
      await new Promise((r) => setTimeout(r, 400)); // longer than the lease: only renewals keep it
      assert.equal(b.s.isLeader(), false);
      assert.equal(a.s.isLeader(), true, 'A kept renewing');
      await a.s.stop(0, { release: false });
      const diedAt = Date.now();
      await eventually('B takes over', async () => b.s.isLeader(), 3_000);
      assert.ok(Date.now() - diedAt < 2_000);
      assert.equal(b.s.fence, 2);
    } finally {
      await close();
    }
  });
});
