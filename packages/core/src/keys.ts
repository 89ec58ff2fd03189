import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { hashRaw } from '@node-rs/argon2';
// Algorithm is an ambient const enum in @node-rs/argon2; Argon2id is 2.
const ARGON2ID = 2;
import { base32Decode, base32Encode } from './bytes.js';
import { CoffreError } from './errors.js';
import { ed25519FromSeed, ReadKey } from './seal.js';

/**
 * Key hierarchy (docs/FORMAT.md §2).
 *
 *   master key (32 random bytes, one per customer repository)
 *     ├─ HKDF "blob-encryption" → AES-256-GCM key for chunk, tree and manifest blobs
 *     ├─ HKDF "chunk-id"        → HMAC-SHA-256 key: chunk id = HMAC(key, plaintext)
 *     ├─ HKDF "manifest-mac"    → HMAC-SHA-256 key for the snapshot manifest MAC
 *     └─ HKDF "chunker-gear"    → 1 KiB: the keyed gear table of the chunker
 *
 * The master key never leaves the agent unwrapped. The server stores key slots:
 * the master key wrapped with AES-256-GCM under a key derived from a passphrase
 * (Argon2id) or from a random recovery key (HKDF).
 */
export const MASTER_KEY_BYTES = 32;
const HKDF_SALT = Buffer.from('coffre-v1', 'utf8');

export interface Subkeys {
  readonly encryption: Buffer;
  readonly chunkId: Buffer;
  readonly manifestMac: Buffer;
  readonly gear: Int32Array;
}

function hkdf(master: Uint8Array, label: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', master, HKDF_SALT, Buffer.from(`coffre v1 ${label}`, 'utf8'), length));
}

/**
 * What a machine keeps for unattended backups in storage format version 2 (FORMAT.md §2.4):
 * enough to chunk, name, deduplicate and seal new data, nothing that decrypts stored data.
 */
export interface WriteKeys {
  readonly chunkId: Buffer;
  readonly manifestMac: Buffer;
  readonly gear: Int32Array;
  /** The customer's X25519 public read key: new blobs and manifests are sealed to it. */
  readonly readPublic: Buffer;
}

function gearOf(bytes: Buffer): Int32Array {
  const gear = new Int32Array(256);
  for (let i = 0; i < 256; i++) gear[i] = bytes.readInt32BE(i * 4);
  return gear;
}

export function deriveWriteKeys(master: Uint8Array): WriteKeys {
  const k = deriveSubkeys(master);
  return { chunkId: k.chunkId, manifestMac: k.manifestMac, gear: k.gear, readPublic: deriveReadKey(master).publicKey };
}

/** The private read key of version 2 (opens sealed blobs and manifests). */
export function deriveReadKey(master: Uint8Array): ReadKey {
  if (master.length !== MASTER_KEY_BYTES) throw new CoffreError('FORMAT', 'master key must be 32 bytes');
  return new ReadKey(hkdf(master, 'x25519-read', 32));
}

/**
 * The Ed25519 key that authorises changes to the key slots of a version-2 repository: the
 * server checks its signature against the public half recorded at initialisation, so only a
 * holder of the master key (not a machine's unattended state, not the server) can change them.
 */
export function deriveAdminKey(master: Uint8Array): ReturnType<typeof ed25519FromSeed> {
  if (master.length !== MASTER_KEY_BYTES) throw new CoffreError('FORMAT', 'master key must be 32 bytes');
  return ed25519FromSeed(hkdf(master, 'ed25519-key-admin', 32));
}

/** The gear table as raw bytes (kept by write-only machines: it is not derivable without the master key). */
export function gearBytes(gear: Int32Array): Buffer {
  const b = Buffer.alloc(1024);
  gear.forEach((v, i) => b.writeInt32BE(v, i * 4));
  return b;
}
export function gearFromBytes(b: Uint8Array): Int32Array {
  if (b.length !== 1024) throw new CoffreError('FORMAT', 'the chunker gear table has 1024 bytes');
  return gearOf(Buffer.from(b));
}

export function newMasterKey(): Buffer {
  return randomBytes(MASTER_KEY_BYTES);
}

export function deriveSubkeys(master: Uint8Array): Subkeys {
  if (master.length !== MASTER_KEY_BYTES) throw new CoffreError('FORMAT', 'master key must be 32 bytes');
  const gear = gearOf(hkdf(master, 'chunker-gear', 1024));
  return {
    encryption: hkdf(master, 'blob-encryption', 32),
    chunkId: hkdf(master, 'chunk-id', 32),
    manifestMac: hkdf(master, 'manifest-mac', 32),
    gear,
  };
}

