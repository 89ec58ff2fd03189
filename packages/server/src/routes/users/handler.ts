import type { FastifyRequest } from 'fastify';
import { auditRequest } from '../../audit/record.js';
import { hashPassword } from '../../auth/passwords.js';
import type { OrgRow } from '../../db/queries/orgs.js';
import { revokeUserSessions } from '../../db/queries/sessions.js';
import { createUser, findUser, listUsers, updateUser, type UserRow } from '../../db/queries/users.js';
import { presentUser } from './presenter.js';
import type { Locale, UserStatus } from '../../db/schema.js';
import { apiError } from '../../errors.js';
import { targetOrgOf, userOf, type App, type Deps } from '../../http/context.js';
import { mayGrant, mayResetCredentials, type Role } from '../../http/roles.js';
import { queueResetNotice, resetCredentials, type ResetWhat } from '../../auth/credential-reset.js';
import { newTemporaryPassword } from '../../secrets.js';
import { createUserSchema, getUserSchema, listUsersSchema, resetPasswordSchema, resetSecondFactorSchema, updateUserSchema } from './schema.js';


export function registerUserRoutes(app: App, deps: Deps): void {
  /** The target person of a /users/:userId route (the policy layer has checked its organisation). */
  async function target(req: FastifyRequest): Promise<{ user: UserRow; org: OrgRow }> {
    const user = await findUser(deps.db, (req.params as { userId: string }).userId);
    if (!user) throw apiError('userNotFound');
    return { user, org: targetOrgOf(req) };
  }

  /** Acting on another person needs the right to give their current role (separation of duties), and never on oneself. */
  function mayManage(req: FastifyRequest, user: UserRow, org: OrgRow): void {
    const p = userOf(req);
    if (user.id === p.userId) throw apiError('notOnSelf');
    if (!mayGrant(p.role, user.role, org.type)) throw apiError('roleNotGrantable');
  }

  /** A credential reset: as `mayManage`, and only from a strictly higher role (never a peer); refusals are audited. */
  async function mayReset(req: FastifyRequest, user: UserRow, org: OrgRow, action: string): Promise<void> {
    mayManage(req, user, org);
    const p = userOf(req);
    if (mayResetCredentials(p.role, user.role, org.type)) return;
    await auditRequest(deps, req, { action, outcome: 'denied', orgId: org.id, target: `user:${user.id}`, details: { reason: 'peer-role', actorRole: p.role, targetRole: user.role } });
    throw apiError('peerCredentialReset');
  }

  /** The person concerned hears of it by email (who did it, when; never the temporary password). */
  async function tellPerson(req: FastifyRequest, user: UserRow, what: ResetWhat, now: Date): Promise<void> {
    const p = userOf(req);
    const by = await findUser(deps.db, p.userId);
    await queueResetNotice(deps.db, user, what, { name: by?.name ?? p.email, email: p.email }, deps.settings.publicUrl, now, req.id);
  }

  app.get('/orgs/:orgId/users', { schema: listUsersSchema, config: { auth: 'user', action: 'users:read', tenant: 'param:orgId' } }, async (req) => {
    const users = await listUsers(deps.db, [targetOrgOf(req).id]);
    return { users: await Promise.all(users.map((u) => presentUser(deps, u))) };
  });

  app.post<{ Body: { email: string; name: string; role: Role; locale?: Locale } }>(
    '/orgs/:orgId/users',
    { schema: createUserSchema, config: { auth: 'user', action: 'users:create', tenant: 'param:orgId', reauth: true } },
    async (req, reply) => {
      const p = userOf(req);
      const org = targetOrgOf(req);
      if (!mayGrant(p.role, req.body.role, org.type)) {
        await auditRequest(deps, req, { action: 'user.create', outcome: 'denied', orgId: org.id, details: { role: req.body.role, reason: 'role-not-grantable' } });
        throw apiError('roleNotGrantable');
      }
      const temporaryPassword = newTemporaryPassword();
      const now = deps.clock().toISOString();
      const user = await createUser(
        deps.db,
        { orgId: org.id, email: req.body.email, name: req.body.name, role: req.body.role, passwordHash: await hashPassword(temporaryPassword), locale: req.body.locale ?? org.locale },
        now,
      );
      await auditRequest(deps, req, { action: 'user.create', outcome: 'success', orgId: org.id, target: `user:${user.id}`, details: { email: user.email, role: user.role } });
      void reply.code(201);
      return { user: await presentUser(deps, user), temporaryPassword };
    },
  );

  app.get('/users/:userId', { schema: getUserSchema, config: { auth: 'user', action: 'users:read', tenant: 'param:userId' } }, async (req) => {
    return presentUser(deps, (await target(req)).user);
  });

  app.patch<{ Body: { name?: string; role?: Role; status?: UserStatus; locale?: Locale } }>(
    '/users/:userId',
    { schema: updateUserSchema, config: { auth: 'user', action: 'users:update', tenant: 'param:userId', reauth: true } },
    async (req) => {
      const p = userOf(req);
      const { user, org } = await target(req);
      mayManage(req, user, org);
      const b = req.body;
      if (b.role !== undefined && !mayGrant(p.role, b.role, org.type)) {
        await auditRequest(deps, req, { action: 'user.role.change', outcome: 'denied', orgId: org.id, target: `user:${user.id}`, details: { from: user.role, to: b.role } });
        throw apiError('roleNotGrantable');
      }
      const now = deps.clock().toISOString();
      const updated = await updateUser(
        deps.db,
        user.id,
        { ...(b.name !== undefined ? { name: b.name } : {}), ...(b.role !== undefined ? { role: b.role } : {}), ...(b.status !== undefined ? { status: b.status } : {}), ...(b.locale !== undefined ? { locale: b.locale } : {}) },
        now,
      );
      if (b.status === 'disabled' || (b.role !== undefined && b.role !== user.role)) await revokeUserSessions(deps.db, user.id, now);
      if (b.role !== undefined && b.role !== user.role) {
        await auditRequest(deps, req, { action: 'user.role.change', outcome: 'success', orgId: org.id, target: `user:${user.id}`, details: { from: user.role, to: b.role } });
      }
      if (b.status !== undefined && b.status !== user.status) {
        await auditRequest(deps, req, { action: b.status === 'disabled' ? 'user.disable' : 'user.enable', outcome: 'success', orgId: org.id, target: `user:${user.id}` });
      }
      if (b.name !== undefined || b.locale !== undefined) {
        await auditRequest(deps, req, { action: 'user.update', outcome: 'success', orgId: org.id, target: `user:${user.id}`, details: { fields: Object.keys(b).filter((k) => k === 'name' || k === 'locale') } });
      }
      return presentUser(deps, updated);
    },
  );

  for (const [what, path, schema] of [
    ['second-factor', '/users/:userId/reset-second-factor', resetSecondFactorSchema],
    ['password', '/users/:userId/reset-password', resetPasswordSchema],
  ] as const) {
    const action = what === 'password' ? 'user.password.reset' : 'user.second-factor.reset';
    app.post(path, { schema, config: { auth: 'user', action: 'users:reset-credentials', tenant: 'param:userId', reauth: true } }, async (req) => {
      const { user, org } = await target(req);
      await mayReset(req, user, org, action);
      const now = deps.clock();
      const { temporaryPassword, sessionsEnded } = await resetCredentials(deps.db, user, what, now);
      await auditRequest(deps, req, { action, outcome: 'success', orgId: org.id, target: `user:${user.id}`, details: { sessionsEnded } });
      await tellPerson(req, user, what, now);
      const presented = await presentUser(deps, (await findUser(deps.db, user.id))!);
      return temporaryPassword === null ? presented : { user: presented, temporaryPassword };
    });
  }
}
