import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ChunkId, SnapshotId } from './bytes.js';
import { isChunkId } from './bytes.js';
import { CoffreError } from './errors.js';
import { newSealSession, type ReadKey } from './seal.js';

/**
 * Snapshot manifest (docs/FORMAT.md §7): a clear part the server can act on (which
 * chunks to keep, which machine, parent, logical size), an encrypted part only the key
 * holder reads (root tree, paths, host, statistics), and a MAC over both.
 */
export const MANIFEST_VERSION = 1;
/** Storage format 2: the secret part is sealed to the customer's public read key. */
export const MANIFEST_VERSION_SEALED = 2;

export interface SnapshotStats {
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly bytes: number; // logical bytes of file contents
  readonly newFiles: number;
  readonly changedFiles: number;
  readonly unchangedFiles: number;
  readonly addedChunks: number;
  readonly addedBytes: number; // stored (encrypted) bytes uploaded
  readonly skipped: number; // unreadable or special files
  readonly durationMs: number;
}

/** The encrypted part: nothing here is ever visible to the server. */
export interface ManifestSecret {
  readonly v: 1;
  readonly root: ChunkId;
  readonly hostname: string;
  readonly paths: readonly string[];
  readonly tags: readonly string[];
  readonly clientTime: string;
  readonly stats: SnapshotStats;
  readonly agentVersion: string;
}

/** What the agent sends to commit a snapshot. */
export interface ManifestUpload {
  readonly v: 1 | 2;
  readonly id: SnapshotId;
  readonly parent: SnapshotId | null;
  /** SHA-256 (hex) of the sorted, concatenated raw ids of every referenced chunk. */
  readonly refsSha256: string;
  readonly refCount: number;
  readonly logicalSize: number;
  /**
   * AES-256-GCM of the JSON ManifestSecret, base64: v1 nonce || ct || tag under the blob key;
   * v2 E || nonce || ct || tag under the session key sealed to the read key (FORMAT.md §7.1).
   */
  readonly secret: string;
  /** HMAC-SHA-256 (hex) with the manifest-mac key over macInput(...). */
  readonly mac: string;
}

/** Sorted unique raw ids, concatenated: the exact bytes the agent uploads as the ref list. */
export function encodeRefs(ids: Iterable<ChunkId>): Buffer {
  const sorted = [...new Set(ids)].sort();
  const out = Buffer.allocUnsafe(sorted.length * 32);
  sorted.forEach((id, i) => out.write(id, i * 32, 'hex'));
  return out;
}

export function decodeRefs(buf: Uint8Array): ChunkId[] {
  if (buf.length % 32 !== 0) throw new CoffreError('FORMAT', 'reference list length is not a multiple of 32');
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ChunkId[] = [];
  for (let i = 0; i < b.length; i += 32) out.push(b.toString('hex', i, i + 32) as ChunkId);
  for (let i = 1; i < out.length; i++) {
    if (out[i - 1]! >= out[i]!) throw new CoffreError('FORMAT', 'reference list is not sorted and unique');
  }
  return out;
}

function secretAad(id: SnapshotId, v: number): Buffer {
  return Buffer.from(`coffre manifest v${v}|${id}`, 'utf8');
}

function macInput(m: Omit<ManifestUpload, 'mac'>, machineId: string): Buffer {
  // Fixed field order: this string is the MAC's definition (FORMAT.md §7.3).
  return Buffer.from(
    [m.v === MANIFEST_VERSION_SEALED ? 'coffre manifest mac v2' : 'coffre manifest mac v1', m.id, machineId, m.parent ?? '', m.refsSha256, String(m.refCount), String(m.logicalSize), m.secret].join('\n'),
    'utf8',
  );
}

/**
 * Seals a manifest. With `readPublic` (storage format 2) the secret part is sealed to the
 * customer's public read key and the writer cannot open it again; with `encryption`
 * (format 1) it is encrypted with the blob key.
 */