/**
 * Argon2id cost. The default, 256 MiB and 3 passes (about 1 s on a 2-core test machine,
 * docs/SECURITY.md), is what a practice's PC affords once per command that needs it; tests
 * pass cheaper ones. Agents refuse a slot that asks for more than MAX_ARGON2 (1 GiB, 10
 * passes, 8 lanes): a slot written by the server could otherwise exhaust a machine's memory.
 */
export interface Argon2Params {
  readonly m: number; // memory, KiB
  readonly t: number; // iterations
  readonly p: number; // lanes
}
export const DEFAULT_ARGON2: Argon2Params = { m: 262144, t: 3, p: 1 };
const MIN_ARGON2: Argon2Params = { m: 8, t: 1, p: 1 };
export const MAX_ARGON2: Argon2Params = { m: 1024 * 1024, t: 10, p: 8 };

export type KeySlotKind = 'passphrase' | 'recovery';

/** A key slot as stored by the server: opaque to it, JSON-serialisable. */
export interface KeySlot {
  readonly v: 1;
  readonly id: string;
  readonly kind: KeySlotKind;
  readonly kdf:
    | { readonly alg: 'argon2id'; readonly m: number; readonly t: number; readonly p: number; readonly salt: string }
    | { readonly alg: 'hkdf-sha256'; readonly salt: string };
  readonly nonce: string; // base64, 12 bytes
  readonly wrapped: string; // base64: ciphertext (32) || tag (16)
  readonly created: string; // ISO time, informational
}

function slotAad(id: string, kind: KeySlotKind): Buffer {
  return Buffer.from(`coffre keyslot v1|${kind}|${id}`, 'utf8');
}

function wrap(kek: Buffer, master: Uint8Array, aad: Buffer): { nonce: string; wrapped: string } {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(master), c.final(), c.getAuthTag()]);
  return { nonce: nonce.toString('base64'), wrapped: ct.toString('base64') };
}

function unwrap(kek: Buffer, slot: KeySlot): Buffer | null {
  const data = Buffer.from(slot.wrapped, 'base64');
  if (data.length !== MASTER_KEY_BYTES + 16) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(slot.nonce, 'base64'));
    d.setAAD(slotAad(slot.id, slot.kind));
    d.setAuthTag(data.subarray(MASTER_KEY_BYTES));
    return Buffer.concat([d.update(data.subarray(0, MASTER_KEY_BYTES)), d.final()]);
  } catch {
    return null;
  }
}

async function argon2Kek(passphrase: string, salt: Buffer, p: Argon2Params): Promise<Buffer> {
  for (const k of ['m', 't', 'p'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < MIN_ARGON2[k] || p[k] > MAX_ARGON2[k]) {
      throw new CoffreError('FORMAT', `key slot has an unsupported Argon2 parameter ${k}=${typeof p[k] === 'number' ? p[k] : typeof p[k]}`);
    }
  }
  // Argon2's own constraints (RFC 9106 §3.1), refused as FORMAT rather than as the binding's plain Error.
  if (p.m < 8 * p.p) throw new CoffreError('FORMAT', `key slot has an unsupported Argon2 memory ${p.m} KiB for ${p.p} lanes`);
  if (salt.length < 8) throw new CoffreError('FORMAT', 'key slot has an Argon2 salt shorter than 8 bytes');
  const out = await hashRaw(passphrase.normalize('NFC'), {
    algorithm: ARGON2ID,
    memoryCost: p.m,
    timeCost: p.t,
    parallelism: p.p,
    outputLen: 32,
    salt,
  });
  return Buffer.from(out);
}

function recoveryKek(recovery: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', recovery, salt, Buffer.from('coffre v1 recovery-slot', 'utf8'), 32));
}

export async function makePassphraseSlot(master: Uint8Array, passphrase: string, params: Argon2Params = DEFAULT_ARGON2): Promise<KeySlot> {
  if (passphrase.length === 0) throw new CoffreError('BAD_REQUEST', 'the passphrase must not be empty');
  const id = randomUUID();
  const salt = randomBytes(16);
  const kek = await argon2Kek(passphrase, salt, params);
  return {
    v: 1,
    id,
    kind: 'passphrase',
    kdf: { alg: 'argon2id', m: params.m, t: params.t, p: params.p, salt: salt.toString('base64') },
    ...wrap(kek, master, slotAad(id, 'passphrase')),
    created: new Date().toISOString(),
  };
}

