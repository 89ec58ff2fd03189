import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { AuditLog } from '../audit/log.js';
import { AuditKeyMismatchError, loadAuditSigner } from '../audit/signing-key.js';
import { stderrLog } from '../log.js';
import type { ServerKeys } from '../auth/server-key.js';
import type { AuditInput } from '../audit/log.js';
import type { AuditPublicKey } from '../audit/checkpoint.js';
import { hashPassword } from '../auth/passwords.js';
import { createOrg, findOrgByName, listOrgs, operatorOrg, setOrgStatus, subtreeIds, updateOrg, type OrgPatch, type OrgRow } from '../db/queries/orgs.js';
import { anyUserExists, createUser, findUserByEmail, normaliseEmail, type UserRow } from '../db/queries/users.js';
import { queueResetNotice, resetCredentials, type ResetWhat } from '../auth/credential-reset.js';
import type { OrgType, TiersTable } from '../db/schema.js';
import { createTier, findTierByName, listTiers } from '../db/queries/tiers.js';
import { ROLES_BY_ORG_TYPE, type Role } from '../http/roles.js';
import { newTemporaryPassword } from '../secrets.js';
import type { MachineId, OrgId } from '../types.js';
import type { BackupStatus, MachineJobRecord, MachineRecord, RestoreTestSummary } from '@coffre/core';
import { graceMs } from '../observatory/alerts.js';
import { machineStates } from '../observatory/machine-states.js';
import { initDataDir, type DataDir } from '../datadir.js';
import { getSiteState } from '../db/queries/replication.js';
import type { Database } from '../db/database.js';
import { dataDirOwner, DirLockedError } from '../backends/dir-lock.js';
import { openBackends } from '../backends/open.js';
import type { ObjectStore } from '../store/object-store.js';
import { findCustomerByName, listCustomers } from '../db/queries/customers.js';
import { createEnrollToken as insertEnrollToken, revokeMachine } from '../db/queries/machines.js';
import { apiError, isApiError } from '../errors.js';
import { presentMachine } from '../routes/machines/presenter.js';
import { hashSecret, newEnrollToken } from '../secrets.js';
import { isoNow, systemClock, type Clock, type CustomerId } from '../types.js';

/**
 * Management operations used by the CLI (and by tests as factories). They work directly
 * on the data dir's database, also while the server runs (SQLite WAL). They never print.
 */
export interface AdminContext {
  readonly db: Database;
  /** The object store the data directory is configured for (packs, reference lists). */
  readonly store: ObjectStore;
  readonly dataDir: DataDir;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /** Who runs the command: the operating-system account (the CLI needs shell access to the data dir). */
  readonly actor: string;
  /** The server key (replication seals its credential with it). */
  readonly keys: ServerKeys;
  readonly installationId: string;
}

/**
 * Initialises `dir` if needed (same as `start`) and opens the database and object store it
 * is configured for (backends/config.ts: environment, then server.json, then embedded);
 * call `close` after. Throws BackendError when one cannot be used.
 */
