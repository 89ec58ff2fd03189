import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import { INITIAL_ADMIN_FILE } from '../../admin/index.js';
import { auditRequest } from '../../audit/record.js';
import { checkPassword, PASSWORD_PROBLEM_MESSAGES } from '../../auth/password-policy.js';
import { hashPassword, verifyPassword } from '../../auth/passwords.js';
import { hashRecoveryCode, newRecoveryCodes } from '../../auth/recovery-codes.js';
import { relyingParty, storedCredential } from '../../auth/relying-party.js';
import { newTotpSecret, otpauthUri, totpSecretToBase32, verifyTotp } from '../../auth/totp.js';
import { registrationOptions, verifyRegistration, WebAuthnError } from '../../auth/webauthn.js';
import { guardedAttempt } from '../../auth/throttling.js';
import { elevateCurrentSession } from '../../auth/session-service.js';
import { findSessionByTokenHash, listSessions, revokeSession, revokeUserSessions, updateSession } from '../../db/queries/sessions.js';
import { addWebauthnCredential, deleteWebauthnCredentialOfUser, findUser, replaceRecoveryCodes, secondFactors, updateUser, webauthnCredentials, type UserRow } from '../../db/queries/users.js';
import { apiError } from '../../errors.js';
import { userOf, type App, type Deps } from '../../http/context.js';
import { hashSecret } from '../../secrets.js';
import type { UserPrincipal } from '../../types.js';
import {
  changePasswordSchema,
  listSessionsSchema,
  recoveryCodesSchema,
  revokeSessionSchema,
  totpConfirmSchema,
  totpSetupSchema,
  webauthnDeleteSchema,
  webauthnRegisterOptionsSchema,
  webauthnRegisterSchema,
} from './schema.js';

const CHALLENGE_MS = 5 * 60_000;
const RECOVERY_CODE_COUNT = 10;
const SAME_PASSWORD = { en: 'The new password must differ from the current one.', fr: "Le nouveau mot de passe doit être différent de l'actuel." } as const;

/** The temporary password written at first start is useless once changed: remove its file. */
async function forgetInitialPassword(deps: Deps, email: string): Promise<void> {
  const file = path.join(deps.secretsDir, INITIAL_ADMIN_FILE);
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text !== null && text.split('\n', 1)[0] === email) await rm(file, { force: true });
}

