import { statSync, watch, type FSWatcher } from 'node:fs';
import { COFFRE_VERSION, CoffreError, isCoffreError, nextRunAfter, type RepoResponse } from '@coffre/core';
import { ApiError, type ApiClient } from '../client.js';
import type { ConfigStore } from '../config.js';
import type { Repository } from '../engine/repo.js';
import { JobStore, reportSchedule, type BackupJob } from '../jobs.js';
import type { PassphraseSource } from '../passphrase.js';
import { runRestoreTest, snapshotToTest } from '../restore-test-run.js';
import { backupRun, reportRun, runErrorCode, type BackupOutcome, type RunRecord, type RunResult, type RunTrigger } from '../runs.js';
import { clientFor, openRepository } from '../session.js';
import { rememberSites } from '../sites.js';
import { killRunningHooks, runHook, type HookResult } from './hooks.js';
import { DaemonLock } from './lock.js';
import type { LogFields, Logger } from './log.js';
import { DaemonStateStore, keepJobs, withJobDone, withRestoreTestDone, type DaemonStateFile } from './state.js';
import { catchUpDue, latestDue, retryBeforeNext, retryDelayMs, type Schedule } from './timing.js';

/**
 * `coffre daemon`: runs this machine's jobs (jobs.json) on their schedules, one at a time,
 * with their pre and post commands; reports every run; retries runs that could not reach
 * the server until the job's next scheduled time; catches up, once, a run missed while it
 * was not running; runs a restore test on a schedule; tells the server its schedule and
 * that it is alive. The rules are in docs/AGENT-SERVICE.md.
 */
export interface DaemonSettings {
  readonly heartbeatMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly hookTimeoutMs: number;
  /** How long a stop waits for the running backup or restore test. */
  readonly stopGraceMs: number;
  /** A scheduled time missed while the daemon was down is caught up if no older than this. */
  readonly catchUpMs: number;
  /** The periodic restore test, or null when turned off. */
  readonly restoreTest: { readonly schedule: string; readonly timezone: string; readonly percent: number } | null;
}

/** Key of the restore test among the tasks (job names cannot start with '#'). */
const RESTORE_TEST = '#restore-test';
/** The scheduler wakes at least this often (clock changes, suspend, a missed watch event). */
const MAX_SLEEP_MS = 60_000;

interface Task extends Schedule {
  readonly key: string;
  readonly kind: 'backup' | 'restore-test';
  readonly job?: BackupJob;
}

interface Pending {
  readonly scheduled: Date;
  attempt: number;
  retryAt: Date | null;
  queued: boolean;
}

type Outcome = { readonly retryable: true; readonly errorCode: string } | { readonly retryable: false; readonly result: string };