export async function openAdmin(dir: string, clock: Clock = systemClock, opts: { auditKey?: string } = {}): Promise<AdminContext & { close(): Promise<void> }> {
  const dataDir = await initDataDir(dir);
  // A migration copies the data directory as it is: nothing may change it meanwhile.
  const owner = await dataDirOwner(dataDir.paths.root);
  if (owner?.role === 'migrate-storage') throw new DirLockedError(dataDir.paths.root, owner);
  const backends = await openBackends(dataDir);
  const { db, store } = backends;
  let actor = 'unknown';
  try {
    actor = userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  let signer = null;
  let pinKey = null;
  try {
    // Used when this account finds it (checkpoints are then signed); `start` is what creates it.
    signer = await loadAuditSigner(db, { installationId: backends.installationId, dataDir: dataDir.paths.root, file: opts.auditKey, required: false, now: isoNow(clock), chain: backends.where.database });
  } catch (err) {
    if (err instanceof AuditKeyMismatchError) {
      // Not the key the database records: sign nothing, but verify against the file (the database's record may be what was replaced).
      stderrLog({ level: 'warn', msg: err.message });
      pinKey = err.found;
    } else {
      await backends.close();
      throw err;
    }
  }
  const auditLog = new AuditLog(db, backends.audit, clock, stderrLog, { signer, pinKey, installationId: backends.installationId, retentionDays: dataDir.settings.auditRetentionDays });
  const close = async (): Promise<void> => {
    try {
      await auditLog.checkpoint(); // what this command appended is signed now, not at the server's next minute
    } finally {
      await backends.close();
    }
  };
  return { db, store, dataDir, clock, audit: auditLog, actor, keys: backends.keys, installationId: backends.installationId, close };
}

/** Every change made from the command line is in the audit trail, with the OS account as actor. */
async function audit(ctx: AdminContext, e: Pick<AuditInput, 'action' | 'orgId' | 'target'> & { details?: AuditInput['details']; outcome?: AuditInput['outcome'] }): Promise<void> {
  await ctx.audit.append({
    actorType: 'cli',
    actorId: ctx.actor,
    actorLabel: `${ctx.actor} (command line)`,
    orgId: e.orgId,
    action: e.action,
    target: e.target,
    ip: null,
    userAgent: null,
    requestId: null,
    outcome: e.outcome ?? 'success',
    details: e.details ?? null,
  });
}

async function orgByName(ctx: AdminContext, name: string): Promise<OrgRow> {
  const o = await findOrgByName(ctx.db, name);
  if (!o) throw apiError('orgNotFound', { name });
  return o;
}

export async function adminCreateOrg(ctx: AdminContext, name: string, type: Exclude<OrgType, 'operator'>, parentName?: string): Promise<OrgRow> {
  const parent = parentName === undefined ? await operatorOrg(ctx.db) : await orgByName(ctx, parentName);
  const org = await createOrg(ctx.db, { name, type, parentId: parent.id }, isoNow(ctx.clock));
  await audit(ctx, { action: 'org.create', orgId: org.id, target: `org:${org.id}`, details: { name, type, parentId: parent.id } });
  return org;
}

export async function adminListOrgs(ctx: AdminContext): Promise<OrgRow[]> {
  return listOrgs(ctx.db, await subtreeIds(ctx.db, (await operatorOrg(ctx.db)).id));
}

export async function adminUpdateOrg(ctx: AdminContext, name: string, patch: OrgPatch): Promise<OrgRow> {
  const org = await orgByName(ctx, name);
  const updated = await updateOrg(ctx.db, org.id, patch, isoNow(ctx.clock));
  await audit(ctx, { action: 'org.update', orgId: org.id, target: `org:${org.id}`, details: { fields: Object.keys(patch) } });
  return updated;
}

export async function adminSetOrgStatus(ctx: AdminContext, name: string, status: 'active' | 'suspended'): Promise<OrgRow> {
  const org = await orgByName(ctx, name);
  if (org.type === 'operator') throw apiError('notOnSelf');
  const updated = await setOrgStatus(ctx.db, org.id as OrgId, status, isoNow(ctx.clock));
  await audit(ctx, { action: status === 'suspended' ? 'org.suspend' : 'org.resume', orgId: org.id, target: `org:${org.id}` });
  return updated;
}

/** Adds a tier to the price list: an upper limit of protected volume and a monthly price. */
export async function adminCreateTier(ctx: AdminContext, name: string, limitBytes: number, monthlyPriceCents: number): Promise<TiersTable> {
  const t = await createTier(ctx.db, { name, limitBytes, monthlyPriceCents }, isoNow(ctx.clock));
  await audit(ctx, { action: 'tier.create', orgId: null, target: `tier:${t.id}`, details: { name, limitBytes, monthlyPriceCents } });
  return t;
}

export async function adminListTiers(ctx: AdminContext): Promise<TiersTable[]> {
  return listTiers(ctx.db);
}

/** `customer set`: the alert address and/or the subscribed tier of a customer. */
export async function adminCustomerSet(ctx: AdminContext, name: string, s: { alertEmail?: string; tier?: string }): Promise<OrgRow> {
  const org = await orgByName(ctx, name);
  if (org.type !== 'customer') throw apiError('customerNotFound', { name });
  const patch: OrgPatch = {};
  if (s.alertEmail !== undefined) patch.alert_email = s.alertEmail;
  if (s.tier !== undefined) {
    const t = await findTierByName(ctx.db, s.tier);
    if (!t) throw apiError('tierNotFound', { name: s.tier });
    patch.tier_id = t.id;
    // The operator's choice wins over a switch a crossing scheduled for next month.
    patch.pending_tier_id = null;
    patch.pending_tier_from = null;
  }
  const updated = await updateOrg(ctx.db, org.id, patch, isoNow(ctx.clock));
  await audit(ctx, { action: 'org.update', orgId: org.id, target: `org:${org.id}`, details: { fields: Object.keys(patch), ...(s.tier !== undefined ? { tier: s.tier } : {}) } });
  return updated;
}

export class RoleNotValidError extends Error {
  override readonly name = 'RoleNotValidError';
}

/** Creates a person with a temporary password (returned once): they change it and enrol a second factor at first sign-in. */
export async function adminCreateUser(
  ctx: AdminContext,
  u: { email: string; name: string; role: Role; orgName: string },
): Promise<{ user: UserRow; temporaryPassword: string }> {
  const org = await orgByName(ctx, u.orgName);
  if (!ROLES_BY_ORG_TYPE[org.type].includes(u.role)) {
    throw new RoleNotValidError(`a ${org.type} organisation's people may be ${ROLES_BY_ORG_TYPE[org.type].join(', ')}; not ${u.role}`);
  }
  const temporaryPassword = newTemporaryPassword();
  const user = await createUser(ctx.db, { orgId: org.id, email: u.email, name: u.name, role: u.role, passwordHash: await hashPassword(temporaryPassword), locale: org.locale }, isoNow(ctx.clock));
  await audit(ctx, { action: 'user.create', orgId: org.id, target: `user:${user.id}`, details: { email: user.email, role: user.role } });
  return { user, temporaryPassword };
}

/**
 * Resets a person's password or second factor from the server itself: the way for an
 * operator-admin, whom no higher role can reset in the console. Ends their sessions, emails
 * them, and returns the temporary password (password reset) once.
 */
export async function adminResetCredentials(ctx: AdminContext, email: string, what: ResetWhat): Promise<{ user: UserRow; temporaryPassword: string | null }> {
  const user = await findUserByEmail(ctx.db, normaliseEmail(email));
  if (!user) throw apiError('userNotFound');
  const now = ctx.clock();
  const { temporaryPassword, sessionsEnded } = await resetCredentials(ctx.db, user, what, now);
  await audit(ctx, { action: what === 'password' ? 'user.password.reset' : 'user.second-factor.reset', orgId: user.org_id, target: `user:${user.id}`, details: { sessionsEnded } });
  await queueResetNotice(ctx.db, user, what, { name: ctx.actor, email: 'coffre-server' }, ctx.dataDir.settings.publicUrl, now, randomUUID());
  return { user, temporaryPassword };
}

/**
 * First start: when nobody exists yet, creates the initial operator administrator with a
 * temporary password. It must change that password and enrol a second factor before
 * anything else (the session stays in 'setup' until then). Returns null when people exist.
 */
/** Under DIR/secrets: "email\npassword\n" of the initial administrator, until it changes the password. */
export const INITIAL_ADMIN_FILE = 'initial-admin-password';

export async function ensureInitialAdmin(ctx: AdminContext, email: string): Promise<{ email: string; temporaryPassword: string } | null> {
  if (await anyUserExists(ctx.db)) return null;
  // A replica's people are the primary's (replicated), its administrator included.
  if ((await getSiteState(ctx.db))?.role === 'replica') return null;
  const op = await operatorOrg(ctx.db);
  try {
    const { user, temporaryPassword } = await adminCreateUser(ctx, { email, name: 'Initial administrator', role: 'operator-admin', orgName: op.name });
    return { email: user.email, temporaryPassword };
  } catch (err) {
    // Another instance starting on the same new database created it first: its data directory has the password.
    if (isApiError(err) && err.reason === 'emailTaken' && (await anyUserExists(ctx.db))) return null;
    throw err;
  }
}

export interface CustomerSummary {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly machines: number;
}

/** Shorthand for a customer directly under the operator. */
export async function adminCreateCustomer(ctx: AdminContext, name: string): Promise<CustomerSummary> {
  const row = await adminCreateOrg(ctx, name, 'customer');
  return { id: row.id, name: row.name, createdAt: row.created_at, machines: 0 };
}

export async function adminListCustomers(ctx: AdminContext): Promise<CustomerSummary[]> {
  return (await listCustomers(ctx.db)).map((c) => ({ id: c.id, name: c.name, createdAt: c.created_at, machines: c.machines }));
}

async function customerIdByName(ctx: AdminContext, name: string): Promise<CustomerId> {
  const c = await findCustomerByName(ctx.db, name);
  if (!c) throw apiError('customerNotFound', { name });
  return c.id;
}

export interface IssuedEnrollToken {
  readonly token: string;
  readonly tokenId: string;
  readonly customerId: string;
  readonly expiresAt: string;
}

/** Issues a one-time enrollment token; only its hash is stored, the token is returned once. */
export async function adminCreateEnrollToken(ctx: AdminContext, customerName: string, ttlHours: number = ctx.dataDir.settings.enrollTokenTtlHours): Promise<IssuedEnrollToken> {
  const customerId = await customerIdByName(ctx, customerName);
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000).toISOString();
  const token = newEnrollToken();
  const tokenId = randomUUID();
  await insertEnrollToken(ctx.db, { id: tokenId, customerId, tokenHash: hashSecret(token), now: now.toISOString(), expiresAt, createdBy: `cli:${ctx.actor}` });
  await audit(ctx, { action: 'machine.enroll-token.create', orgId: customerId, target: null, details: { expiresAt } });
  return { token, tokenId, customerId, expiresAt };
}

