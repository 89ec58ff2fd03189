/** The three kinds of organisation: operator → reseller → customer. */
export const ORG_TYPES = ['operator', 'reseller', 'customer'] as const;
export type OrgType = (typeof ORG_TYPES)[number];

/**
 * People's roles and what each may do: the policy table. The server enforces it
 * (http/policy.ts), docs/SECURITY.md documents it and the route × role test walks it against
 * a running server; the console reads it only to hide what would be refused. Pure data,
 * browser-safe (imported as `@coffre/core/roles`).
 */
export const ROLES = ['operator-admin', 'reseller-admin', 'technician', 'customer-admin', 'customer-viewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];
export const isRole = (s: unknown): s is Role => typeof s === 'string' && (ROLES as readonly string[]).includes(s);

export const USER_ACTIONS = [
  'orgs:read',
  'orgs:create',
  'orgs:update',
  'orgs:suspend',
  'users:read',
  'users:create',
  'users:update',
  'users:reset-credentials',
  'machines:read',
  'machines:enroll',
  'machines:revoke',
  'audit:read',
  'audit:verify',
  'access-review:read',
  'access-review:mark',
] as const;
export type UserAction = (typeof USER_ACTIONS)[number];

const READ: readonly UserAction[] = ['orgs:read', 'users:read', 'machines:read', 'access-review:read'];

export const ROLE_ACTIONS: Readonly<Record<Role, readonly UserAction[]>> = {
  'operator-admin': USER_ACTIONS,
  'reseller-admin': [...READ, 'orgs:create', 'orgs:update', 'orgs:suspend', 'users:create', 'users:update', 'users:reset-credentials', 'machines:enroll', 'machines:revoke', 'audit:read', 'access-review:mark'],
  technician: ['orgs:read', 'machines:read', 'machines:enroll', 'machines:revoke'],
  'customer-admin': [...READ, 'orgs:update', 'users:create', 'users:update', 'users:reset-credentials', 'machines:enroll', 'machines:revoke', 'audit:read', 'access-review:mark'],
  'customer-viewer': ['orgs:read', 'machines:read'],
  // Read-only, the audit trail included; separated from every duty that changes anything.
  auditor: [...READ, 'audit:read', 'audit:verify'],
};

export function roleAllows(role: Role, action: UserAction): boolean {
  return ROLE_ACTIONS[role].includes(action);
}

/** Which roles a person of an organisation of this type may hold. */
export const ROLES_BY_ORG_TYPE: Readonly<Record<OrgType, readonly Role[]>> = {
  operator: ['operator-admin', 'technician', 'auditor'],
  reseller: ['reseller-admin', 'technician', 'auditor'],
  customer: ['customer-admin', 'customer-viewer', 'auditor'],
};

/** Roles that must use a second factor. Every person signing in to the administration interface does, so: all. */
export const SECOND_FACTOR_REQUIRED: ReadonlySet<Role> = new Set(ROLES);

/**
 * Separation of duties when granting a role: the granter's tier bounds what it can give.
 * An operator-admin grants anything; a reseller-admin grants reseller and customer roles
 * (never operator ones, never auditor of the operator); a customer-admin grants customer
 * roles. Nobody grants a role to themselves (checked by the route).
 */
export function mayGrant(granter: Role, role: Role, targetOrgType: OrgType): boolean {
  if (!ROLES_BY_ORG_TYPE[targetOrgType].includes(role)) return false;
  switch (granter) {
    case 'operator-admin':
      return true;
    case 'reseller-admin':
      return targetOrgType !== 'operator';
    case 'customer-admin':
      return targetOrgType === 'customer';
    default:
      return false;
  }
}

/** How far up the administration a role reaches; roles that administer nobody are 0. */
const ADMIN_RANK: Readonly<Record<Role, number>> = { 'operator-admin': 3, 'reseller-admin': 2, 'customer-admin': 1, technician: 0, 'customer-viewer': 0, auditor: 0 };

/**
 * Resetting someone's password or second factor hands their account to whoever sets it up
 * next, so it needs more than granting their role: a strictly higher administrative role.
 * A peer (same role) never resets a peer — it goes up a tier (or to `coffre-server` for the
 * operator's administrators).
 */
export function mayResetCredentials(actor: Role, target: Role, targetOrgType: OrgType): boolean {
  return mayGrant(actor, target, targetOrgType) && ADMIN_RANK[actor] > ADMIN_RANK[target];
}
