import type { FastifyReply, FastifyRequest } from 'fastify';
import { auditRequest } from '../../audit/record.js';
import { dummyVerify, verifyPassword } from '../../auth/passwords.js';
import { hashRecoveryCode, normaliseRecoveryCode } from '../../auth/recovery-codes.js';
import { elevateSession, openSession, presentMe, stageOf } from '../../auth/session-service.js';
import { verifyTotp } from '../../auth/totp.js';
import { authenticationOptions, credentialIdOf, verifyAuthentication, WebAuthnError } from '../../auth/webauthn.js';
import { effectiveStatus, findOrg } from '../../db/queries/orgs.js';
import { findSessionByTokenHash, updateSession } from '../../db/queries/sessions.js';
import { clearThrottle, throttleKey } from '../../db/queries/throttle.js';
import { guardedAttempt } from '../../auth/throttling.js';
import { claimTotpStep, findUser, findUserByEmail, normaliseEmail, recordWebauthnUse, updateUser, useRecoveryCode, webauthnCredentials, type UserRow } from '../../db/queries/users.js';
import { apiError, type ReasonId } from '../../errors.js';
import { userOf, type App, type Deps } from '../../http/context.js';
import { clearedSessionCookie } from '../../http/cookies.js';
import { hashSecret } from '../../secrets.js';
import { relyingParty, storedCredential } from '../../auth/relying-party.js';
import { loginSchema, logoutSchema, recoverySchema, sessionSchema, totpSchema, webauthnOptionsSchema, webauthnSchema } from './schema.js';

const CHALLENGE_MS = 5 * 60_000;

/** A wrong password or code: audited, and answered 401 (guardedAttempt then keeps the attempt counted). */
async function fail(deps: Deps, req: FastifyRequest, email: string, action: string, reason: string, orgId: string | null, thrown: ReasonId, typed?: string): Promise<never> {
  await auditRequest(deps, req, { action, outcome: 'failure', actorLabel: (typed ?? email).slice(0, 254), orgId, details: { reason } });
  throw apiError(thrown);
}

