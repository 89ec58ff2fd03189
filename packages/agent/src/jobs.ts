import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoffreError, JOB_NAME_RE, assertTimeZone, parseSchedule, type MachineJobRecord } from '@coffre/core';
import type { ApiClient } from './client.js';
import { writeSecret, type ConfigStore } from './config.js';

/**
 * A backup job of this machine (R2): what to back up, when, and the commands to run around
 * it (dump or stop a database first). Kept in `jobs.json` next to the agent configuration;
 * only the name, schedule and time zone ever leave the machine (the server's observatory
 * needs to know when a backup is due, never what is in it).
 */
export interface BackupJob {
  readonly name: string;
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  /** Five-field cron expression. */
  readonly schedule: string;
  /** IANA time zone the schedule is read in (the practice's). */
  readonly timezone: string;
  /** Shell command run before the backup; its failure fails the run (nothing is backed up half-ready). */
  readonly pre?: string;
  /** Shell command run after the backup, whatever its outcome (restart what `pre` stopped). */
  readonly post?: string;
}

interface JobsFile {
  readonly v: 1;
  readonly jobs: readonly BackupJob[];
}

/** The system's time zone, or Europe/Paris when it cannot be told. */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'Europe/Paris';
}

export class JobStore {
  constructor(private readonly store: ConfigStore) {}

  /** The jobs file (the daemon watches it). */
  get file(): string {
    return join(this.store.dir, 'jobs.json');
  }

  list(): BackupJob[] {
    if (!existsSync(this.file)) return [];
    let f: JobsFile;
    try {
      f = JSON.parse(readFileSync(this.file, 'utf8')) as JobsFile;
    } catch {
      throw new CoffreError('FORMAT', `${this.file} is not valid JSON; fix or remove it, then add the jobs again`);
    }
    if (f.v !== 1 || !Array.isArray(f.jobs)) throw new CoffreError('FORMAT', `unsupported jobs file version in ${this.file}`);
    return [...f.jobs];
  }

  get(name: string): BackupJob {
    const j = this.list().find((x) => x.name === name);
    if (!j) throw new CoffreError('NOT_FOUND', `no job named "${name}" (see "coffre job list")`);
    return j;
  }

  /** Adds a job, or replaces the one of the same name; validates it first. */
  put(job: BackupJob): BackupJob {
    if (!JOB_NAME_RE.test(job.name)) throw new CoffreError('BAD_REQUEST', `invalid job name "${job.name}": letters, digits, dot, dash and underscore, at most 64`);
    if (job.paths.length === 0) throw new CoffreError('BAD_REQUEST', 'a job needs at least one --path');
    assertTimeZone(job.timezone);
    const normalised: BackupJob = { ...job, schedule: parseSchedule(job.schedule, job.timezone) };
    const rest = this.list().filter((x) => x.name !== job.name);
    this.save([...rest, normalised].sort((a, b) => a.name.localeCompare(b.name)));
    return normalised;
  }

  remove(name: string): void {
    const all = this.list();
    if (!all.some((x) => x.name === name)) throw new CoffreError('NOT_FOUND', `no job named "${name}" (see "coffre job list")`);
    this.save(all.filter((x) => x.name !== name));
  }

  private save(jobs: BackupJob[]): void {
    mkdirSync(this.store.dir, { recursive: true, mode: 0o700 });
    writeSecret(this.file, JSON.stringify({ v: 1, jobs } satisfies JobsFile, null, 2) + '\n');
  }
}

/** What the server learns of the jobs: names, schedules, time zones. */
export function scheduleReport(jobs: readonly BackupJob[]): MachineJobRecord[] {
  return jobs.map((j) => ({ name: j.name, schedule: j.schedule, timezone: j.timezone }));
}

/** Tells the server this machine's schedule (replaces what it knew). */
export async function reportSchedule(api: ApiClient, jobs: readonly BackupJob[]): Promise<void> {
  await api.json('PUT', '/jobs', { jobs: scheduleReport(jobs) });
}
