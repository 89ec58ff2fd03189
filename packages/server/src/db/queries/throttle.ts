import type { AuthThrottleSettings } from '../../datadir.js';
import type { Database } from '../database.js';
import type { Transaction } from 'kysely';
import { LockName, writeTransaction } from '../engine.js';
import type { AuthThrottleTable, DB } from '../schema.js';

type AuthThrottleRow = AuthThrottleTable;

/**
 * Guessing protection for sign-in and second-factor checks (R14, R16). Two kinds of key:
 * "account:<email as typed, lower-cased>" — whether or not such an account exists, so the
 * answers never reveal it — and "ip:<address>". Failures count within a window; past a
 * threshold every further attempt waits an exponentially growing delay, then the key is
 * locked for LOCK_MINUTES. A success clears the account key, never the IP key.
 */
export const THROTTLE = {
  windowMinutes: 15,
  lockMinutes: 15,
  maxDelaySeconds: 60,
} as const;

export type ThrottleKind = 'account' | 'ip';

export const throttleKey = (kind: ThrottleKind, value: string): string => `${kind}:${value.toLowerCase()}`;

/** Milliseconds the caller must still wait before an attempt with this key is examined (0 = go). */
export async function waitFor(db: Database, key: string, now: Date): Promise<number> {
  const row = await db.selectFrom('auth_throttle').selectAll().where('key', '=', key).executeTakeFirst();
  if (!row?.locked_until) return 0;
  return Math.max(0, Date.parse(row.locked_until) - now.getTime());
}

function limitsOf(settings: AuthThrottleSettings, kind: ThrottleKind): { freeFailures: number; lockAfter: number } {
  return kind === 'account' ? { freeFailures: settings.accountFreeFailures, lockAfter: settings.accountLockAfter } : { freeFailures: settings.ipFreeFailures, lockAfter: settings.ipLockAfter };
}

/** The counter after one more failure at `now`: window, count and next permitted attempt. */
function afterFailure(row: AuthThrottleRow | undefined, limits: { freeFailures: number; lockAfter: number }, key: string, now: Date): AuthThrottleRow {
  const windowStart = row && now.getTime() - Date.parse(row.window_start) < THROTTLE.windowMinutes * 60_000 ? row.window_start : now.toISOString();
  const failures = (row && windowStart === row.window_start ? row.failures : 0) + 1;
  let lockedMs = 0;
  if (failures >= limits.lockAfter) lockedMs = THROTTLE.lockMinutes * 60_000;
  else if (failures >= limits.freeFailures) lockedMs = Math.min(2 ** (failures - limits.freeFailures), THROTTLE.maxDelaySeconds) * 1000;
  return { key, failures, window_start: windowStart, locked_until: lockedMs > 0 ? new Date(now.getTime() + lockedMs).toISOString() : null };
}

async function store(trx: Transaction<DB>, r: AuthThrottleRow): Promise<void> {
  await trx
    .insertInto('auth_throttle')
    .values(r)
    .onConflict((oc) => oc.column('key').doUpdateSet({ failures: r.failures, window_start: r.window_start, locked_until: r.locked_until }))
    .execute();
}

/** Records a failure and sets the next permitted attempt time. */
export async function recordFailure(db: Database, settings: AuthThrottleSettings, kind: ThrottleKind, key: string, now: Date): Promise<void> {
  // Read-modify-write of one counter: concurrent failures must each count (no lost update).
  await writeTransaction(db, [LockName.throttle(key)], async (trx) => {
    const row = await trx.selectFrom('auth_throttle').selectAll().where('key', '=', key).executeTakeFirst();
    await store(trx, afterFailure(row, limitsOf(settings, kind), key, now));
  });
}

export interface ThrottledKey {
  readonly kind: ThrottleKind;
  readonly key: string;
}

const waitOf = (row: AuthThrottleRow | undefined, now: Date): number => (row?.locked_until ? Math.max(0, Date.parse(row.locked_until) - now.getTime()) : 0);

/**
 * Reserves one attempt on every key before the password or code is examined, atomically
 * (in the database, so it holds across server instances): the attempt is counted as a
 * failure at once, so a burst of concurrent guesses sees the delay its predecessors set and
 * at most `freeFailures` of them are examined. Returns 0 when reserved, else the
 * milliseconds still to wait; a refused attempt writes nothing (a read first, and the
 * write transaction only when every key is free). `releaseAttempt` undoes a reservation
 * whose attempt turned out right.
 */
export async function reserveAttempt(db: Database, settings: AuthThrottleSettings, keys: readonly ThrottledKey[], now: Date): Promise<number> {
  const waits = await Promise.all(keys.map(async (k) => waitFor(db, k.key, now)));
  const wait = Math.max(0, ...waits);
  if (wait > 0) return wait;
  return writeTransaction(db, keys.map((k) => LockName.throttle(k.key)), async (trx) => {
    const rows = await Promise.all(keys.map(async (k) => trx.selectFrom('auth_throttle').selectAll().where('key', '=', k.key).executeTakeFirst()));
    const inner = Math.max(0, ...rows.map((r) => waitOf(r, now)));
    if (inner > 0) return inner; // another attempt got there first
    for (const [i, k] of keys.entries()) await store(trx, afterFailure(rows[i], limitsOf(settings, k.kind), k.key, now));
    return 0;
  });
}

/**
 * Gives back a reservation whose attempt was right (or never examined): one failure less,
 * and the delay it set is lifted, unless the key has reached its lock threshold (a lock
 * only ends with time, or, for the account key, with a second-factor proof).
 */
export async function releaseAttempt(db: Database, settings: AuthThrottleSettings, keys: readonly ThrottledKey[], now: Date): Promise<void> {
  await writeTransaction(db, keys.map((k) => LockName.throttle(k.key)), async (trx) => {
    for (const k of keys) {
      const row = await trx.selectFrom('auth_throttle').selectAll().where('key', '=', k.key).executeTakeFirst();
      if (!row || now.getTime() - Date.parse(row.window_start) >= THROTTLE.windowMinutes * 60_000) continue;
      const failures = Math.max(0, row.failures - 1);
      const hardLocked = failures >= limitsOf(settings, k.kind).lockAfter;
      if (failures === 0 && !hardLocked) await trx.deleteFrom('auth_throttle').where('key', '=', k.key).execute();
      else await store(trx, { ...row, failures, locked_until: hardLocked ? row.locked_until : null });
    }
  });
}

export async function clearThrottle(db: Database, key: string): Promise<void> {
  await db.deleteFrom('auth_throttle').where('key', '=', key).execute();
}
