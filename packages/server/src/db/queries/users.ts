import { randomUUID } from 'node:crypto';
import { apiError } from '../../errors.js';
import type { Role } from '../../http/roles.js';
import type { OrgId, UserId } from '../../types.js';
import type { Database } from '../database.js';
import { LockName, writeTransaction } from '../engine.js';
import type { Locale, OrgStatus, OrgType, UsersTable, WebauthnCredentialsTable } from '../schema.js';

export type UserRow = UsersTable & { id: UserId; org_id: OrgId; role: Role };

export const normaliseEmail = (email: string): string => email.trim().toLowerCase();

export interface NewUser {
  readonly orgId: OrgId;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly passwordHash: string;
  readonly locale?: Locale;
}

/** A new user must change the password it was given and enrol a second factor at first sign-in. */
export async function createUser(db: Database, u: NewUser, now: string): Promise<UserRow> {
  const row: UserRow = {
    id: randomUUID() as UserId,
    org_id: u.orgId,
    email: normaliseEmail(u.email),
    name: u.name.trim(),
    role: u.role,
    status: 'active',
    password_hash: u.passwordHash,
    must_change_password: 1,
    password_changed_at: null,
    totp_secret: null,
    totp_pending_secret: null,
    totp_confirmed_at: null,
    totp_last_step: null,
    locale: u.locale ?? 'fr',
    created_at: now,
    updated_at: now,
    last_login_at: null,
  };
  const res = await db.insertInto('users').values(row).onConflict((oc) => oc.column('email').doNothing()).executeTakeFirst();
  if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('emailTaken', { email: row.email });
  return row;
}

export async function findUser(db: Database, id: string): Promise<UserRow | undefined> {
  return (await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()) as UserRow | undefined;
}

export async function findUserByEmail(db: Database, email: string): Promise<UserRow | undefined> {
  return (await db.selectFrom('users').selectAll().where('email', '=', normaliseEmail(email)).executeTakeFirst()) as UserRow | undefined;
}

export async function listUsers(db: Database, orgIds: readonly string[]): Promise<UserRow[]> {
  if (orgIds.length === 0) return [];
  return (await db.selectFrom('users').selectAll().where('org_id', 'in', [...orgIds]).orderBy('name').execute()) as UserRow[];
}

export async function updateUser(db: Database, id: UserId, patch: Partial<Omit<UsersTable, 'id' | 'created_at'>>, now: string): Promise<UserRow> {
  await db.updateTable('users').set({ ...patch, updated_at: now }).where('id', '=', id).execute();
  const row = await findUser(db, id);
  if (!row) throw apiError('userNotFound');
  return row;
}

/**
 * Claims a TOTP time step for a user: succeeds only if no equal or later step was used
 * before. The condition is in the UPDATE, so two racing requests with one code cannot both pass.
 */