/** A customer's machines with what the observatory knows: status, jobs, last success, next run. */
export async function adminListMachines(
  ctx: AdminContext,
  customerName: string,
): Promise<
  (MachineRecord & {
    status: BackupStatus;
    jobs: readonly MachineJobRecord[];
    lastSuccessAt: string | null;
    nextExpectedAt: string | null;
    lastHeartbeatAt: string | null;
    lastRestoreTest: RestoreTestSummary | null;
  })[]
> {
  const id = await customerIdByName(ctx, customerName);
  const states = await machineStates(ctx.db, [id], ctx.clock(), graceMs({ settings: ctx.dataDir.settings }));
  return states.map((s) => ({
    ...presentMachine(s.machine),
    status: s.status.status,
    jobs: s.jobs,
    lastSuccessAt: s.lastSuccessAt,
    nextExpectedAt: s.status.nextExpectedAt?.toISOString() ?? null,
    lastHeartbeatAt: s.machine.last_heartbeat_at,
    lastRestoreTest: s.lastRestoreTest,
  }));
}

/** Revokes a machine's credential at once (lost or stolen machine). */
export async function adminRevokeMachine(ctx: AdminContext, customerName: string, machineName: string): Promise<MachineRecord> {
  const customerId = await customerIdByName(ctx, customerName);
  const m = await revokeMachine(ctx.db, customerId, machineName, isoNow(ctx.clock));
  await audit(ctx, { action: 'machine.credential.revoke', orgId: customerId, target: `machine:${m.id}`, details: { name: m.name } });
  return presentMachine(m);
}

