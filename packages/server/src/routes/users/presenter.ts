import type { PersonRecord } from '@coffre/core';
import { secondFactors, type UserRow } from '../../db/queries/users.js';
import type { Deps } from '../../http/context.js';

/** What the API shows of a person: never the password hash, TOTP secret or recovery codes. */
export async function presentUser(deps: Deps, u: UserRow): Promise<PersonRecord> {
  const f = await secondFactors(deps.db, u);
  return {
    id: u.id,
    orgId: u.org_id,
    email: u.email,
    name: u.name,
    role: u.role,
    status: u.status,
    locale: u.locale,
    mustChangePassword: u.must_change_password === 1,
    secondFactor: { totp: f.totp, webauthn: f.webauthn },
    createdAt: u.created_at,
    lastLoginAt: u.last_login_at,
  };
}