/** A recovery key is 32 random bytes shown to people as base32 in groups of four. */
export function newRecoveryKey(): { raw: Buffer; text: string } {
  const raw = randomBytes(32);
  return { raw, text: formatRecoveryKey(raw) };
}
export function formatRecoveryKey(raw: Buffer): string {
  return base32Encode(raw).match(/.{1,4}/g)!.join('-');
}
export function parseRecoveryKey(text: string): Buffer {
  let raw: Buffer;
  try {
    raw = base32Decode(text);
  } catch (e) {
    throw new CoffreError('WRONG_RECOVERY_KEY', `the recovery key is malformed: ${(e as Error).message}`);
  }
  if (raw.length !== 32) throw new CoffreError('WRONG_RECOVERY_KEY', 'the recovery key is malformed: wrong length');
  return raw;
}

export function makeRecoverySlot(master: Uint8Array, recovery: Buffer): KeySlot {
  const id = randomUUID();
  const salt = randomBytes(16);
  return {
    v: 1,
    id,
    kind: 'recovery',
    kdf: { alg: 'hkdf-sha256', salt: salt.toString('base64') },
    ...wrap(recoveryKek(recovery, salt), master, slotAad(id, 'recovery')),
    created: new Date().toISOString(),
  };
}

/** Slots come from the server as JSON: only well-formed ones are tried, the others skipped like unknown versions. */
function wellFormedSlot(s: unknown): s is KeySlot {
  if (typeof s !== 'object' || s === null) return false;
  const k = s as Record<string, unknown>;
  const kdf = k.kdf as Record<string, unknown> | null;
  return k.v === 1 && typeof k.id === 'string' && typeof k.nonce === 'string' && typeof k.wrapped === 'string' && typeof kdf === 'object' && kdf !== null && typeof kdf.salt === 'string';
}

/**
 * Tries every passphrase slot; throws WRONG_PASSPHRASE if none opens.
 * Slots with unknown versions are skipped, not fatal (forward compatibility).
 */
export async function openWithPassphrase(slots: readonly KeySlot[], passphrase: string): Promise<Buffer> {
  return (await openPassphraseSlot(slots, passphrase)).master;
}

/** As openWithPassphrase, also naming the slot that opened. */
export async function openPassphraseSlot(slots: readonly KeySlot[], passphrase: string): Promise<{ master: Buffer; slotId: string }> {
  const candidates = slots.filter((s) => wellFormedSlot(s) && s.kind === 'passphrase' && s.kdf.alg === 'argon2id');
  if (candidates.length === 0) throw new CoffreError('NO_KEY', 'the repository has no passphrase key slot');
  for (const s of candidates) {
    if (s.kdf.alg !== 'argon2id') continue;
    const kek = await argon2Kek(passphrase, Buffer.from(s.kdf.salt, 'base64'), s.kdf);
    const master = unwrap(kek, s);
    if (master) return { master, slotId: s.id };
  }
  throw new CoffreError('WRONG_PASSPHRASE', 'wrong passphrase: it opens none of the key slots of this repository');
}

/** True when the passphrase opens this slot (a passphrase slot of a known version). */
export async function passphraseOpens(slot: KeySlot, passphrase: string): Promise<boolean> {
  if (!wellFormedSlot(slot) || slot.kind !== 'passphrase' || slot.kdf.alg !== 'argon2id') return false;
  return unwrap(await argon2Kek(passphrase, Buffer.from(slot.kdf.salt, 'base64'), slot.kdf), slot) !== null;
}

export function openWithRecoveryKey(slots: readonly KeySlot[], recoveryText: string): Buffer {
  return openRecoverySlot(slots, recoveryText).master;
}

export function openRecoverySlot(slots: readonly KeySlot[], recoveryText: string): { master: Buffer; slotId: string } {
  const raw = parseRecoveryKey(recoveryText);
  for (const s of slots) {
    if (!wellFormedSlot(s) || s.kind !== 'recovery' || s.kdf.alg !== 'hkdf-sha256') continue;
    const master = unwrap(recoveryKek(raw, Buffer.from(s.kdf.salt, 'base64')), s);
    if (master) return { master, slotId: s.id };
  }
  throw new CoffreError('WRONG_RECOVERY_KEY', 'wrong recovery key: it opens none of the key slots of this repository');
}

export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
