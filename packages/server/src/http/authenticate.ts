import type { FastifyRequest } from 'fastify';
import { findMachineByCredentialHash, touchMachine } from '../db/queries/machines.js';
import { findSessionByTokenHash, updateSession } from '../db/queries/sessions.js';
import { hasSecurityKey, sessionUser } from '../db/queries/users.js';
import { apiError } from '../errors.js';
import { findReplicationCredential, touchReplicationCredential } from '../db/queries/replication.js';
import { CREDENTIAL_PREFIX, REPLICATION_CREDENTIAL_PREFIX, SESSION_TOKEN_PREFIX, hashSecret, looksLikeSecret } from '../secrets.js';
import type { OrgId, SessionStage, UserId } from '../types.js';
import { readCookie, SESSION_COOKIE } from './cookies.js';
import type { Deps } from './context.js';
import { isRole } from './roles.js';

/** last_seen_at is written at most this often per machine (a write per request would serialise everything on SQLite). */
export const LAST_SEEN_INTERVAL_MS = 60_000;
/** Same for sessions; the idle timeout is counted in minutes. */
const SESSION_TOUCH_MS = 15_000;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * onRequest hook: runs before the body is read, so an unauthenticated client cannot
 * make the server buffer a 256 MiB upload. Machine routes take a bearer credential;
 * people's routes a session cookie plus, for anything but a read, the session's CSRF
 * token in `X-CSRF-Token`. Missing, malformed, unknown, expired and revoked credentials
 * all get the same answer.
 */
export function authenticate(deps: Deps) {
  const machine = authenticateMachine(deps);
  const user = authenticateUser(deps);
  const replica = authenticateReplica(deps);
  return async (req: FastifyRequest): Promise<void> => {
    const auth = req.routeOptions.config.auth;
    if (auth === 'none' || req.is404) return;
    if (auth === 'user') return user(req);
    if (auth === 'replica') return replica(req);
    return machine(req);
  };
}

function authenticateMachine(deps: Deps) {
  return async (req: FastifyRequest): Promise<void> => {
    const match = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '');
    const credential = match?.[1];
    if (credential === undefined || !looksLikeSecret(credential, CREDENTIAL_PREFIX)) throw apiError('unauthenticated');
    const machine = await findMachineByCredentialHash(deps.db, hashSecret(credential));
    if (!machine || machine.revoked_at !== null) throw apiError('unauthenticated');
    // A suspended customer (or reseller above it) stops its machines at once.
    if (machine.suspended) throw apiError('orgSuspended');
    req.principal = { kind: 'machine', machineId: machine.id, machineName: machine.name, customerId: machine.customer_id };
    const now = deps.clock();
    if (machine.last_seen_at === null || now.getTime() - Date.parse(machine.last_seen_at) >= LAST_SEEN_INTERVAL_MS) {
      await touchMachine(deps.db, machine.id, now, LAST_SEEN_INTERVAL_MS);
    }
  };
}

/** A replica site's read-only credential (replication routes only). */
function authenticateReplica(deps: Deps) {
  return async (req: FastifyRequest): Promise<void> => {
    const credential = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (credential === undefined || !looksLikeSecret(credential, REPLICATION_CREDENTIAL_PREFIX)) throw apiError('unauthenticated');
    const row = await findReplicationCredential(deps.db, hashSecret(credential));
    if (!row) throw apiError('unauthenticated');
    req.principal = { kind: 'replica', credentialId: row.id, siteName: row.site_name };
    const now = deps.clock();
    if (row.last_seen_at === null || now.getTime() - Date.parse(row.last_seen_at) >= LAST_SEEN_INTERVAL_MS) await touchReplicationCredential(deps.db, row.id, now.toISOString());
  };
}

function authenticateUser(deps: Deps) {
  return async (req: FastifyRequest): Promise<void> => {
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (token === undefined || !looksLikeSecret(token, SESSION_TOKEN_PREFIX)) throw apiError('notSignedIn');
    const session = await findSessionByTokenHash(deps.db, hashSecret(token));
    const now = deps.clock();
    if (!session || session.revoked_at !== null || Date.parse(session.expires_at) <= now.getTime()) throw apiError('notSignedIn');
    if (now.getTime() - Date.parse(session.last_seen_at) > deps.settings.sessionIdleMinutes * 60_000) {
      await updateSession(deps.db, session.id, { revoked_at: now.toISOString() });
      throw apiError('notSignedIn');
    }
    // Anti-forgery: SameSite=Strict already keeps the cookie off cross-site requests; the
    // token and the Origin check are the second, independent layer.
    if (!SAFE_METHODS.has(req.method)) {
      const header = req.headers['x-csrf-token'];
      if (!deps.keys.csrfMatches(token, typeof header === 'string' ? header : undefined)) throw apiError('csrf');
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== expectedOrigin(deps, req)) throw apiError('csrf');
    }
    const user = await sessionUser(deps.db, session.user_id);
    if (!user || user.status !== 'active' || !isRole(user.role)) throw apiError('notSignedIn');
    if (user.org_status === 'suspended' || user.parent_status === 'suspended') throw apiError('orgSuspended');

    let stage: SessionStage = 'full';
    const hasFactor = user.totp_secret !== null || (await hasSecurityKey(deps.db, user.id));
    if (hasFactor && session.second_factor_at === null) stage = 'second-factor';
    else if (user.must_change_password === 1 || !hasFactor) stage = 'setup';

    req.sessionToken = token;
    req.principal = {
      kind: 'user',
      userId: user.id as UserId,
      email: user.email,
      name: user.name,
      role: user.role,
      orgId: user.org_id as OrgId,
      orgType: user.org_type,
      sessionId: session.id,
      stage,
      secondFactorAt: session.second_factor_at,
      locale: user.locale,
    };
    // Written at most every 15 s, or a tenth of the idle timeout if that is shorter.
    const touchMs = Math.min(SESSION_TOUCH_MS, deps.settings.sessionIdleMinutes * 6_000);
    if (now.getTime() - Date.parse(session.last_seen_at) >= touchMs) await updateSession(deps.db, session.id, { last_seen_at: now.toISOString() });
  };
}

/** The console's origin: the configured public URL, else the request's own host. */
export function expectedOrigin(deps: Deps, req: FastifyRequest): string {
  return deps.settings.publicUrl ?? `https://${req.headers.host ?? ''}`;
}
