import { Cron } from 'croner';
import { CoffreError } from './errors.js';
import type { BackupStatus } from './people-api.js';

/**
 * Backup schedules: classic five-field cron expressions (minute hour day-of-month month
 * day-of-week; `@daily`, `@weekly`, `@monthly`, `@hourly` too), read in an IANA time zone
 * (the practice's), so "0 22 * * 1-5" means 22:00 on weekdays in Paris on both sides of a
 * daylight-saving change. The agent's daemon runs jobs by them; the server's observatory
 * uses the same functions to tell when a backup was due.
 */
export interface JobSchedule {
  /** Job name, unique per machine. */
  readonly name: string;
  /** Five-field cron expression. */
  readonly schedule: string;
  /** IANA time zone, e.g. Europe/Paris. */
  readonly timezone: string;
}

const NICKNAMES: Readonly<Record<string, string>> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
};

export const JOB_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Throws a clear BAD_REQUEST unless `tz` is an IANA time zone this runtime knows. */
export function assertTimeZone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new CoffreError('BAD_REQUEST', `unknown time zone "${tz}" (expected an IANA name such as Europe/Paris)`);
  }
}

function cronOf(expression: string, timezone: string): Cron {
  const trimmed = expression.trim().replace(/\s+/g, ' ');
  const pattern = NICKNAMES[trimmed.toLowerCase()] ?? trimmed;
  if (pattern.split(' ').length !== 5) {
    throw new CoffreError(
      'BAD_REQUEST',
      `invalid schedule "${expression}": expected five fields "minute hour day-of-month month day-of-week" (e.g. "0 22 * * 1-5") or @daily, @weekly, @monthly, @hourly`,
    );
  }
  assertTimeZone(timezone);
  try {
    return new Cron(pattern, { timezone, mode: '5-part', paused: true });
  } catch (e) {
    throw new CoffreError('BAD_REQUEST', `invalid schedule "${expression}": ${explain((e as Error).message)}`);
  }
}

const FIELD_RANGES: Readonly<Record<string, string>> = {
  minute: 'minute (0-59)',
  hour: 'hour (0-23)',
  day: 'day-of-month (1-31)',
  month: 'month (1-12)',
  dayOfWeek: 'day-of-week (0-7, 0 and 7 are Sunday)',
};

/** croner's messages quote an internal, shifted value ("day: 31" for 32): name the field and its range instead. */
function explain(message: string): string {
  const field = /Invalid value for (\w+)/i.exec(message)?.[1];
  if (field && FIELD_RANGES[field]) return `the ${FIELD_RANGES[field]} field is out of range`;
  return message;
}

/**
 * Validates a schedule; returns it normalised (single spaces). A schedule that never fires
 * (e.g. "0 0 30 2 *", February 30th) is refused: the observatory could never expect it.
 */
export function parseSchedule(expression: string, timezone: string): string {
  if (cronOf(expression, timezone).nextRun(new Date()) === null) {
    throw new CoffreError('BAD_REQUEST', `invalid schedule "${expression}": it never fires (no such date)`);
  }
  return expression.trim().replace(/\s+/g, ' ');
}

/** The first time strictly after `after` at which the schedule fires, or null if it never does. */
export function nextRunAfter(s: Pick<JobSchedule, 'schedule' | 'timezone'>, after: Date): Date | null {
  return cronOf(s.schedule, s.timezone).nextRun(after);
}

/** The earliest next run of any of the schedules, or null when there is none. */
export function earliestNextRun(schedules: readonly Pick<JobSchedule, 'schedule' | 'timezone'>[], after: Date): Date | null {
  let best: Date | null = null;
  for (const s of schedules) {
    const n = nextRunAfter(s, after);
    if (n && (best === null || n < best)) best = n;
  }
  return best;
}

export interface MachineStatusInput {
  /** The machine's job schedules as its agent last reported them. */
  readonly schedules: readonly Pick<JobSchedule, 'schedule' | 'timezone'>[];
  /** Server time of the newest snapshot, or null. */
  readonly lastSuccessAt: Date | null;
  /** Whether the newest run the agent reported failed. */
  readonly latestRunFailed: boolean;
  /** Since when a backup is owed when none succeeded yet (enrolment or first schedule). */
  readonly since: Date;
  /** How long after its scheduled time a backup may finish before it counts as missed. */
  readonly graceMs: number;
  readonly now: Date;
}

export interface MachineStatus {
  readonly status: BackupStatus;
  /** A scheduled backup is past due (plus grace) with no success since: an alert is owed. */
  readonly overdue: boolean;
  /** The scheduled time that was missed, when overdue. */
  readonly missedAt: Date | null;
  /** The next scheduled run after now, or null without a schedule. */
  readonly nextExpectedAt: Date | null;
}

/**
 * One machine's backup status. In order: its latest run failed → failed; no schedule →
 * no_schedule; else the first scheduled time after the last success (or after `since`) is
 * past due by more than the grace → late (or never, when nothing ever succeeded); no success
 * yet but none due → never; otherwise ok.
 */
export function machineStatus(i: MachineStatusInput): MachineStatus {
  const nextExpectedAt = earliestNextRun(i.schedules, i.now);
  const due = i.schedules.length === 0 ? null : earliestNextRun(i.schedules, i.lastSuccessAt ?? i.since);
  const overdue = due !== null && due.getTime() + i.graceMs < i.now.getTime();
  const missedAt = overdue ? due : null;
  let status: BackupStatus;
  if (i.latestRunFailed) status = 'failed';
  else if (i.schedules.length === 0) status = 'no_schedule';
  else if (i.lastSuccessAt === null) status = 'never';
  else status = overdue ? 'late' : 'ok';
  return { status, overdue, missedAt, nextExpectedAt };
}
