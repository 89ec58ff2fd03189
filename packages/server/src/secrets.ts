import { createHash, randomBytes } from 'node:crypto';

/**
 * Bearer secrets. Enrollment tokens (`cfe_`) and machine credentials (`cfm_`) are 32
 * random bytes, base64url. Only their SHA-256 is stored: a stolen database does not
 * yield a usable credential, and a plain hash suffices because the input has 256 bits
 * of entropy (no dictionary to attack, unlike passwords).
 */
export const ENROLL_TOKEN_PREFIX = 'cfe_';
export const CREDENTIAL_PREFIX = 'cfm_';
const SECRET_BODY = /^[A-Za-z0-9_-]{43}$/;

function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}
export const newEnrollToken = (): string => newSecret(ENROLL_TOKEN_PREFIX);
export const newCredential = (): string => newSecret(CREDENTIAL_PREFIX);

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function looksLikeSecret(s: string, prefix: string): boolean {
  return s.startsWith(prefix) && SECRET_BODY.test(s.slice(prefix.length));
}
