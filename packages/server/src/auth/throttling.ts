import type { FastifyReply, FastifyRequest } from 'fastify';
import { auditRequest } from '../audit/record.js';
import { recordFailure, throttleKey, waitFor } from '../db/queries/throttle.js';
import { apiError } from '../errors.js';
import type { Deps } from '../http/context.js';

/**
 * Refuses early (429 with Retry-After) while the account or the IP is throttled: the same
 * for existing and unknown accounts. `typed` is the identifier as the person typed it, for
 * the audit trail. Used by every route that checks a password or a second factor.
 */
export async function checkThrottle(deps: Deps, req: FastifyRequest, reply: FastifyReply, email: string, typed?: string): Promise<void> {
  const now = deps.clock();
  const wait = Math.max(await waitFor(deps.db, throttleKey('account', email), now), await waitFor(deps.db, throttleKey('ip', req.ip), now));
  if (wait > 0) {
    const retryAfterSeconds = Math.ceil(wait / 1000);
    await auditRequest(deps, req, { action: 'auth.throttled', outcome: 'denied', actorLabel: (typed ?? email).slice(0, 254), details: { retryAfterSeconds } });
    void reply.header('retry-after', String(retryAfterSeconds));
    throw apiError('tooManyAttempts', { retryAfterSeconds });
  }
}

/** Counts a failed password or second-factor check against the account and the IP. */
export async function countFailure(deps: Deps, req: FastifyRequest, email: string): Promise<void> {
  const now = deps.clock();
  await recordFailure(deps.db, deps.settings.authThrottle, 'account', throttleKey('account', email), now);
  await recordFailure(deps.db, deps.settings.authThrottle, 'ip', throttleKey('ip', req.ip), now);
}
