import type { AuthThrottleSettings } from '../../datadir.js';
import type { Database } from '../database.js';
import { LockName, writeTransaction } from '../engine.js';

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

/** Records a failure and sets the next permitted attempt time. */
export async function recordFailure(db: Database, settings: AuthThrottleSettings, kind: ThrottleKind, key: string, now: Date): Promise<void> {
  const limits = kind === 'account' ? { freeFailures: settings.accountFreeFailures, lockAfter: settings.accountLockAfter } : { freeFailures: settings.ipFreeFailures, lockAfter: settings.ipLockAfter };
  // Read-modify-write of one counter: concurrent failures must each count (no lost update).
  await writeTransaction(db, [LockName.throttle(key)], async (trx) => {
    const row = await trx.selectFrom('auth_throttle').selectAll().where('key', '=', key).executeTakeFirst();
    const windowStart = row && now.getTime() - Date.parse(row.window_start) < THROTTLE.windowMinutes * 60_000 ? row.window_start : now.toISOString();
    const failures = (row && windowStart === row.window_start ? row.failures : 0) + 1;
    let lockedMs = 0;
    if (failures >= limits.lockAfter) lockedMs = THROTTLE.lockMinutes * 60_000;
    else if (failures >= limits.freeFailures) lockedMs = Math.min(2 ** (failures - limits.freeFailures), THROTTLE.maxDelaySeconds) * 1000;
    const locked_until = lockedMs > 0 ? new Date(now.getTime() + lockedMs).toISOString() : null;
    await trx
      .insertInto('auth_throttle')
      .values({ key, failures, window_start: windowStart, locked_until })
      .onConflict((oc) => oc.column('key').doUpdateSet({ failures, window_start: windowStart, locked_until }))
      .execute();
  });
}

export async function clearThrottle(db: Database, key: string): Promise<void> {
  await db.deleteFrom('auth_throttle').where('key', '=', key).execute();
}
