import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { CustomerMachineListResponse, MachineListResponse } from '@coffre/core';
import { graceMs } from '../../observatory/alerts.js';
import { machineStates } from '../../observatory/machine-states.js';
import { auditRequest } from '../../audit/record.js';
import { createEnrollToken, findMachine, listMachines, revokeMachineById } from '../../db/queries/machines.js';
import type { OrgRow } from '../../db/queries/orgs.js';
import { apiError } from '../../errors.js';
import { expectedOrigin } from '../../http/authenticate.js';
import { machineOf, targetOrgOf, userOf, type App, type Deps } from '../../http/context.js';
import { hashSecret, newEnrollToken } from '../../secrets.js';
import type { CustomerId, MachineId } from '../../types.js';
import { presentMachine } from './presenter.js';
import { createEnrollTokenSchema, listMachinesSchema, orgMachinesSchema, reissueMachineSchema, revokeMachineSchema } from './schema.js';

export function registerMachineRoutes(app: App, deps: Deps): void {
  // Agents: the machines of their own customer.
  app.get('/machines', { schema: listMachinesSchema, config: { action: 'machines:list' } }, async (req): Promise<MachineListResponse> => {
    const rows = await listMachines(deps.db, machineOf(req).customerId);
    return { machines: rows.map(presentMachine) };
  });

  /** Issues a one-time token; only its hash is stored. The command shown is exactly what to paste on the machine. `replaced`: earlier re-issue tokens of the machine now void. */
  async function issueToken(req: FastifyRequest, org: OrgRow, ttlHours: number | undefined, reissue?: MachineId) {
    const now = deps.clock();
    const expiresAt = new Date(now.getTime() + (ttlHours ?? deps.settings.enrollTokenTtlHours) * 3_600_000).toISOString();
    const token = newEnrollToken();
    const replaced = await createEnrollToken(deps.db, {
      id: randomUUID(),
      customerId: org.id as string as CustomerId,
      tokenHash: hashSecret(token),
      now: now.toISOString(),
      expiresAt,
      createdBy: userOf(req).userId,
      ...(reissue ? { reissueMachineId: reissue } : {}),
    });
    const server = expectedOrigin(deps, req);
    return { issued: { token, expiresAt, command: `coffre enroll --server ${server} --token ${token} --fingerprint ${deps.fingerprint}` }, replaced };
  }

  function customerOnly(org: OrgRow): void {
    if (org.type !== 'customer') throw apiError('customerNotFound');
  }

  // People: machines of the customers they look after.
  app.get('/orgs/:orgId/machines', { schema: orgMachinesSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } }, async (req) => {
    const org = targetOrgOf(req);
    if (org.type !== 'customer') return { machines: [] };
    const states = await machineStates(deps.db, [org.id], deps.clock(), graceMs(deps));
    return {
      machines: states.map(({ machine: m, jobs, lastSuccessAt, status, lastRestoreTest }) => ({
        ...presentMachine(m),
        os: m.os,
        agentVersion: m.agent_version,
        credentialIssuedAt: m.credential_issued_at,
        revokedAt: m.revoked_at,
        jobs,
        scheduleReportedAt: m.schedule_reported_at,
        status: status.status,
        lastSuccessAt,
        nextExpectedAt: status.nextExpectedAt?.toISOString() ?? null,
        lastHeartbeatAt: m.last_heartbeat_at,
        lastRestoreTest,
      })),
    } satisfies CustomerMachineListResponse;
  });

  app.post<{ Body: { ttlHours?: number } | undefined }>(
    '/orgs/:orgId/enroll-tokens',
    { schema: createEnrollTokenSchema, config: { auth: 'user', action: 'machines:enroll', tenant: 'param:orgId', reauth: true } },
    async (req, reply) => {
      const org = targetOrgOf(req);
      customerOnly(org);
      const { issued } = await issueToken(req, org, req.body?.ttlHours);
      await auditRequest(deps, req, { action: 'machine.enroll-token.create', outcome: 'success', orgId: org.id, details: { expiresAt: issued.expiresAt } });
      void reply.code(201);
      return issued;
    },
  );

  app.post('/machines/:machineId/revoke', { schema: revokeMachineSchema, config: { auth: 'user', action: 'machines:revoke', tenant: 'param:machineId', reauth: true } }, async (req) => {
    const org = targetOrgOf(req);
    const m = await revokeMachineById(deps.db, (req.params as { machineId: MachineId }).machineId, deps.clock().toISOString());
    if (!m) throw apiError('machineNotFound');
    await auditRequest(deps, req, { action: 'machine.credential.revoke', outcome: 'success', orgId: org.id, target: `machine:${m.id}`, details: { name: m.name } });
    return presentMachine(m);
  });

  app.post<{ Body: { ttlHours?: number } | undefined }>(
    '/machines/:machineId/reissue',
    { schema: reissueMachineSchema, config: { auth: 'user', action: 'machines:revoke', tenant: 'param:machineId', reauth: true } },
    async (req) => {
      const org = targetOrgOf(req);
      const id = (req.params as { machineId: MachineId }).machineId;
      const before = await findMachine(deps.db, id);
      if (!before) throw apiError('machineNotFound');
      const m = (await revokeMachineById(deps.db, id, deps.clock().toISOString()))!;
      const { issued, replaced } = await issueToken(req, org, req.body?.ttlHours, id);
      await auditRequest(deps, req, { action: 'machine.credential.reissue', outcome: 'success', orgId: org.id, target: `machine:${m.id}`, details: { name: m.name, expiresAt: issued.expiresAt, earlierTokensInvalidated: replaced } });
      return { machine: presentMachine(m), ...issued };
    },
  );
}
