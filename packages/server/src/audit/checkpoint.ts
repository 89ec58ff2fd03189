import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './chain.js';

/**
 * Signed checkpoints of the audit chain (ADR 0011). A checkpoint is an Ed25519 signature,
 * by a key the database and the data directory do not hold, over the {seq, hash} of an
 * entry: since every hash binds all the entries before it, it authenticates the whole chain
 * up to that entry. Someone who can write the database and the data directory can still
 * recompute every hash, but not these signatures. A purge marker ('purge') signs the
 * retention anchor with the cut-off and the retention period it respected.
 *
 * The signed message, byte for byte (an auditor can re-implement it):
 *
 *     "coffre-audit-checkpoint-v1" LF JCS([installation, kind, seq, hash, time, purgeBefore, retentionDays])
 *
 * (JCS as in chain.ts's canonicalJson; `purgeBefore` and `retentionDays` are null for a
 * 'checkpoint'.) Pure: node:crypto only.
 */

export const CHECKPOINT_VERSION = 'coffre-audit-checkpoint-v1';
export const CHECKPOINT_KINDS = ['checkpoint', 'purge'] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

export interface CheckpointBody {
  readonly installation: string;
  readonly kind: CheckpointKind;
  readonly seq: number;
  readonly hash: string;
  /** When it was signed (ISO UTC). */
  readonly time: string;
  /** A purge marker: entries older than this were removed… */
  readonly purgeBefore: string | null;
  /** …respecting this retention period (days). */
  readonly retentionDays: number | null;
}

export interface SignedCheckpoint extends CheckpointBody {
  /** SHA-256 (hex) of the raw public key that signed it. */
  readonly keyId: string;
  /** Ed25519 signature, base64. */
  readonly signature: string;
}

export function checkpointMessage(b: CheckpointBody): Buffer {
  const fields = [b.installation, b.kind, b.seq, b.hash, b.time, b.purgeBefore, b.retentionDays];
  return Buffer.from(`${CHECKPOINT_VERSION}\n${canonicalJson(fields)}`, 'utf8');
}

/** The raw 32-byte Ed25519 public key's SHA-256, hex: how keys are named in messages and rows. */
export function auditKeyId(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return createHash('sha256').update(raw).digest('hex');
}

/** A public key to check signatures with: its id and the key. */
export interface AuditPublicKey {
  readonly keyId: string;
  readonly key: KeyObject;
  /** SPKI PEM, as published. */
  readonly pem: string;
}

export class AuditKeyError extends Error {
  override readonly name = 'AuditKeyError';
}

/** Parses a published audit public key (SPKI PEM, what `audit public-key` prints). */
export function parseAuditPublicKey(pem: string, where = 'the audit public key'): AuditPublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new AuditKeyError(`${where} is not a PEM public key (${(err as Error).message})`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(`${where} is a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return { keyId: auditKeyId(key), key, pem: key.export({ format: 'pem', type: 'spki' }).toString() };
}

export function signCheckpoint(body: CheckpointBody, privateKey: KeyObject, keyId: string): SignedCheckpoint {
  return { ...body, keyId, signature: sign(null, checkpointMessage(body), privateKey).toString('base64') };
}

/**
 * Why `cp` is not a valid signature of `installation`'s chain by one of `keys`, or null.
 * (Whether its {seq, hash} is in the chain is the caller's check.)
 */
export function checkpointProblem(cp: SignedCheckpoint, keys: ReadonlyMap<string, AuditPublicKey>, installation: string): string | null {
  const what = `the ${cp.kind === 'purge' ? 'purge marker' : 'checkpoint'} at seq ${cp.seq}`;
  if (cp.installation !== installation) return `${what} is of another installation (${cp.installation})`;
  const k = keys.get(cp.keyId);
  if (!k) return `${what} is signed by key ${cp.keyId.slice(0, 16)}…, not by ${[...keys.keys()].map((id) => `${id.slice(0, 16)}…`).join(' or ') || 'any known key'}`;
  let ok = false;
  try {
    ok = verify(null, checkpointMessage(cp), k.key, Buffer.from(cp.signature, 'base64'));
  } catch {
    ok = false;
  }
  return ok ? null : `${what} has an invalid signature (rewritten or forged)`;
}

const DAY_MS = 86_400_000;

/** Why a purge marker removed entries younger than the retention period it states (or than `minRetentionDays`), or null. */
export function purgeMarkerProblem(m: SignedCheckpoint, minRetentionDays: number): string | null {
  if (m.kind !== 'purge' || m.purgeBefore === null || m.retentionDays === null) return `the purge marker at seq ${m.seq} is not a purge marker`;
  if (m.retentionDays < minRetentionDays) return `the purge at seq ${m.seq} used a retention of ${m.retentionDays} days, shorter than the ${minRetentionDays} in force`;
  if (Date.parse(m.purgeBefore) > Date.parse(m.time) - m.retentionDays * DAY_MS) return `the purge at seq ${m.seq} removed entries younger than its ${m.retentionDays}-day retention period`;
  return null;
}
