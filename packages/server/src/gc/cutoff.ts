import { SESSION_IDLE_MS, TOUCH_GRANULARITY_MS } from './config.js';

/** An upload session as stored (ISO times). */
export interface SessionTimes {
  readonly startedAt: string;
  readonly lastSeenAt: string;
}

export interface GcCutoff {
  /** When this GC run started. */
  readonly start: Date;
  /** min(start − grace, start of the oldest open upload session): the design's cutoff. */
  readonly cutoff: Date;
  /**
   * What stored touch times are compared with: `cutoff − TOUCH_GRANULARITY_MS`, since a
   * stored time may lag the real last touch by up to the granularity. A chunk is
   * reclaimable only if its stored touch time is strictly before this.
   */
  readonly touchCutoff: string;
  /** Start of the oldest open session taken into account, if any. */
  readonly oldestSession: string | null;
  /** Sessions idle for longer than the idle timeout (abandoned), ignored. */
  readonly abandoned: number;
}

/**
 * The cutoff rule (docs/GC.md §Cutoff). A session counts as open when its last request is
 * within `idleMs` of the GC start (allowing for the coarse `last_seen_at`); an abandoned
 * session no longer holds GC back.
 */
export function gcCutoff(start: Date, graceMs: number, sessions: readonly SessionTimes[], idleMs: number = SESSION_IDLE_MS): GcCutoff {
  if (!(graceMs >= 0)) throw new RangeError(`grace must be ≥ 0 ms, got ${graceMs}`);
  const openSince = start.getTime() - idleMs - TOUCH_GRANULARITY_MS;
  let cutoff = start.getTime() - graceMs;
  let oldest: string | null = null;
  let abandoned = 0;
  for (const s of sessions) {
    if (Date.parse(s.lastSeenAt) < openSince) {
      abandoned++;
      continue;
    }
    const t = Date.parse(s.startedAt);
    if (oldest === null || t < Date.parse(oldest)) oldest = s.startedAt;
    cutoff = Math.min(cutoff, t);
  }
  return { start, cutoff: new Date(cutoff), touchCutoff: new Date(cutoff - TOUCH_GRANULARITY_MS).toISOString(), oldestSession: oldest, abandoned };
}

/** A chunk row's effective touch time: its own, or its pack's creation for rows from before touch tracking. */
export function touchedAt(row: { readonly touched_at: string | null }, packCreatedAt: string): string {
  return row.touched_at ?? packCreatedAt;
}

/** True when a chunk no snapshot references may go: untouched since the cutoff. */
export function untouchedSince(touched: string, c: Pick<GcCutoff, 'touchCutoff'>): boolean {
  return touched < c.touchCutoff;
}

/**
 * The stored-touch rule shared by every writer: rewrite `touched_at` (or `last_seen_at`)
 * only when the stored value is older than `now − TOUCH_GRANULARITY_MS`. Returns that bound.
 */
export function staleBefore(now: Date): string {
  return new Date(now.getTime() - TOUCH_GRANULARITY_MS).toISOString();
}