/** The server cannot be reached now (network, or an HTTP 502/503/504 of a proxy or maintenance): worth a retry. */
export function isRetryable(e: unknown): boolean {
  if (isCoffreError(e, 'UNREACHABLE')) return true;
  return e instanceof ApiError && [502, 503, 504].includes(e.status);
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export class Daemon {
  private readonly jobStore: JobStore;
  private readonly stateStore: DaemonStateStore;
  private readonly lock: DaemonLock;
  private readonly startedAt = new Date();
  private jobs: BackupJob[] = [];
  private jobsSignature = '';
  private jobsFileStamp = '';
  private state: DaemonStateFile = { v: 1, jobs: {}, restoreTest: null };
  /** When each task's current schedule took effect: times before it are not owed. */
  private readonly armedAt = new Map<string, number>();
  private readonly pending = new Map<string, Pending>();
  private queue: string[] = [];
  private running: string | null = null;
  private runningDone: Promise<void> | null = null;
  private stopping = false;
  private finished = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private heartbeatBusy = false;
  private heartbeatAgain = false;
  private heartbeatOk: boolean | null = null;
  private scheduleReported = false;
  private resolveExit: (code: number) => void = () => undefined;
  private readonly signalHandlers: [NodeJS.Signals, () => void][] = [];

  constructor(
    private readonly store: ConfigStore,
    private readonly pass: PassphraseSource,
    private readonly settings: DaemonSettings,
    private readonly logger: Logger,
  ) {
    this.jobStore = new JobStore(store);
    this.stateStore = new DaemonStateStore(store.dir);
    this.lock = new DaemonLock(store.dir);
  }

  private log(level: 'info' | 'warn' | 'error', event: string, msg: string, fields?: LogFields): void {
    this.logger.log(level, event, msg, fields);
  }

  /**
   * Starts and runs until SIGTERM or SIGINT; resolves with the exit code. Throws before
   * anything runs when the machine is not enrolled, no key is available, another daemon
   * holds the directory, or jobs.json cannot be read.
   */
  async run(): Promise<number> {
    const config = this.store.load();
    // Backups need the write keys (format 2) or the cached key (format 1); not the passphrase.
    if (!this.store.loadKey() && !this.store.loadWriteKeys(config.customerId) && !this.pass.file && !process.env.COFFRE_PASSPHRASE) {
      throw new CoffreError(
        'NO_KEY',
        'this machine holds no backup key and no passphrase was given: run one command with the passphrase first (e.g. "coffre snapshots"), or give --passphrase-file or COFFRE_PASSPHRASE to the daemon',
      );
    }
    this.lock.acquire();
    try {
      this.jobs = this.validJobs(this.jobStore.list());
    } catch (e) {
      this.lock.release();
      throw e;
    }
    this.jobsSignature = signature(this.jobs);
    this.jobsFileStamp = this.stampOfJobsFile();
    const loaded = this.stateStore.load();
    this.state = keepJobs(loaded.state, this.jobs.map((j) => j.name));
    const exit = new Promise<number>((r) => (this.resolveExit = r));

    this.log('info', 'start', `coffre daemon ${COFFRE_VERSION} started for machine "${config.machineName}" with ${this.jobs.length} job(s)`, {
      pid: process.pid,
      version: COFFRE_VERSION,
      configDir: this.store.dir,
      machine: config.machineName,
      jobs: this.jobs.map((j) => j.name),
      heartbeatSeconds: this.settings.heartbeatMs / 1000,
      restoreTest: this.settings.restoreTest ? `${this.settings.restoreTest.schedule} (${this.settings.restoreTest.timezone})` : 'off',
    });
    if (loaded.problem) this.log('error', 'state-damaged', loaded.problem);
    if (this.jobs.length === 0) this.log('warn', 'no-jobs', 'no backup job yet: add one with "coffre job add NAME --path PATH --schedule CRON"; the daemon picks it up at once');

    const now = new Date();
    for (const t of this.tasks()) this.arm(t, now, true);
    this.saveState();

    for (const sig of ['SIGTERM', 'SIGINT'] as const) this.onSignal(sig, () => this.stop(sig));
    if (process.platform !== 'win32') this.onSignal('SIGHUP', () => this.reload('SIGHUP'));
    try {
      this.watcher = watch(this.store.dir, { persistent: false }, (_ev, name) => {
        if (name === null || String(name) === 'jobs.json') this.scheduleReload();
      });
      this.watcher.on('error', () => undefined); // the periodic check still sees changes
    } catch {
      // no file watching here: the periodic check (at least every minute) sees changes
    }
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.settings.heartbeatMs);
    void this.heartbeat();
    this.tick();
    return exit;
  }

  private onSignal(sig: NodeJS.Signals, fn: () => void): void {
    process.on(sig, fn);
    this.signalHandlers.push([sig, fn]);
  }

  // ---- tasks and their times ----

  private tasks(): Task[] {
    const list: Task[] = this.jobs.map((j) => ({ key: j.name, kind: 'backup', schedule: j.schedule, timezone: j.timezone, job: j }));
    const rt = this.settings.restoreTest;
    if (rt) list.push({ key: RESTORE_TEST, kind: 'restore-test', schedule: rt.schedule, timezone: rt.timezone });
    return list;
  }

  private lastCompleted(key: string): Date | null {
    const s = key === RESTORE_TEST ? this.state.restoreTest : this.state.jobs[key];
    return s ? new Date(s.lastCompleted) : null;
  }

  /** Starts owing a task its scheduled times from now on; at start, catches up one missed time. */
  private arm(t: Task, now: Date, atStart: boolean): void {
    this.armedAt.set(t.key, now.getTime());
    const catchUp = atStart ? catchUpDue(t, this.lastCompleted(t.key), now, this.settings.catchUpMs) : null;
    const next = nextRunAfter(t, now);
    const what = t.kind === 'backup' ? `job ${t.key}` : 'restore test';
    this.log('info', 'scheduled', `${what}: "${t.schedule}" (${t.timezone}), next run ${iso(next) ?? 'never'}${catchUp ? `; catching up the run of ${catchUp.toISOString()} missed while the daemon was not running` : ''}`, {
      ...(t.kind === 'backup' ? { job: t.key } : { task: 'restore-test' }),
      schedule: t.schedule,
      timezone: t.timezone,
      next: iso(next),
      lastCompleted: iso(this.lastCompleted(t.key)),
      catchUp: iso(catchUp),
    });
    if (catchUp) this.enqueue(t.key, catchUp);
  }

  private enqueue(key: string, scheduled: Date): void {
    this.pending.set(key, { scheduled, attempt: 0, retryAt: null, queued: true });
    this.queue.push(key);
  }

  private tick(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    if (this.stopping) return;
    // A change the file watcher missed (network file systems, some platforms): reload() ticks again.
    if (this.stampOfJobsFile() !== this.jobsFileStamp) return this.reload('change');
    const now = new Date();
    let sleep = MAX_SLEEP_MS;
    for (const t of this.tasks()) {
      const p = this.pending.get(t.key);
      if (p) {
        if (p.retryAt && !p.queued) {
          if (p.retryAt.getTime() <= now.getTime()) {
            p.retryAt = null;
            p.queued = true;
            this.queue.push(t.key);
          } else sleep = Math.min(sleep, p.retryAt.getTime() - now.getTime());
        }
        continue;
      }
      const since = new Date(Math.max(this.lastCompleted(t.key)?.getTime() ?? 0, this.armedAt.get(t.key) ?? now.getTime()));
      const due = latestDue(t, since, now);
      if (due) this.enqueue(t.key, due);
      else {
        const next = nextRunAfter(t, now);
        if (next) sleep = Math.min(sleep, next.getTime() - now.getTime());
      }
    }
    this.pump();
    if (!this.stopping) this.tickTimer = setTimeout(() => this.tick(), Math.max(0, sleep) + 25);
  }

  /** Starts the next queued task unless one is running: never two at once. */
  private pump(): void {
    if (this.running !== null || this.stopping) return;
    for (let key = this.queue.shift(); key !== undefined; key = this.queue.shift()) {
      const p = this.pending.get(key);
      const task = this.tasks().find((t) => t.key === key);
      if (!p || !task) {
        this.pending.delete(key); // removed meanwhile
        continue;
      }
      p.queued = false;
      this.running = key;
      this.runningDone = this.execute(task, p)
        .catch((e: unknown) => this.log('error', 'internal-error', `unexpected error: ${(e as Error).message}`))
        .finally(() => {
          this.running = null;
          this.runningDone = null;
          if (!this.stopping) this.tick();
        });
      return;
    }
  }

  private async execute(task: Task, p: Pending): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = task.kind === 'backup' ? await this.backupJob(task.job!, p) : await this.restoreTestTask(p);
    } catch (e) {
      // A bug, not an outcome: logged, and the scheduled time is over (no loop on it).
      this.log('error', 'internal-error', `unexpected error: ${(e as Error).message}`, { ...(task.job ? { job: task.key } : { task: 'restore-test' }) });
      outcome = { retryable: false, result: 'failed' };
    }
    const label = task.kind === 'backup' ? { job: task.key } : { task: 'restore-test' };
    if (outcome.retryable) {
      const attempt = p.attempt + 1;
      const delay = retryDelayMs(attempt, this.settings.retryBaseMs, this.settings.retryMaxMs);
      const retryAt = new Date(Date.now() + delay);
      if (this.stopping) {
        // Not over: the next start catches it up.
        this.pending.delete(task.key);
        return;
      }
      if (retryBeforeNext(task, p.scheduled, retryAt)) {
        p.attempt = attempt;
        p.retryAt = retryAt;
        this.log('warn', 'retry-scheduled', `the server could not be reached (${outcome.errorCode}); retry ${attempt} in ${Math.round(delay / 1000)} s`, {
          ...label,
          scheduled: iso(p.scheduled),
          attempt,
          retryAt: iso(retryAt),
          errorCode: outcome.errorCode,
        });
        return;
      }
      const next = nextRunAfter(task, p.scheduled);
      this.log('error', 'retry-abandoned', `the server could not be reached before the next scheduled run (${iso(next)}); the run of ${p.scheduled.toISOString()} is given up, the next one will do the work`, {
        ...label,
        scheduled: iso(p.scheduled),
        attempts: attempt,
        next: iso(next),
        errorCode: outcome.errorCode,
      });
      this.complete(task, p.scheduled, 'failed');
      return;
    }
    this.complete(task, p.scheduled, outcome.result);
  }

  private complete(task: Task, scheduled: Date, result: string): void {
    this.pending.delete(task.key);
    const now = new Date();
    this.state = task.kind === 'backup' ? withJobDone(this.state, task.key, scheduled, result, now) : withRestoreTestDone(this.state, scheduled, result, now);
    this.saveState();
  }

  private saveState(): void {
    try {
      this.stateStore.save(this.state);
    } catch (e) {
      this.log('error', 'state-not-saved', `${this.stateStore.file} could not be written: ${(e as Error).message}`);
    }
  }

  // ---- a backup run ----

  private async backupJob(job: BackupJob, p: Pending): Promise<Outcome> {
    const trigger: RunTrigger = p.attempt > 0 ? 'retry' : 'schedule';
    const meta = { job: job.name, trigger };
    const startedAt = new Date();
    this.log('info', 'run-start', `job ${job.name}: backup started (${trigger}${p.attempt > 0 ? `, attempt ${p.attempt + 1}` : ''})`, { ...meta, scheduled: iso(p.scheduled), attempt: p.attempt + 1 });
    let repo: Repository;
    try {
      repo = await openRepository(this.store, this.pass, 'write');
    } catch (e) {
      if (isRetryable(e)) {
        this.log('warn', 'run-unreachable', `job ${job.name}: the server cannot be reached: ${(e as Error).message}`, { ...meta, errorCode: runErrorCode(e) });
        return { retryable: true, errorCode: runErrorCode(e) };
      }
      const record: RunRecord = { startedAt, finishedAt: new Date(), result: 'failed', files: 0, bytes: 0, addedBytes: 0, warnings: 0, errorCode: runErrorCode(e), ...meta };
      const runId = await this.withControlClient((api) => reportRun(api, record, (err) => this.reportFailed(err)));
      this.logRunEnd(record, runId ?? null, (e as Error).message);
      return { retryable: false, result: 'failed' };
    }
    try {
      let record: RunRecord;
      let outcome: BackupOutcome | null = null;
      let detail: string | undefined;
      const pre = job.pre ? await this.hook(job, 'pre', job.pre, {}) : null;
      if (pre && !pre.ok) {
        record = { startedAt, result: 'failed', files: 0, bytes: 0, addedBytes: 0, warnings: 0, errorCode: 'PRE_COMMAND_FAILED', ...meta };
        detail = 'the pre command failed: nothing was backed up';
      } else {
        outcome = await backupRun(
          repo,
          {
            paths: job.paths,
            excludes: job.excludes,
            reporter: { warning: (w) => this.log('warn', 'backup-warning', `job ${job.name}: ${w.path}: ${w.message}`, { job: job.name, path: w.path, kind: w.kind }) },
          },
          meta,
        );
        record = outcome.record;
        if (!outcome.ok) detail = (outcome.error as Error)?.message ?? String(outcome.error);
      }
      if (job.post) {
        const post = await this.hook(job, 'post', job.post, { COFFRE_RESULT: record.result });
        if (!post.ok && record.result !== 'failed') {
          record = { ...record, result: 'partial', errorCode: 'POST_COMMAND_FAILED' };
          detail = 'the post command failed (the snapshot is kept)';
        }
      }
      if (outcome && !outcome.ok && isRetryable(outcome.error)) {
        this.log('warn', 'run-unreachable', `job ${job.name}: the server was lost during the backup: ${detail}`, { ...meta, errorCode: record.errorCode });
        return { retryable: true, errorCode: record.errorCode ?? 'UNREACHABLE' };
      }
      record = { ...record, finishedAt: new Date() };
      const runId = await reportRun(repo.api, record, (err) => this.reportFailed(err));
      this.logRunEnd(record, runId, detail);
      return { retryable: false, result: record.result };
    } finally {
      repo.api.close();
    }
  }

  private logRunEnd(r: RunRecord, runId: string | null, detail?: string): void {
    const level = r.result === 'success' ? 'info' : r.result === 'partial' ? 'warn' : 'error';
    const seconds = Math.round(((r.finishedAt ?? new Date()).getTime() - r.startedAt.getTime()) / 100) / 10;
    this.log(level, 'run-end', `job ${r.job}: backup ${r.result}${r.snapshotId ? `, snapshot ${r.snapshotId.slice(0, 8)}` : ''}${detail ? `: ${detail}` : ''}`, {
      job: r.job,
      trigger: r.trigger,
      result: r.result as RunResult,
      snapshot: r.snapshotId ?? null,
      files: r.files,
      bytes: r.bytes,
      addedBytes: r.addedBytes,
      warnings: r.warnings,
      errorCode: r.errorCode ?? null,
      durationSeconds: seconds,
      runId,
      reported: runId !== null,
    });
  }

  private reportFailed(e: unknown): void {
    this.log('warn', 'report-failed', `the run report could not be sent: ${(e as Error).message}`);
  }

  private async hook(job: BackupJob, which: 'pre' | 'post', command: string, env: Record<string, string>): Promise<HookResult> {
    this.log('info', `${which}-start`, `job ${job.name}: ${which} command started`, { job: job.name });
    const r = await runHook(command, {
      timeoutMs: this.settings.hookTimeoutMs,
      env: { COFFRE_JOB: job.name, COFFRE_HOOK: which, ...env },
      onLine: (stream, line) => this.log('info', `${which}-output`, line, { job: job.name, stream }),
    });
    const how = r.error ? `could not start: ${r.error}` : r.timedOut ? `timed out after ${Math.round(this.settings.hookTimeoutMs / 1000)} s and was killed` : r.signal ? `killed by ${r.signal}` : `exited with ${r.exitCode}`;
    this.log(r.ok ? 'info' : 'error', `${which}-end`, `job ${job.name}: ${which} command ${how}`, {
      job: job.name,
      ok: r.ok,
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut: r.timedOut,
      durationSeconds: Math.round(r.durationMs / 100) / 10,
    });
    return r;
  }

  // ---- the restore test ----

  private async restoreTestTask(p: Pending): Promise<Outcome> {
    const percent = this.settings.restoreTest?.percent ?? 5;
    this.log('info', 'restore-test-start', `restore test started (${percent} % sample of this machine's newest snapshot)`, { task: 'restore-test', scheduled: iso(p.scheduled), attempt: p.attempt + 1 });
    let repo: Repository;
    try {
      repo = await openRepository(this.store, this.pass, 'read', 'read');
    } catch (e) {
      if (isRetryable(e)) return { retryable: true, errorCode: runErrorCode(e) };
      this.log('error', 'restore-test-end', `restore test could not run: ${(e as Error).message}`, { task: 'restore-test', result: 'failed', errorCode: runErrorCode(e) });
      return { retryable: false, result: 'failed' };
    }
    try {
      let snapshot;
      try {
        snapshot = await snapshotToTest(repo);
      } catch (e) {
        if (isRetryable(e)) return { retryable: true, errorCode: runErrorCode(e) };
        if (isCoffreError(e, 'NOT_FOUND')) {
          this.log('warn', 'restore-test-skipped', 'restore test skipped: this machine has no snapshot yet', { task: 'restore-test' });
          return { retryable: false, result: 'skipped' };
        }
        throw e;
      }
      let run;
      try {
        run = await runRestoreTest(repo, { snapshot, percent });
      } catch (e) {
        if (isRetryable(e)) return { retryable: true, errorCode: runErrorCode(e) };
        this.log('error', 'restore-test-end', `restore test of snapshot ${snapshot.id.slice(0, 8)} could not run: ${(e as Error).message}`, { task: 'restore-test', snapshot: snapshot.id, result: 'failed', errorCode: runErrorCode(e) });
        return { retryable: false, result: 'failed' };
      }
      const r = run.result;
      for (const m of r.problems) this.log('error', 'restore-test-problem', `restore test: ${m.path}: ${m.message}`, { task: 'restore-test', path: m.path });
      if (run.reportError) this.log('warn', 'report-failed', `the restore test report could not be sent: ${(run.reportError as Error).message}`);
      this.log(r.ok ? 'info' : 'error', 'restore-test-end', `restore test of snapshot ${r.snapshotId.slice(0, 8)}: ${r.ok ? 'success' : 'FAILED'}; ${r.sampledFiles} of ${r.totalFiles} files sampled, ${r.comparedFiles} compared, ${r.problems.length} problem(s)`, {
        task: 'restore-test',
        snapshot: r.snapshotId,
        result: r.ok ? 'success' : 'failed',
        totalFiles: r.totalFiles,
        sampledFiles: r.sampledFiles,
        restoredFiles: r.restoredFiles,
        comparedFiles: r.comparedFiles,
        bytes: r.bytes,
        mismatches: r.problems.length,
        reportId: run.reportId,
        reported: run.reportId !== null,
      });
      return { retryable: false, result: r.ok ? 'success' : 'failed' };
    } finally {
      repo.api.close();
    }
  }

  // ---- talking to the server outside runs ----

  private async withControlClient<T>(fn: (api: ApiClient) => Promise<T>): Promise<T | undefined> {
    let api: ApiClient;
    try {
      api = clientFor(this.store.load());
    } catch (e) {
      this.log('error', 'config-unreadable', (e as Error).message);
      return undefined;
    }
    try {
      return await fn(api);
    } finally {
      api.close();
    }
  }

  /** Tells the server the schedule (until it has heard it) and that the daemon is alive. */
  private async heartbeat(): Promise<void> {
    if (this.stopping) return;
    if (this.heartbeatBusy) {
      this.heartbeatAgain = true;
      return;
    }
    this.heartbeatBusy = true;
    try {
      await this.withControlClient(async (api) => {
        if (!this.scheduleReported) {
          const jobs = this.jobs;
          try {
            await reportSchedule(api, jobs);
            if (jobs === this.jobs) this.scheduleReported = true;
            this.log('info', 'schedule-reported', `the server knows the schedule (${jobs.length} job(s))`, { jobs: jobs.map((j) => j.name) });
          } catch (e) {
            this.log('warn', 'schedule-not-reported', `the schedule could not be sent to the server (${(e as Error).message}); retried at the next heartbeat`);
          }
        }
        try {
          await api.json('POST', '/heartbeat', { agentVersion: COFFRE_VERSION, startedAt: this.startedAt.toISOString() });
          if (this.heartbeatOk !== true) this.log('info', 'heartbeat', this.heartbeatOk === null ? 'first heartbeat sent' : 'heartbeats reach the server again');
          this.heartbeatOk = true;
          // The installation's sites may have changed (a replica joined, a site was promoted): keep the list fresh for failover.
          const info = await api.json<RepoResponse>('GET', '/repo').catch(() => null);
          if (info?.site?.role === 'primary') rememberSites(this.store, this.store.load(), info);
        } catch (e) {
          if (this.heartbeatOk !== false) this.log('warn', 'heartbeat-failed', `the heartbeat could not be sent: ${(e as Error).message}`, { errorCode: runErrorCode(e) });
          this.heartbeatOk = false;
        }
      });
    } finally {
      this.heartbeatBusy = false;
    }
    if (this.heartbeatAgain) {
      this.heartbeatAgain = false;
      void this.heartbeat();
    }
  }

  // ---- jobs.json changes ----

  private stampOfJobsFile(): string {
    try {
      const st = statSync(this.jobStore.file);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return 'absent';
    }
  }

  private scheduleReload(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      this.reload('change');
    }, 200);
  }

  /** Jobs whose schedule croner cannot read (a hand-edited file) are left out, loudly. */
  private validJobs(jobs: readonly BackupJob[]): BackupJob[] {
    const ok: BackupJob[] = [];
    for (const j of jobs) {
      try {
        nextRunAfter(j, new Date());
        ok.push(j);
      } catch (e) {
        this.log('error', 'job-invalid', `job ${j.name} is left out: ${(e as Error).message}`, { job: j.name });
      }
    }
    return ok;
  }

  private reload(reason: 'SIGHUP' | 'change'): void {
    if (this.stopping) return;
    this.applyJobsFile(reason);
    this.tick();
  }

  private applyJobsFile(reason: 'SIGHUP' | 'change'): void {
    this.jobsFileStamp = this.stampOfJobsFile();
    let jobs: BackupJob[];
    try {
      jobs = this.validJobs(this.jobStore.list());
    } catch (e) {
      this.log('error', 'reload-failed', `jobs.json could not be read (${(e as Error).message}); the previous jobs stay in force`);
      return;
    }
    const sig = signature(jobs);
    if (sig === this.jobsSignature && reason === 'change') return;
    const before = new Map(this.jobs.map((j) => [j.name, j]));
    this.jobs = jobs;
    this.jobsSignature = sig;
    const now = new Date();
    const names = new Set(jobs.map((j) => j.name));
    for (const j of jobs) {
      const old = before.get(j.name);
      if (!old || old.schedule !== j.schedule || old.timezone !== j.timezone) {
        if (this.running !== j.name) this.pending.delete(j.name);
        this.queue = this.queue.filter((k) => k !== j.name || this.pending.has(k));
        this.arm({ key: j.name, kind: 'backup', schedule: j.schedule, timezone: j.timezone, job: j }, now, false);
      }
    }
    for (const name of before.keys()) {
      if (names.has(name)) continue;
      if (this.running !== name) this.pending.delete(name);
      this.queue = this.queue.filter((k) => k !== name);
      this.armedAt.delete(name);
    }
    this.state = keepJobs(this.state, jobs.map((j) => j.name));
    this.saveState();
    this.log('info', 'reload', `jobs reloaded (${reason}): ${jobs.length} job(s)`, { reason, jobs: jobs.map((j) => j.name) });
    this.scheduleReported = false;
    void this.heartbeat();
  }

  // ---- stopping ----

  private stop(sig: NodeJS.Signals): void {
    if (this.stopping) {
      this.log('warn', 'stop-forced', `${sig} again: stopping at once`);
      killRunningHooks();
      this.finish(1);
      return;
    }
    this.stopping = true;
    for (const t of [this.tickTimer, this.reloadTimer]) if (t) clearTimeout(t);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.watcher?.close();
    const running = this.running;
    if (!running || !this.runningDone) {
      this.log('info', 'stopping', `${sig} received: stopping`, { signal: sig });
      this.finish(0);
      return;
    }
    const what = running === RESTORE_TEST ? 'the restore test' : `the backup of job ${running}`;
    this.log('info', 'stopping', `${sig} received: no new run starts; waiting up to ${Math.round(this.settings.stopGraceMs / 1000)} s for ${what} to end`, { signal: sig, waitingFor: running });
    const grace = setTimeout(() => {
      this.log('error', 'stop-timeout', `${what} did not end within ${Math.round(this.settings.stopGraceMs / 1000)} s: interrupted; its scheduled time is caught up at the next start`, { waitingFor: running });
      killRunningHooks();
      this.finish(0);
    }, this.settings.stopGraceMs);
    void this.runningDone.finally(() => {
      clearTimeout(grace);
      this.finish(0);
    });
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    for (const [sig, fn] of this.signalHandlers) process.off(sig, fn);
    this.saveState();
    this.lock.release();
    this.log('info', 'stopped', 'coffre daemon stopped', { exitCode: code });
    this.resolveExit(code);
  }
}

function signature(jobs: readonly BackupJob[]): string {
  return JSON.stringify(jobs);
}
