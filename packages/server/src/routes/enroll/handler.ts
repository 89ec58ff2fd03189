import type { EnrollRequest, EnrollResponse } from '@coffre/core';
import { auditRequest } from '../../audit/record.js';
import { enrollMachine } from '../../db/queries/machines.js';
import { apiError } from '../../errors.js';
import type { App, Deps } from '../../http/context.js';
import { ENROLL_TOKEN_PREFIX, hashSecret, looksLikeSecret, newCredential } from '../../secrets.js';
import { isoNow } from '../../types.js';
import { enrollSchema } from './schema.js';

/** POST /enroll — public: the one-time token is the authentication. */
export function registerEnrollRoutes(app: App, deps: Deps): void {
  app.post<{ Body: EnrollRequest }>('/enroll', { schema: enrollSchema, config: { auth: 'none' } }, async (req): Promise<EnrollResponse> => {
    const b = req.body;
    if (!looksLikeSecret(b.token, ENROLL_TOKEN_PREFIX)) throw apiError('badEnrollToken');
    const credential = newCredential();
    const enrolled = await enrollMachine(deps.db, {
      tokenHash: hashSecret(b.token),
      credentialHash: hashSecret(credential),
      now: isoNow(deps.clock),
      name: b.machineName,
      hostname: b.hostname,
      os: b.os,
      agentVersion: b.agentVersion,
    }).catch(async (err: unknown) => {
      await auditRequest(deps, req, { action: 'machine.enroll', outcome: 'failure', actorLabel: b.machineName, details: { reason: (err as Error).message } });
      throw err;
    });
    const { machine, customerName } = enrolled;
    await deps.audit.append({
      actorType: 'machine',
      actorId: machine.id,
      actorLabel: machine.name,
      orgId: machine.customer_id,
      action: enrolled.reissued ? 'machine.credential.issue' : 'machine.enroll',
      target: `machine:${machine.id}`,
      ip: req.ip,
      userAgent: req.headers['user-agent']?.slice(0, 400) ?? null,
      requestId: req.id,
      outcome: 'success',
      details: { hostname: machine.hostname, agentVersion: machine.agent_version, reissued: enrolled.reissued },
    });
    return { machineId: machine.id, machineName: machine.name, customerId: machine.customer_id, customerName, credential };
  });
}