export function registerMeRoutes(app: App, deps: Deps): void {
  const setup = { auth: 'user', tenant: 'self', stage: 'setup' } as const;
  const full = { auth: 'user', tenant: 'self', stage: 'full', reauth: true } as const;

  async function me(req: FastifyRequest): Promise<{ p: UserPrincipal; user: UserRow }> {
    const p = userOf(req);
    const user = await findUser(deps.db, p.userId);
    if (!user) throw apiError('notSignedIn');
    return { p, user };
  }

  /** Replacing an enrolled factor is as sensitive as a destructive action: it needs a fresh proof. */
  async function requireFreshProofIfEnrolled(p: UserPrincipal, user: UserRow): Promise<void> {
    const f = await secondFactors(deps.db, user);
    if (!(f.totp || f.webauthn > 0)) return;
    const fresh = p.secondFactorAt !== null && deps.clock().getTime() - Date.parse(p.secondFactorAt) <= deps.settings.reauthMinutes * 60_000;
    if (!fresh) throw apiError('reauthRequired');
  }

  async function issueRecoveryCodes(user: UserRow): Promise<string[]> {
    const codes = newRecoveryCodes(RECOVERY_CODE_COUNT);
    await replaceRecoveryCodes(deps.db, user.id, codes.map(hashRecoveryCode), deps.clock().toISOString());
    return codes;
  }

  app.post<{ Body: { currentPassword: string; newPassword: string } }>('/me/password', { schema: changePasswordSchema, config: setup }, async (req, reply) => {
    const { p, user } = await me(req);
    await guardedAttempt(deps, req, reply, user.email, async () => {
      if (await verifyPassword(user.password_hash, req.body.currentPassword)) return;
      await auditRequest(deps, req, { action: 'user.password.change', outcome: 'failure', target: `user:${user.id}`, details: { reason: 'bad-current-password' } });
      throw apiError('badCurrentPassword');
    });
    const problems: string[] = checkPassword(req.body.newPassword, { email: user.email, name: user.name });
    if (req.body.newPassword === req.body.currentPassword) problems.push('same_as_current');
    if (problems.length > 0) {
      await auditRequest(deps, req, { action: 'user.password.change', outcome: 'failure', target: `user:${user.id}`, details: { reason: 'policy', problems } });
      throw apiError('weakPassword', {
        problems,
        messages: problems.map((k) => (k in PASSWORD_PROBLEM_MESSAGES ? PASSWORD_PROBLEM_MESSAGES[k as keyof typeof PASSWORD_PROBLEM_MESSAGES] : SAME_PASSWORD)),
      });
    }
    const now = deps.clock().toISOString();
    await updateUser(deps.db, user.id, { password_hash: await hashPassword(req.body.newPassword), must_change_password: 0, password_changed_at: now }, now);
    const ended = await revokeUserSessions(deps.db, user.id, now, p.sessionId);
    await forgetInitialPassword(deps, user.email);
    await auditRequest(deps, req, { action: 'user.password.change', outcome: 'success', target: `user:${user.id}`, details: { otherSessionsEnded: ended } });
    return { ok: true };
  });

  app.post('/me/totp/setup', { schema: totpSetupSchema, config: setup }, async (req) => {
    const { p, user } = await me(req);
    await requireFreshProofIfEnrolled(p, user);
    const secret = newTotpSecret();
    const now = deps.clock().toISOString();
    await updateUser(deps.db, user.id, { totp_pending_secret: deps.keys.seal(secret, `totp-pending:${user.id}`) }, now);
    return { secret: totpSecretToBase32(secret), otpauthUri: otpauthUri({ secret, account: user.email, issuer: 'coffre' }) };
  });

  app.post<{ Body: { code: string } }>('/me/totp/confirm', { schema: totpConfirmSchema, config: setup }, async (req, reply) => {
    const { p, user } = await me(req);
    const pending = user.totp_pending_secret;
    if (pending === null) throw apiError('noPendingSecondFactor');
    await requireFreshProofIfEnrolled(p, user);
    const secret = deps.keys.open(pending, `totp-pending:${user.id}`);
    const r = await guardedAttempt(deps, req, reply, user.email, async () => {
      const r = verifyTotp(secret, req.body.code, deps.clock().getTime(), null);
      if (r.ok) return r;
      await auditRequest(deps, req, { action: 'user.second-factor.enrol', outcome: 'failure', target: `user:${user.id}`, details: { method: 'totp', reason: r.reason } });
      throw apiError('badSecondFactor');
    });
    const now = deps.clock().toISOString();
    await updateUser(
      deps.db,
      user.id,
      { totp_secret: deps.keys.seal(secret, `totp:${user.id}`), totp_pending_secret: null, totp_confirmed_at: now, totp_last_step: r.step, last_login_at: now },
      now,
    );
    // Proving the new factor counts as this session's second-factor proof: new token (no fixation).
    const csrfToken = await elevateCurrentSession(deps, req, reply);
    const recoveryCodes = await issueRecoveryCodes(user);
    await auditRequest(deps, req, { action: 'user.second-factor.enrol', outcome: 'success', target: `user:${user.id}`, details: { method: 'totp' } });
    return { recoveryCodes, csrfToken };
  });

  app.post('/me/recovery-codes', { schema: recoveryCodesSchema, config: full }, async (req) => {
    const { user } = await me(req);
    const recoveryCodes = await issueRecoveryCodes(user);
    await auditRequest(deps, req, { action: 'user.recovery-codes.renew', outcome: 'success', target: `user:${user.id}` });
    return { recoveryCodes };
  });

  app.post('/me/webauthn/register/options', { schema: webauthnRegisterOptionsSchema, config: setup }, async (req) => {
    const { p, user } = await me(req);
    await requireFreshProofIfEnrolled(p, user);
    const existing = (await webauthnCredentials(deps.db, user.id)).map(storedCredential);
    const { options, challenge } = await registrationOptions(relyingParty(deps, req), { id: user.id, email: user.email, name: user.name }, existing);
    await updateSession(deps.db, p.sessionId, { challenge, challenge_expires_at: new Date(deps.clock().getTime() + CHALLENGE_MS).toISOString() });
    return options;
  });

  app.post<{ Body: { response: Record<string, unknown>; name?: string } }>('/me/webauthn/register', { schema: webauthnRegisterSchema, config: setup }, async (req, reply) => {
    const { p, user } = await me(req);
    await requireFreshProofIfEnrolled(p, user);
    const session = await findSessionByTokenHash(deps.db, hashSecret(req.sessionToken ?? ''));
    const challenge = session?.challenge;
    if (!session || !challenge || !session.challenge_expires_at || Date.parse(session.challenge_expires_at) < deps.clock().getTime()) throw apiError('noPendingSecondFactor');
    await updateSession(deps.db, session.id, { challenge: null, challenge_expires_at: null });
    let cred;
    try {
      cred = await verifyRegistration(relyingParty(deps, req), req.body.response, challenge);
    } catch (e) {
      if (!(e instanceof WebAuthnError)) throw e;
      await auditRequest(deps, req, { action: 'user.second-factor.enrol', outcome: 'failure', target: `user:${user.id}`, details: { method: 'webauthn', reason: e.message } });
      throw apiError('webauthnFailed');
    }
    const before = await secondFactors(deps.db, user);
    const now = deps.clock().toISOString();
    await addWebauthnCredential(deps.db, user.id, {
      id: cred.id,
      public_key: Buffer.from(cred.publicKey).toString('base64url'),
      counter: cred.counter,
      transports: JSON.stringify(cred.transports),
      name: req.body.name ?? 'security key',
      created_at: now,
      last_used_at: null,
    });
    const csrfToken = await elevateCurrentSession(deps, req, reply);
    await updateUser(deps.db, user.id, { last_login_at: now }, now);
    const first = !(before.totp || before.webauthn > 0);
    const recoveryCodes = first ? await issueRecoveryCodes(user) : undefined;
    await auditRequest(deps, req, { action: 'user.second-factor.enrol', outcome: 'success', target: `user:${user.id}`, details: { method: 'webauthn' } });
    return { id: cred.id, csrfToken, ...(recoveryCodes ? { recoveryCodes } : {}) };
  });

  app.delete<{ Params: { credentialId: string } }>('/me/webauthn/:credentialId', { schema: webauthnDeleteSchema, config: full }, async (req) => {
    const { user } = await me(req);
    if (!(await deleteWebauthnCredentialOfUser(deps.db, user.id, req.params.credentialId))) throw apiError('credentialNotFound');
    await auditRequest(deps, req, { action: 'user.second-factor.remove', outcome: 'success', target: `user:${user.id}`, details: { method: 'webauthn' } });
    return { ok: true };
  });

  app.get('/me/sessions', { schema: listSessionsSchema, config: setup }, async (req) => {
    const p = userOf(req);
    const rows = await listSessions(deps.db, p.userId, deps.clock().toISOString());
    return {
      sessions: rows.map((s) => ({
        id: s.id,
        current: s.id === p.sessionId,
        createdAt: s.created_at,
        lastSeenAt: s.last_seen_at,
        expiresAt: s.expires_at,
        ip: s.ip,
        userAgent: s.user_agent,
      })),
    };
  });

  app.delete<{ Params: { sessionId: string } }>('/me/sessions/:sessionId', { schema: revokeSessionSchema, config: setup }, async (req) => {
    const p = userOf(req);
    if (!(await revokeSession(deps.db, p.userId, req.params.sessionId, deps.clock().toISOString()))) throw apiError('sessionNotFound');
    await auditRequest(deps, req, { action: 'auth.session.revoke', outcome: 'success', target: `session:${req.params.sessionId}` });
    return { ok: true };
  });
}
