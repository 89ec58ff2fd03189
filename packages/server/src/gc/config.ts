/**
 * Garbage-collection constants and their documented defaults (docs/GC.md). The ones marked
 * "setting" are meant to become server.json settings; until then the GC job takes them
 * from here, and tests/operators may override a few through COFFRE_GC_* variables
 * (`gcOptionsFromEnv`).
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Setting `gcGraceHours` (default 24 h): a chunk no snapshot needs is kept until untouched this long. */
export const DEFAULT_GRACE_MS = 24 * HOUR;

/** Setting `gcRepackBelow` (default 0.5): a pack whose live bytes are below this fraction of its size is rewritten. 0 disables repacking. */
export const DEFAULT_REPACK_BELOW = 0.5;

/**
 * Setting `gcRepackDeleteDelayHours` (default 24 h): a repacked pack's old object stays
 * readable (GET /packs serves it) this long after its chunks moved, so restores, verifies
 * and backups that located chunks before the move still find them.
 */
export const DEFAULT_REPACK_DELETE_DELAY_MS = 24 * HOUR;

/** Setting `gcOrphanAgeHours` (default 24 h): a pack object with no index row is deleted once seen orphaned this long. */
export const DEFAULT_ORPHAN_AGE_MS = 24 * HOUR;

/**
 * Setting `uploadSessionIdleHours` (default 6 h): an upload session with no request for this
 * long is abandoned, and no longer holds back GC's cutoff. The server and `job run gc` must
 * agree, hence a constant (both read it from here).
 */
export const SESSION_IDLE_MS = 6 * HOUR;

/**
 * Touch granularity, fixed (not a setting: server and GC must agree): a chunk's
 * `touched_at` and a session's `last_seen_at` are rewritten only when older than this, so
 * the stored time is at most this much before the real last touch. GC compensates by
 * comparing with `cutoff − TOUCH_GRANULARITY_MS`.
 */
export const TOUCH_GRANULARITY_MS = 30_000;

/** A GC run holds a lease renewed as it goes; a crashed run's lease expires after this. */
export const LEASE_MS = 15 * MINUTE;

/** Default daily schedule (Europe/Paris): at night, away from most backups. */
export const GC_SCHEDULE = '0 3 * * *';

export interface GcSettings {
  readonly graceMs: number;
  readonly repackBelow: number;
  readonly repackDeleteDelayMs: number;
  readonly orphanAgeMs: number;
}

export const GC_DEFAULTS: GcSettings = {
  graceMs: DEFAULT_GRACE_MS,
  repackBelow: DEFAULT_REPACK_BELOW,
  repackDeleteDelayMs: DEFAULT_REPACK_DELETE_DELAY_MS,
  orphanAgeMs: DEFAULT_ORPHAN_AGE_MS,
};

/**
 * Test and operations knobs (documented in docs/GC.md), read by the GC job only:
 * COFFRE_GC_GRACE_SECONDS, COFFRE_GC_REPACK_BELOW, COFFRE_GC_REPACK_DELETE_DELAY_SECONDS,
 * COFFRE_GC_ORPHAN_AGE_SECONDS, COFFRE_GC_DRY_RUN=1. A malformed value is an error, never
 * silently ignored.
 */
export function gcOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<GcSettings> & { dryRun?: boolean } {
  const seconds = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number of seconds ≥ 0, got ${JSON.stringify(v)}`);
    return n * 1000;
  };
  const out: { -readonly [K in keyof GcSettings]?: number } & { dryRun?: boolean } = {};
  const grace = seconds('COFFRE_GC_GRACE_SECONDS');
  if (grace !== undefined) out.graceMs = grace;
  const delay = seconds('COFFRE_GC_REPACK_DELETE_DELAY_SECONDS');
  if (delay !== undefined) out.repackDeleteDelayMs = delay;
  const orphan = seconds('COFFRE_GC_ORPHAN_AGE_SECONDS');
  if (orphan !== undefined) out.orphanAgeMs = orphan;
  const below = env.COFFRE_GC_REPACK_BELOW;
  if (below !== undefined && below !== '') {
    const n = Number(below);
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`COFFRE_GC_REPACK_BELOW must be a fraction between 0 and 1, got ${JSON.stringify(below)}`);
    out.repackBelow = n;
  }
  if (env.COFFRE_GC_DRY_RUN === '1') out.dryRun = true;
  return out;
}
