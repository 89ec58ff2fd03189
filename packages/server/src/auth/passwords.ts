import { randomBytes } from 'node:crypto';
import { hash, parseOptions, verify } from '@node-rs/argon2';
import type { Argon2Params } from '@coffre/core';

// Algorithm and Version are ambient const enums in @node-rs/argon2 (unusable under isolatedModules).
const ARGON2ID = 2;
const VERSION_0X13 = 1;
const OUTPUT_BYTES = 32;

/** argon2 itself requires m ≥ 8·p; the upper bounds only catch typos (a 4 GiB hash per login). */
const MIN: Argon2Params = { m: 8, t: 1, p: 1 };
const MAX: Argon2Params = { m: 4 * 1024 * 1024, t: 20, p: 16 };

/**
 * Argon2id cost for account passwords: OWASP's 64 MiB, 3 passes, 1 lane. Lower than key
 * slots (256 MiB): a server hashes on every sign-in of everyone, a key slot guards data
 * offline against unlimited guessing, and the server's throttle limits online guesses. Tests lower it with COFFRE_TEST_ARGON2="m,t,p", the variable and
 * format the agent honours; it is read on every call so a test can change it, and a
 * malformed value throws rather than silently falling back to some other cost.
 */
export const PASSWORD_ARGON2: Argon2Params = { m: 65536, t: 3, p: 1 };

export function argon2Params(): Argon2Params {
  const raw = process.env.COFFRE_TEST_ARGON2;
  if (!raw) return PASSWORD_ARGON2;
  const parts = raw.split(',').map(Number);
  const [m, t, p] = parts;
  const params = { m: m!, t: t!, p: p! };
  const ok =
    parts.length === 3 &&
    (['m', 't', 'p'] as const).every((k) => Number.isInteger(params[k]) && params[k] >= MIN[k] && params[k] <= MAX[k]) &&
    params.m >= 8 * params.p;
  if (!ok) throw new Error(`COFFRE_TEST_ARGON2 must be "m,t,p" (KiB, passes, lanes; m ≥ 8·p), not ${JSON.stringify(raw)}`);
  return params;
}

/** NFC so that the same password typed on systems that compose accents differently still matches (as in core's key slots). */
function encode(pw: string): string {
  return pw.normalize('NFC');
}

/** A PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash) with a fresh 16-byte salt. */
export async function hashPassword(pw: string): Promise<string> {
  const { m, t, p } = argon2Params();
  return hash(encode(pw), { algorithm: ARGON2ID, memoryCost: m, timeCost: t, parallelism: p, outputLen: OUTPUT_BYTES });
}

/** False for a wrong password and for a stored hash that cannot be parsed: a login never fails with an exception. */
export async function verifyPassword(stored: string, pw: string): Promise<boolean> {
  try {
    return await verify(stored, encode(pw));
  } catch {
    return false;
  }
}

/** Keyed by the parameters so that the dummy always costs what a real hash made now costs. */
const dummyHashes = new Map<string, Promise<string>>();

/**
 * Spends the time of one verification, for logins naming an unknown account: without it,
 * the response time tells which emails have an account. The dummy hash is of a random
 * password, made on first use rather than at start-up (where it would slow every CLI run).
 */
export async function dummyVerify(pw: string): Promise<void> {
  const { m, t, p } = argon2Params();
  const key = `${m},${t},${p}`;
  let dummy = dummyHashes.get(key);
  if (!dummy) {
    dummy = hashPassword(randomBytes(32).toString('base64url'));
    dummyHashes.set(key, dummy);
    dummy.catch(() => dummyHashes.delete(key));
  }
  await verifyPassword(await dummy, pw);
}

/** True when `stored` was not made with the current algorithm and cost (or cannot be parsed): rehash it after the next successful login. */
export function needsRehash(stored: string): boolean {
  const { m, t, p } = argon2Params();
  try {
    const o = parseOptions(stored);
    return o.algorithm !== ARGON2ID || o.version !== VERSION_0X13 || o.memoryCost !== m || o.timeCost !== t || o.parallelism !== p || o.outputLen !== OUTPUT_BYTES;
  } catch {
    return true;
  }
}