export function registerAuthRoutes(app: App, deps: Deps): void {
  app.post<{ Body: { email: string; password: string } }>('/auth/login', { schema: loginSchema, config: { auth: 'none' } }, async (req, reply) => {
    const email = normaliseEmail(req.body.email);
    const user = await guardedAttempt(
      deps,
      req,
      reply,
      email,
      async () => {
        const user = await findUserByEmail(deps.db, email);
        // An unknown account costs the same Argon2 work and gets the same answer as a wrong password.
        const passwordOk = user ? await verifyPassword(user.password_hash, req.body.password) : (await dummyVerify(req.body.password), false);
        if (!user) return fail(deps, req, email, 'auth.login', 'unknown-account', null, 'badCredentials', req.body.email);
        if (!passwordOk) return fail(deps, req, email, 'auth.login', 'bad-password', user.org_id, 'badCredentials', req.body.email);
        if (user.status !== 'active') return fail(deps, req, email, 'auth.login', 'disabled', user.org_id, 'badCredentials', req.body.email);
        const org = await findOrg(deps.db, user.org_id);
        if (!org || (await effectiveStatus(deps.db, org)) !== 'active') return fail(deps, req, email, 'auth.login', 'org-suspended', user.org_id, 'badCredentials', req.body.email);
        return user;
      },
      req.body.email,
    );

    const { token } = await openSession(deps, req, reply, user.id);
    const stage = await stageOf(deps, user, null);
    await deps.audit.append({
      actorType: 'user',
      actorId: user.id,
      actorLabel: user.email,
      orgId: user.org_id,
      action: 'auth.login',
      target: null,
      ip: req.ip,
      userAgent: req.headers['user-agent']?.slice(0, 400) ?? null,
      requestId: req.id,
      outcome: 'success',
      details: { step: 'password', next: stage },
    });
    return { stage, csrfToken: deps.keys.csrfToken(token), user: await presentMe(deps, user) };
  });

  /** Shared end of every second-factor proof: new token, throttle cleared, audited. */
  async function proven(req: FastifyRequest, reply: FastifyReply, user: UserRow, method: string) {
    const p = userOf(req);
    const session = await findSessionByTokenHash(deps.db, hashSecret(req.sessionToken ?? ''));
    if (!session) throw apiError('notSignedIn');
    const wasFull = p.stage === 'full';
    const token = await elevateSession(deps, reply, session.id, session.expires_at);
    await clearThrottle(deps.db, throttleKey('account', user.email));
    if (!wasFull) await updateUser(deps.db, user.id, { last_login_at: deps.clock().toISOString() }, deps.clock().toISOString());
    await auditRequest(deps, req, { action: wasFull ? 'auth.reauth' : 'auth.second-factor', outcome: 'success', details: { method } });
    const fresh = (await findUser(deps.db, user.id))!;
    return { stage: await stageOf(deps, fresh, deps.clock().toISOString()), csrfToken: deps.keys.csrfToken(token) };
  }

  /** Runs a second-factor check of the signed-in person under the guessing protection (auth/throttling.ts). */
  async function proof<T>(req: FastifyRequest, reply: FastifyReply, check: (user: UserRow) => Promise<T>): Promise<T> {
    const p = userOf(req);
    return guardedAttempt(deps, req, reply, p.email, async () => {
      const user = await findUser(deps.db, p.userId);
      if (!user) throw apiError('notSignedIn');
      return check(user);
    });
  }

  const proofConfig = { auth: 'user', tenant: 'self', stage: 'second-factor' } as const;

  app.post<{ Body: { code: string } }>('/auth/second-factor/totp', { schema: totpSchema, config: proofConfig }, async (req, reply) =>
    proof(req, reply, async (user) => {
      if (user.totp_secret === null) return fail(deps, req, user.email, 'auth.second-factor', 'no-totp', user.org_id, 'badSecondFactor');
      const secret = deps.keys.open(user.totp_secret, `totp:${user.id}`);
      const r = verifyTotp(secret, req.body.code, deps.clock().getTime(), user.totp_last_step === null ? null : Number(user.totp_last_step));
      if (!r.ok) return fail(deps, req, user.email, 'auth.second-factor', `totp-${r.reason}`, user.org_id, r.reason === 'replayed' ? 'secondFactorReplayed' : 'badSecondFactor');
      if (!(await claimTotpStep(deps.db, user.id, r.step))) return fail(deps, req, user.email, 'auth.second-factor', 'totp-replayed', user.org_id, 'secondFactorReplayed');
      return proven(req, reply, user, 'totp');
    }),
  );

  app.post<{ Body: { code: string } }>('/auth/second-factor/recovery-code', { schema: recoverySchema, config: proofConfig }, async (req, reply) =>
    proof(req, reply, async (user) => {
      const code = normaliseRecoveryCode(req.body.code);
      if (code === null || !(await useRecoveryCode(deps.db, user.id, hashRecoveryCode(code), deps.clock().toISOString()))) {
        return fail(deps, req, user.email, 'auth.second-factor', 'bad-recovery-code', user.org_id, 'badSecondFactor');
      }
      return proven(req, reply, user, 'recovery-code');
    }),
  );

  app.post('/auth/second-factor/webauthn/options', { schema: webauthnOptionsSchema, config: proofConfig }, async (req) => {
    const p = userOf(req);
    const creds = (await webauthnCredentials(deps.db, p.userId)).map(storedCredential);
    if (creds.length === 0) throw apiError('credentialNotFound');
    const { options, challenge } = await authenticationOptions(relyingParty(deps, req), creds);
    await updateSession(deps.db, p.sessionId, { challenge, challenge_expires_at: new Date(deps.clock().getTime() + CHALLENGE_MS).toISOString() });
    return options;
  });

  app.post<{ Body: { response: Record<string, unknown> } }>('/auth/second-factor/webauthn', { schema: webauthnSchema, config: proofConfig }, async (req, reply) =>
    proof(req, reply, async (user) => {
      const session = await findSessionByTokenHash(deps.db, hashSecret(req.sessionToken ?? ''));
      const challenge = session?.challenge;
      if (!session || !challenge || !session.challenge_expires_at || Date.parse(session.challenge_expires_at) < deps.clock().getTime()) {
        return fail(deps, req, user.email, 'auth.second-factor', 'webauthn-no-challenge', user.org_id, 'webauthnFailed');
      }
      await updateSession(deps.db, session.id, { challenge: null, challenge_expires_at: null }); // one use per challenge
      const id = credentialIdOf(req.body.response);
      const row = id === null ? undefined : (await webauthnCredentials(deps.db, user.id)).find((c) => c.id === id);
      if (!row) return fail(deps, req, user.email, 'auth.second-factor', 'webauthn-unknown-key', user.org_id, 'webauthnFailed');
      try {
        const { newCounter } = await verifyAuthentication(relyingParty(deps, req), req.body.response, challenge, storedCredential(row));
        await recordWebauthnUse(deps.db, user.id, row.id, newCounter, deps.clock().toISOString());
      } catch (e) {
        if (e instanceof WebAuthnError) return fail(deps, req, user.email, 'auth.second-factor', `webauthn: ${e.message}`, user.org_id, 'webauthnFailed');
        throw e;
      }
      return proven(req, reply, user, 'webauthn');
    }),
  );

  app.post('/auth/logout', { schema: logoutSchema, config: proofConfig }, async (req, reply) => {
    const p = userOf(req);
    await updateSession(deps.db, p.sessionId, { revoked_at: deps.clock().toISOString() });
    await auditRequest(deps, req, { action: 'auth.logout', outcome: 'success' });
    void reply.header('set-cookie', clearedSessionCookie());
    return { ok: true };
  });

  app.get('/session', { schema: sessionSchema, config: proofConfig }, async (req) => {
    const p = userOf(req);
    const user = await findUser(deps.db, p.userId);
    if (!user) throw apiError('notSignedIn');
    return { stage: p.stage, csrfToken: deps.keys.csrfToken(req.sessionToken ?? ''), user: await presentMe(deps, user) };
  });
}
