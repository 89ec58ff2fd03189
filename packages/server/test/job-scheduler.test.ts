import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { initDataDir, JOB_NAMES } from '../src/datadir.js';
import { allJobs } from '../src/jobs/index.js';
import type { Job, JobContext, JobResult } from '../src/jobs/job.js';
import { JobScheduler } from '../src/jobs/scheduler.js';
import type { LogEntry } from '../src/log.js';

function fakeJob(name: string, body: () => Promise<void>): Job & { runs: number } {
  const job = {
    name,
    description: 'test job',
    defaultSchedule: '0 7 * * *',
    runs: 0,
    async run(): Promise<JobResult> {
      job.runs++;
      await body();
      return { job: name, startedAt: '', finishedAt: '', counts: { seen: 1 }, items: [] };
    },
  };
  return job;
}

function context(logs: LogEntry[]): JobContext {
  return { db: null as never, clock: () => new Date(), log: (e) => logs.push(e), settings: null as never, mailer: null, store: null as never, audit: null as never };
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
    const a = fakeJob('a', async () => undefined);
    const b = fakeJob('b', async () => undefined);
    const s = new JobScheduler(context([]), [a, b], { b: '30 3 * * 1' });
    s.start();
    const next = s.nextRuns();
    await s.stop();
    const paris = (d: Date | null | undefined) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d!);
    assert.match(paris(next.a), /^\w{3} 07:00$/);
    assert.equal(paris(next.b), 'Mon 03:30');
    assert.deepEqual(s.nextRuns(), {});
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
});
