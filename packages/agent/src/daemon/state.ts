import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The daemon's memory across restarts, `daemon-state.json` in the agent's directory: for
 * each scheduled task (a job, and the restore test), the last scheduled time whose run is
 * over (succeeded, failed for good, or given up at the next scheduled time). A restart
 * neither repeats it nor forgets a time missed while the daemon was down. Written
 * atomically (temporary file, fsync, rename): a crash leaves the old or the new file.
 */
export interface TaskState {
  /** ISO time of the last scheduled run that is over. */
  readonly lastCompleted: string;
  /** Outcome of that run, for people reading the file. */
  readonly lastResult?: string;
  /** When that run ended. */
  readonly lastRunAt?: string;
}

export interface DaemonStateFile {
  readonly v: 1;
  readonly jobs: Readonly<Record<string, TaskState>>;
  readonly restoreTest: TaskState | null;
}

export const EMPTY_STATE: DaemonStateFile = { v: 1, jobs: {}, restoreTest: null };

const isIso = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));

function taskState(v: unknown): TaskState | null {
  if (!v || typeof v !== 'object') return null;
  const t = v as Record<string, unknown>;
  if (!isIso(t.lastCompleted)) return null;
  return {
    lastCompleted: new Date(t.lastCompleted).toISOString(),
    ...(typeof t.lastResult === 'string' ? { lastResult: t.lastResult } : {}),
    ...(isIso(t.lastRunAt) ? { lastRunAt: t.lastRunAt } : {}),
  };
}

/** Parses the file's text; throws on anything that is not a version-1 state. */
export function parseState(text: string): DaemonStateFile {
  const raw = JSON.parse(text) as { v?: unknown; jobs?: unknown; restoreTest?: unknown };
  if (raw?.v !== 1 || typeof raw.jobs !== 'object' || raw.jobs === null) throw new Error('not a version 1 daemon state');
  const jobs: Record<string, TaskState> = {};
  for (const [name, v] of Object.entries(raw.jobs as Record<string, unknown>)) {
    const t = taskState(v);
    if (t) jobs[name] = t;
  }
  return { v: 1, jobs, restoreTest: taskState(raw.restoreTest) };
}

/** The state with one job's run over. Pure. */
export function withJobDone(s: DaemonStateFile, job: string, scheduled: Date, result: string, at: Date): DaemonStateFile {
  return { ...s, jobs: { ...s.jobs, [job]: { lastCompleted: scheduled.toISOString(), lastResult: result, lastRunAt: at.toISOString() } } };
}

/** The state with the restore test's run over. Pure. */
export function withRestoreTestDone(s: DaemonStateFile, scheduled: Date, result: string, at: Date): DaemonStateFile {
  return { ...s, restoreTest: { lastCompleted: scheduled.toISOString(), lastResult: result, lastRunAt: at.toISOString() } };
}

/** The state keeping only these jobs (a removed job forgets its past; re-added, it starts afresh). Pure. */
export function keepJobs(s: DaemonStateFile, names: readonly string[]): DaemonStateFile {
  const keep = new Set(names);
  return { ...s, jobs: Object.fromEntries(Object.entries(s.jobs).filter(([n]) => keep.has(n))) };
}

export class DaemonStateStore {
  readonly file: string;
  constructor(dir: string) {
    this.file = join(dir, 'daemon-state.json');
  }

  /**
   * Reads the state. A damaged file is moved aside (`.damaged`) and reported through the
   * returned `problem`, never silently trusted.
   */
  load(): { state: DaemonStateFile; problem: string | null } {
    if (!existsSync(this.file)) return { state: EMPTY_STATE, problem: null };
    try {
      return { state: parseState(readFileSync(this.file, 'utf8')), problem: null };
    } catch (e) {
      const aside = `${this.file}.damaged`;
      try {
        renameSync(this.file, aside);
      } catch {
        // leave it: it will be replaced at the next save
      }
      return { state: EMPTY_STATE, problem: `${this.file} could not be read (${(e as Error).message}); moved to ${aside}, starting afresh` };
    }
  }

  save(s: DaemonStateFile): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(s, null, 2) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }
}