export async function claimTotpStep(db: Database, id: UserId, step: number): Promise<boolean> {
  const res = await db
    .updateTable('users')
    .set({ totp_last_step: step })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function replaceRecoveryCodes(db: Database, id: UserId, hashes: readonly string[], now: string): Promise<void> {
  // The person's recovery codes, replaced as a whole: two replacements must not mix their codes.
  await writeTransaction(db, [LockName.user(id)], async (trx) => {
    await trx.deleteFrom('recovery_codes').where('user_id', '=', id).execute();
    if (hashes.length > 0) await trx.insertInto('recovery_codes').values(hashes.map((h) => ({ user_id: id, code_hash: h, created_at: now, used_at: null }))).execute();
  });
}

/** Uses up one recovery code; false if unknown or already used. */
export async function useRecoveryCode(db: Database, id: UserId, hash: string, now: string): Promise<boolean> {
  const res = await db.updateTable('recovery_codes').set({ used_at: now }).where('user_id', '=', id).where('code_hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function recoveryCodesLeft(db: Database, id: UserId): Promise<number> {
  const r = await db.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', id).where('used_at', 'is', null).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function webauthnCredentials(db: Database, id: UserId): Promise<WebauthnCredentialsTable[]> {
  return db.selectFrom('webauthn_credentials').selectAll().where('user_id', '=', id).orderBy('created_at').execute();
}

/** Removes every second factor (TOTP, security keys, recovery codes): the person enrols again at next sign-in. */
export async function resetSecondFactors(db: Database, id: UserId, now: string): Promise<void> {
  // The person's second factors, removed as a whole.
  await writeTransaction(db, [LockName.user(id)], async (trx) => {
    await trx.updateTable('users').set({ totp_secret: null, totp_pending_secret: null, totp_confirmed_at: null, updated_at: now }).where('id', '=', id).execute();
    await trx.deleteFrom('webauthn_credentials').where('user_id', '=', id).execute();
    await trx.deleteFrom('recovery_codes').where('user_id', '=', id).execute();
  });
}

export interface SecondFactorSummary {
  readonly totp: boolean;
  readonly webauthn: number;
  readonly recoveryCodesLeft: number;
}

export async function secondFactors(db: Database, user: UserRow): Promise<SecondFactorSummary> {
  const keys = await db.selectFrom('webauthn_credentials').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', user.id).executeTakeFirstOrThrow();
  return { totp: user.totp_secret !== null, webauthn: Number(keys.n), recoveryCodesLeft: await recoveryCodesLeft(db, user.id) };
}

/** A signed-in person as every request needs them: the user with its organisation's type and status, and its parent's status. */
export async function sessionUser(
  db: Database,
  userId: string,
): Promise<
  | (Pick<UsersTable, 'id' | 'email' | 'name' | 'role' | 'status' | 'org_id' | 'must_change_password' | 'totp_secret' | 'locale'> & { org_type: OrgType; org_status: OrgStatus; parent_status: OrgStatus | null })
  | undefined
> {
  return db
    .selectFrom('users as u')
    .innerJoin('orgs as o', 'o.id', 'u.org_id')
    .leftJoin('orgs as p', 'p.id', 'o.parent_id')
    .select(['u.id', 'u.email', 'u.name', 'u.role', 'u.status', 'u.org_id', 'u.must_change_password', 'u.totp_secret', 'u.locale', 'o.type as org_type', 'o.status as org_status', 'p.status as parent_status'])
    .where('u.id', '=', userId)
    .executeTakeFirst();
}

/** Whether the person has at least one security key. */
export async function hasSecurityKey(db: Database, userId: string): Promise<boolean> {
  return (await db.selectFrom('webauthn_credentials').select('id').where('user_id', '=', userId).limit(1).executeTakeFirst()) !== undefined;
}

/** Platform-wide (first start): whether any person exists at all. */
export async function anyUserExists(db: Database): Promise<boolean> {
  return (await db.selectFrom('users').select('id').limit(1).executeTakeFirst()) !== undefined;
}

/** Adds a security key to the person's second factors. */
export async function addWebauthnCredential(db: Database, userId: UserId, c: Omit<WebauthnCredentialsTable, 'user_id'>): Promise<void> {
  await db
    .insertInto('webauthn_credentials')
    .values({ ...c, user_id: userId })
    .execute();
}

/** Removes one of the person's security keys; false if they have no such key. */
export async function deleteWebauthnCredentialOfUser(db: Database, userId: UserId, credentialId: string): Promise<boolean> {
  const res = await db.deleteFrom('webauthn_credentials').where('id', '=', credentialId).where('user_id', '=', userId).executeTakeFirst();
  return Number(res.numDeletedRows) === 1;
}

/** Records a use of one of the person's security keys (its signature counter moves on). */
export async function recordWebauthnUse(db: Database, userId: string, credentialId: string, counter: number, now: string): Promise<void> {
  await db.updateTable('webauthn_credentials').set({ counter, last_used_at: now }).where('id', '=', credentialId).where('user_id', '=', userId).execute();
}
