import type { FastifyRequest } from 'fastify';
import { findMachineByCredentialHash, touchMachine } from '../db/queries/machines.js';
import { apiError } from '../errors.js';
import { CREDENTIAL_PREFIX, hashSecret, looksLikeSecret } from '../secrets.js';
import type { Deps } from './context.js';

/** last_seen_at is written at most this often per machine (a write per request would serialise everything on SQLite). */
export const LAST_SEEN_INTERVAL_MS = 60_000;

/**
 * onRequest hook: runs before the body is read, so an unauthenticated client cannot
 * make the server buffer a 256 MiB upload. Missing, malformed, unknown and revoked
 * credentials all get the same answer.
 */
export function authenticate(deps: Deps) {
  return async (req: FastifyRequest): Promise<void> => {
    if (req.routeOptions.config.auth === 'none' || req.is404) return;
    const match = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '');
    const credential = match?.[1];
    if (credential === undefined || !looksLikeSecret(credential, CREDENTIAL_PREFIX)) throw apiError('unauthenticated');
    const machine = await findMachineByCredentialHash(deps.db, hashSecret(credential));
    if (!machine || machine.revoked_at !== null) throw apiError('unauthenticated');
    req.principal = { kind: 'machine', machineId: machine.id, machineName: machine.name, customerId: machine.customer_id };
    const now = deps.clock();
    if (machine.last_seen_at === null || now.getTime() - Date.parse(machine.last_seen_at) >= LAST_SEEN_INTERVAL_MS) {
      await touchMachine(deps.db, machine.id, now, LAST_SEEN_INTERVAL_MS);
    }
  };
}
