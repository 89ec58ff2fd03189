import { createHash, randomBytes, randomInt } from 'node:crypto';

/**
 * Bearer secrets. Enrollment tokens (`cfe_`) and machine credentials (`cfm_`) are 32
 * random bytes, base64url. Only their SHA-256 is stored: a stolen database does not
 * yield a usable credential, and a plain hash suffices because the input has 256 bits
 * of entropy (no dictionary to attack, unlike passwords).
 */
export const ENROLL_TOKEN_PREFIX = 'cfe_';
export const CREDENTIAL_PREFIX = 'cfm_';
/** Replication: a one-time join token (`cfj_`) and a replica's read-only credential (`cfr_`). */
export const REPLICATION_TOKEN_PREFIX = 'cfj_';
export const REPLICATION_CREDENTIAL_PREFIX = 'cfr_';
const SECRET_BODY = /^[A-Za-z0-9_-]{43}$/;

function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}
export const newEnrollToken = (): string => newSecret(ENROLL_TOKEN_PREFIX);
export const newCredential = (): string => newSecret(CREDENTIAL_PREFIX);
export const newReplicationToken = (): string => newSecret(REPLICATION_TOKEN_PREFIX);
export const newReplicationCredential = (): string => newSecret(REPLICATION_CREDENTIAL_PREFIX);

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function looksLikeSecret(s: string, prefix: string): boolean {
  return s.startsWith(prefix) && SECRET_BODY.test(s.slice(prefix.length));
}

/** Session cookies (`cfs_`): the same shape; only their SHA-256 is stored. */
export const SESSION_TOKEN_PREFIX = 'cfs_';
export const newSessionToken = (): string => newSecret(SESSION_TOKEN_PREFIX);

const TEMP_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/**
 * A temporary password for a new or reset account: 20 characters from an unambiguous
 * alphabet in groups of 5 (≈ 99 bits). Shown once; the person must replace it at first sign-in.
 */
export function newTemporaryPassword(): string {
  const groups: string[] = [];
  for (let g = 0; g < 4; g++) {
    let group = '';
    for (let i = 0; i < 5; i++) group += TEMP_ALPHABET[randomInt(TEMP_ALPHABET.length)];
    groups.push(group);
  }
  return groups.join('-');
}
