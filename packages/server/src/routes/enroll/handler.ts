import type { EnrollRequest, EnrollResponse } from '@coffre/core';
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
    const { machine, customerName } = await enrollMachine(deps.db, {
      tokenHash: hashSecret(b.token),
      credentialHash: hashSecret(credential),
      now: isoNow(deps.clock),
      name: b.machineName,
      hostname: b.hostname,
      os: b.os,
      agentVersion: b.agentVersion,
    });
    return { machineId: machine.id, machineName: machine.name, customerId: machine.customer_id, customerName, credential };
  });
}
