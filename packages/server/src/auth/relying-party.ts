import type { FastifyRequest } from 'fastify';
import type { WebauthnCredentialsTable } from '../db/schema.js';
import { expectedOrigin } from '../http/authenticate.js';
import type { Deps } from '../http/context.js';
import type { RelyingParty, StoredCredential } from './webauthn.js';

/** The WebAuthn relying party is the console's origin (publicUrl setting, else the request's host). */
export function relyingParty(deps: Deps, req: FastifyRequest): RelyingParty {
  const origin = expectedOrigin(deps, req);
  return { id: new URL(origin).hostname, name: 'coffre', origin };
}

export function storedCredential(row: WebauthnCredentialsTable): StoredCredential {
  return {
    id: row.id,
    publicKey: Buffer.from(row.public_key, 'base64url'),
    counter: Number(row.counter),
    transports: JSON.parse(row.transports) as string[],
  };
}