export function sealManifest(
  keys: { encryption?: Buffer | undefined; readPublic?: Buffer | undefined; manifestMac: Buffer },
  args: { id: SnapshotId; machineId: string; parent: SnapshotId | null; refs: Buffer; logicalSize: number; secret: ManifestSecret },
): ManifestUpload {
  const nonce = randomBytes(12);
  const session = keys.readPublic ? newSealSession(keys.readPublic) : null;
  const key = session ? session.key : keys.encryption;
  if (!key) throw new CoffreError('NO_KEY', 'no key to seal the manifest with');
  const v = session ? MANIFEST_VERSION_SEALED : MANIFEST_VERSION;
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(secretAad(args.id, v));
  const ct = Buffer.concat([...(session ? [session.ephemeral] : []), nonce, c.update(JSON.stringify(args.secret), 'utf8'), c.final(), c.getAuthTag()]);
  const base = {
    v: v as 1 | 2,
    id: args.id,
    parent: args.parent,
    refsSha256: createHash('sha256').update(args.refs).digest('hex'),
    refCount: args.refs.length / 32,
    logicalSize: args.logicalSize,
    secret: ct.toString('base64'),
  };
  const mac = createHmac('sha256', keys.manifestMac).update(macInput(base, args.machineId)).digest('hex');
  return { ...base, mac };
}

/** Checks the MAC (any holder of the write keys can): INTEGRITY on a mismatch, FORMAT when malformed. */
export function checkManifestMac(manifestMac: Buffer, m: ManifestUpload, machineId: string): void {
  if (typeof m !== 'object' || m === null) throw new CoffreError('FORMAT', 'malformed manifest');
  if (m.v !== MANIFEST_VERSION && m.v !== MANIFEST_VERSION_SEALED) throw new CoffreError('FORMAT', `unsupported manifest version ${typeof m.v === 'number' ? m.v : typeof m.v}`);
  // The MAC input is made of these: an object there (even {"toString":0}) must not reach String().
  if (
    typeof m.id !== 'string' ||
    typeof m.secret !== 'string' ||
    (m.parent !== null && typeof m.parent !== 'string') ||
    typeof m.refsSha256 !== 'string' ||
    typeof m.refCount !== 'number' ||
    typeof m.logicalSize !== 'number'
  ) {
    throw new CoffreError('FORMAT', 'malformed manifest');
  }
  const expected = createHmac('sha256', manifestMac).update(macInput(m, machineId)).digest();
  const got = Buffer.from(typeof m.mac === 'string' ? m.mac : '', 'hex');
  if (got.length !== 32 || !timingSafeEqual(expected, got)) {
    throw new CoffreError('INTEGRITY', `snapshot ${m.id.slice(0, 8)}: manifest MAC mismatch (tampered, or not made with this repository's key)`);
  }
}

/** Checks the MAC and decrypts the secret part. Throws INTEGRITY on any mismatch, NO_KEY without the key. */
export function openManifest(keys: { encryption?: Buffer | undefined; read?: ReadKey | undefined; manifestMac: Buffer }, m: ManifestUpload, machineId: string): ManifestSecret {
  checkManifestMac(keys.manifestMac, m, machineId);
  const raw = Buffer.from(m.secret, 'base64');
  const sealed = m.v === MANIFEST_VERSION_SEALED;
  const head = sealed ? 32 : 0;
  if (raw.length < head + 12 + 16) throw new CoffreError('INTEGRITY', `snapshot ${m.id.slice(0, 8)}: manifest does not decrypt`);
  const key = sealed ? keys.read?.sessionKey(raw.subarray(0, 32)) : keys.encryption;
  if (!key) throw new CoffreError('NO_KEY', WRITE_ONLY_MANIFEST);
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(head, head + 12));
    d.setAAD(secretAad(m.id, m.v));
    d.setAuthTag(raw.subarray(raw.length - 16));
    plain = Buffer.concat([d.update(raw.subarray(head + 12, raw.length - 16)), d.final()]);
  } catch {
    throw new CoffreError('INTEGRITY', `snapshot ${m.id.slice(0, 8)}: manifest does not decrypt`);
  }
  let s: Partial<ManifestSecret> | null = null;
  try {
    s = JSON.parse(plain.toString('utf8')) as Partial<ManifestSecret> | null;
  } catch {
    // not JSON: malformed, below
  }
  if (typeof s !== 'object' || s === null || s.v !== 1 || !isChunkId(s.root)) throw new CoffreError('FORMAT', `snapshot ${m.id.slice(0, 8)}: malformed manifest`);
  return s as ManifestSecret;
}

const WRITE_ONLY_MANIFEST =
  'this machine keeps only what it needs to make backups: reading a snapshot needs the passphrase (COFFRE_PASSPHRASE, --passphrase-file, a prompt) or the recovery key (COFFRE_RECOVERY_KEY)';

export function newSnapshotId(): SnapshotId {
  return randomBytes(16).toString('hex') as SnapshotId;
}
