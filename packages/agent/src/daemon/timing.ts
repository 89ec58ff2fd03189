import { nextRunAfter } from '@coffre/core';

/**
 * The daemon's time rules, pure so that they are tested without waiting: when a schedule
 * is due, what is caught up at start, how long to wait before a retry.
 */
export interface Schedule {
  readonly schedule: string;
  readonly timezone: string;
}

/** Guards against a pathological walk (a minute schedule over years): the newest times count. */
const MAX_STEPS = 200_000;

/**
 * The latest time the schedule fired in (after, now], or null. Several missed times
 * collapse into the latest one: a backup is one run whatever it missed.
 */
export function latestDue(s: Schedule, after: Date, now: Date): Date | null {
  let last: Date | null = null;
  let t = nextRunAfter(s, after);
  for (let i = 0; t !== null && t.getTime() <= now.getTime() && i < MAX_STEPS; i++) {
    last = t;
    t = nextRunAfter(s, t);
  }
  return last;
}

/**
 * What to catch up at start: the latest scheduled time missed while the daemon was not
 * running, if it lies within `windowMs` of now and after the last completed one. A task the
 * daemon never completed (new job, first start) catches nothing up: it runs at its next time.
 */
export function catchUpDue(s: Schedule, lastCompleted: Date | null, now: Date, windowMs: number): Date | null {
  if (lastCompleted === null || windowMs <= 0) return null;
  const from = new Date(Math.max(lastCompleted.getTime(), now.getTime() - windowMs));
  return latestDue(s, from, now);
}

/**
 * Wait before retry `attempt` (1, 2, …) of a run that could not reach the server:
 * base, 2×base, 4×base… capped at `maxMs`, spread by ±10 % so that many machines that lost
 * the same server do not all come back in the same second. `random()` is in [0, 1).
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.max(0, Math.round(exp * (0.9 + 0.2 * random())));
}

/**
 * Whether a retry at `retryAt` is still worth it: only before the task's next scheduled time
 * (from then on the next run does the work, and two would run for one schedule).
 */
export function retryBeforeNext(s: Schedule, scheduled: Date, retryAt: Date): boolean {
  const next = nextRunAfter(s, scheduled);
  return next === null || retryAt.getTime() < next.getTime();
}