/** Revokes a machine's credential and returns a one-time token that enrols it again under the same name. */
export async function adminReissueMachine(ctx: AdminContext, customerName: string, machineName: string, ttlHours: number = ctx.dataDir.settings.enrollTokenTtlHours): Promise<IssuedEnrollToken> {
  const customerId = await customerIdByName(ctx, customerName);
  const m = await revokeMachine(ctx.db, customerId, machineName, isoNow(ctx.clock));
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000).toISOString();
  const token = newEnrollToken();
  const tokenId = randomUUID();
  const replaced = await insertEnrollToken(ctx.db, { id: tokenId, customerId, tokenHash: hashSecret(token), now: now.toISOString(), expiresAt, createdBy: `cli:${ctx.actor}`, reissueMachineId: m.id as MachineId });
  await audit(ctx, { action: 'machine.credential.reissue', orgId: customerId, target: `machine:${m.id}`, details: { name: m.name, expiresAt, earlierTokensInvalidated: replaced } });
  return { token, tokenId, customerId, expiresAt };
}

/** The chain and its signatures, with the published public key the caller pins (`audit verify --public-key`). */
export async function adminAuditVerify(ctx: AdminContext, pinned?: AuditPublicKey) {
  const verdict = await ctx.audit.verifySigned(pinned);
  const s = verdict.signatures;
  await audit(ctx, {
    action: 'audit.verify', orgId: null, target: null, outcome: verdict.ok ? 'success' : 'failure',
    details: { count: verdict.chain.count, firstBad: verdict.chain.firstBad ?? null, signedUpTo: s?.signedUpTo ?? null, unsigned: s?.unsigned ?? null, pinning: s?.pinning ?? null, signatureProblem: s?.problem ?? null },
  });
  return verdict;
}

export async function adminAuditExportStart(ctx: AdminContext, format: 'csv' | 'json', since?: string): Promise<void> {
  await audit(ctx, { action: 'audit.export', orgId: null, target: null, details: { format, since: since ?? null } });
}
