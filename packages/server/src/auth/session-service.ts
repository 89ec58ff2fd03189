import type { FastifyReply, FastifyRequest } from 'fastify';
import { findOrg } from '../db/queries/orgs.js';
import { createSession, findSessionByTokenHash, updateSession, type SessionRow } from '../db/queries/sessions.js';
import { apiError } from '../errors.js';
import { secondFactors, type UserRow } from '../db/queries/users.js';
import type { Deps } from '../http/context.js';
import { presentUser } from '../routes/users/presenter.js';
import { sessionCookie } from '../http/cookies.js';
import { hashSecret, newSessionToken } from '../secrets.js';
import type { SessionStage, UserId } from '../types.js';

/** Opens a session after a correct password; the second factor (or the set-up) comes next. */
export async function openSession(deps: Deps, req: FastifyRequest, reply: FastifyReply, userId: UserId): Promise<{ token: string; session: SessionRow }> {
  const token = newSessionToken();
  const now = deps.clock();
  const maxMs = deps.settings.sessionMaxHours * 3_600_000;
  const session = await createSession(deps.db, {
    tokenHash: hashSecret(token),
    userId,
    now: now.toISOString(),
    expiresAt: new Date(now.getTime() + maxMs).toISOString(),
    ip: req.ip,
    userAgent: req.headers['user-agent']?.slice(0, 400) ?? null,
  });
  void reply.header('set-cookie', sessionCookie(token, maxMs / 1000));
  return { token, session };
}

/**
 * After a second-factor proof: records the time (re-authentication window) and replaces
 * the session token, so a token observed before the proof is worth nothing after it
 * (session fixation). Returns the new token.
 */
export async function elevateSession(deps: Deps, reply: FastifyReply, sessionId: string, expiresAt: string): Promise<string> {
  const token = newSessionToken();
  const now = deps.clock();
  await updateSession(deps.db, sessionId, { token_hash: hashSecret(token), second_factor_at: now.toISOString(), challenge: null, challenge_expires_at: null });
  void reply.header('set-cookie', sessionCookie(token, (Date.parse(expiresAt) - now.getTime()) / 1000));
  return token;
}

/** `elevateSession` for the request's own session; returns the new CSRF token. */
export async function elevateCurrentSession(deps: Deps, req: FastifyRequest, reply: FastifyReply): Promise<string> {
  const session = await findSessionByTokenHash(deps.db, hashSecret(req.sessionToken ?? ''));
  if (!session) throw apiError('notSignedIn');
  return deps.keys.csrfToken(await elevateSession(deps, reply, session.id, session.expires_at));
}

export async function stageOf(deps: Deps, user: UserRow, secondFactorAt: string | null): Promise<SessionStage> {
  const f = await secondFactors(deps.db, user);
  const hasFactor = f.totp || f.webauthn > 0;
  if (hasFactor && secondFactorAt === null) return 'second-factor';
  if (user.must_change_password === 1 || !hasFactor) return 'setup';
  return 'full';
}

/** What a person sees of their own account: as others see them, plus their organisation and recovery codes left. */
export async function presentMe(deps: Deps, user: UserRow) {
  const org = await findOrg(deps.db, user.org_id);
  const f = await secondFactors(deps.db, user);
  return { ...(await presentUser(deps, user)), secondFactors: f, org: org ? { id: org.id, name: org.name, type: org.type } : null };
}
