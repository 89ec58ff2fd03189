import type { FastifyReply, FastifyRequest } from 'fastify';
import { auditRequest } from '../audit/record.js';
import { releaseAttempt, reserveAttempt, throttleKey, type ThrottledKey } from '../db/queries/throttle.js';
import { ApiError, apiError } from '../errors.js';
import type { Deps } from '../http/context.js';

/** A refused attempt is audited at most this often per key and server process (each entry is a write). */
const THROTTLED_AUDIT_EVERY_MS = 60_000;
const lastThrottledAudit = new WeakMap<Deps, Map<string, number>>();

function auditDue(deps: Deps, key: string, nowMs: number): boolean {
  let seen = lastThrottledAudit.get(deps);
  if (!seen) lastThrottledAudit.set(deps, (seen = new Map()));
  const last = seen.get(key);
  if (last !== undefined && nowMs - last < THROTTLED_AUDIT_EVERY_MS) return false;
  if (seen.size >= 10_000) seen.clear(); // bounded: a flood of distinct keys forgets, it never grows
  seen.set(key, nowMs);
  return true;
}

/**
 * Runs one password or second-factor check under the guessing protection of the account
 * (`email`) and the client's address. The attempt is reserved first, atomically and in the
 * database (db/queries/throttle.ts): concurrent guesses cannot all be examined, whichever
 * server instance they reach. While a key is delayed or locked the answer is 429 with
 * Retry-After, the same for existing and unknown accounts, without examining anything and
 * without a write transaction (the refusal is audited at most once a minute per key).
 *
 * `check` rejecting with a 401 (a wrong password or code) keeps the reservation: it was a
 * failure. Any other outcome — success, or a refusal that is not about the secret —
 * releases it. `typed` is the identifier as the person typed it, for the audit trail.
 */
export async function guardedAttempt<T>(deps: Deps, req: FastifyRequest, reply: FastifyReply, email: string, check: () => Promise<T>, typed?: string): Promise<T> {
  const keys: ThrottledKey[] = [
    { kind: 'account', key: throttleKey('account', email) },
    { kind: 'ip', key: throttleKey('ip', req.ip) },
  ];
  const now = deps.clock();
  const wait = await reserveAttempt(deps.db, deps.settings.authThrottle, keys, now);
  if (wait > 0) {
    const retryAfterSeconds = Math.ceil(wait / 1000);
    const due = keys.map((k) => auditDue(deps, k.key, now.getTime())); // both marked, not short-circuited
    if (due.some(Boolean)) {
      // Labelled with the account as it is throttled (one entry per key and minute stands for
      // every spelling typed meanwhile, so the spelling of whichever came first means nothing).
      await auditRequest(deps, req, { action: 'auth.throttled', outcome: 'denied', actorLabel: email.slice(0, 254), details: { retryAfterSeconds, ...(typed !== undefined && typed !== email ? { typed: typed.slice(0, 254) } : {}) } });
    }
    void reply.header('retry-after', String(retryAfterSeconds));
    throw apiError('tooManyAttempts', { retryAfterSeconds });
  }
  try {
    const result = await check();
    await releaseAttempt(deps.db, deps.settings.authThrottle, keys, deps.clock());
    return result;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) await releaseAttempt(deps.db, deps.settings.authThrottle, keys, deps.clock());
    throw e;
  }
}
