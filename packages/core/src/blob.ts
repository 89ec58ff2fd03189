import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ChunkId } from './bytes.js';
import { CoffreError } from './errors.js';
import type { ReadKey, SealSession } from './seal.js';

/**
 * Encrypted blob (docs/FORMAT.md §4), used for file chunks, trees and nothing else:
 *
 *   offset 0  u8   version = 1
 *          1  u8   flags: bit 0 = payload is a zstd frame; other bits must be 0
 *          2  12B  AES-256-GCM nonce (random)
 *         14  …    ciphertext of the payload
 *        end-16 16B GCM tag
 *   associated data = "coffre blob v1" || chunk id (32 bytes) || byte 0..1 of the blob
 *
 * Version 2 (storage format 2, write-only machines) inserts the writer's 32-byte ephemeral
 * X25519 public key after the flags; the GCM key is the session key sealed to the customer's
 * read key (seal.ts), and the associated data is "coffre blob v2" || id || version || flags || E.
 *
 * The chunk id is HMAC-SHA-256(chunk-id key, plaintext). Binding it as associated data
 * means a blob moved under another id fails authentication, and the reader re-computes
 * the HMAC of the plaintext as a second check.
 */
export const BLOB_VERSION = 1;
export const BLOB_VERSION_SEALED = 2;
export const BLOB_OVERHEAD = 2 + 12 + 16;
export const BLOB_OVERHEAD_SEALED = 2 + 32 + 12 + 16;
export const FLAG_ZSTD = 1;
const AAD_PREFIX = Buffer.from('coffre blob v1', 'utf8');
const AAD_PREFIX_V2 = Buffer.from('coffre blob v2', 'utf8');

/** The message a reader without the read key gets: this machine can only write. */
export const WRITE_ONLY_MESSAGE =
  'this machine keeps only what it needs to make backups: reading stored data needs the passphrase (COFFRE_PASSPHRASE, --passphrase-file, a prompt) or the recovery key (COFFRE_RECOVERY_KEY)';

// The low-level binding lets us compress into a reused buffer and decompress into one
// of exactly the declared size (bounded decompression) without the convenience layer.
interface ZstdBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  getFrameContentSize(frame: Uint8Array): number | null;
  findFrameCompressedSize(frame: Uint8Array): number;
  compressBound(n: number): number;
}
const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as ZstdBinding;

export function chunkId(idKey: Buffer, data: Uint8Array): ChunkId {
  return createHmac('sha256', idKey).update(data).digest('hex') as ChunkId;
}

function aad(id: ChunkId, version: number, flags: number, ephemeral?: Uint8Array): Buffer {
  const prefix = ephemeral ? AAD_PREFIX_V2 : AAD_PREFIX;
  const b = Buffer.allocUnsafe(prefix.length + 32 + 2 + (ephemeral ? 32 : 0));
  prefix.copy(b, 0);
  b.write(id, prefix.length, 'hex');
  b[prefix.length + 32] = version;
  b[prefix.length + 33] = flags;
  if (ephemeral) b.set(ephemeral, prefix.length + 34);
  return b;
}

/**
 * The keys a codec may hold: `v1` (the version-1 blob key: reads and writes version 1),
 * `seal` (a writing session: writes version 2), `read` (the private read key: reads version 2).
 */
export interface BlobKeys {
  readonly v1?: Buffer | undefined;
  readonly seal?: SealSession | undefined;
  readonly read?: ReadKey | undefined;
}

export interface EncodeOptions {
  /** zstd level; 0 disables compression. */
  readonly level: number;
}

export class BlobCodec {
  private readonly keys: BlobKeys;
  private readonly cctx = new zstd.CCtx();
  private readonly dctx = new zstd.DCtx();
  private scratch: Buffer = Buffer.alloc(0);

  /** A Buffer is the version-1 blob key (reads and writes version 1). */
  constructor(keys: Buffer | BlobKeys) {
    this.keys = Buffer.isBuffer(keys) ? { v1: keys } : keys;
  }

  /** The version new blobs get: 2 when a sealing session is open. */
  get writeVersion(): number {
    return this.keys.seal ? BLOB_VERSION_SEALED : BLOB_VERSION;
  }

  private nonces: Buffer = Buffer.alloc(0);
  private noncePos = 0;

  /** Random 96-bit nonces, drawn from the CSPRNG 4,096 at a time (one call per blob is costly). */
  private nextNonce(): Buffer {
    if (this.noncePos + 12 > this.nonces.length) {
      this.nonces = randomBytes(12 * 4096);
      this.noncePos = 0;
    }
    const n = this.nonces.subarray(this.noncePos, this.noncePos + 12);
    this.noncePos += 12;
    return n;
  }

  private compress(plain: Uint8Array, level: number): Buffer {
    const bound = zstd.compressBound(plain.length);
    if (this.scratch.length < bound) this.scratch = Buffer.allocUnsafeSlow(Math.max(bound, 4 * 1024 * 1024 + 65536));
    const n = this.cctx.compress(this.scratch, plain, level);
    return this.scratch.subarray(0, n);
  }

  /** Returns the blob bytes for a plaintext whose id the caller computed with `chunkId`. */
  encode(id: ChunkId, plain: Uint8Array, opts: EncodeOptions = { level: 3 }): Buffer {
    let flags = 0;
    let payload: Uint8Array = plain;
    // zstd gives up quickly on incompressible data (GB/s), so no entropy pre-test is needed.
    if (opts.level > 0 && plain.length >= 64) {
      const z = this.compress(plain, opts.level);
      if (z.length < plain.length - plain.length / 32) {
        payload = z;
        flags = FLAG_ZSTD;
      }
    }
    const seal = this.keys.seal;
    const key = seal ? seal.key : this.keys.v1;
    if (!key) throw new CoffreError('NO_KEY', 'no key to write blobs with');
    const version = seal ? BLOB_VERSION_SEALED : BLOB_VERSION;
    const head = seal ? 2 + 32 : 2;
    // Own ArrayBuffer (never the shared pool) so callers may transfer it between threads.
    const out = Buffer.allocUnsafeSlow(head + 12 + payload.length + 16);
    out[0] = version;
    out[1] = flags;
    if (seal) seal.ephemeral.copy(out, 2);
    const nonce = this.nextNonce();
    nonce.copy(out, head);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(aad(id, version, flags, seal?.ephemeral));
    let off = head + 12;
    off += c.update(payload).copy(out, off);
    off += c.final().copy(out, off);
    c.getAuthTag().copy(out, off);
    return out;
  }

  /**
   * Authenticates, decrypts and decompresses a blob, refusing to expand beyond
   * `maxPlain` bytes (bounded decompression), then checks that the plaintext hashes to `id`.
   */
  decode(id: ChunkId, blob: Uint8Array, maxPlain: number, idKey: Buffer): Buffer {
    if (blob.length < BLOB_OVERHEAD) throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} is truncated`);
    const version = blob[0]!;
    const flags = blob[1]!;
    if (version !== BLOB_VERSION && version !== BLOB_VERSION_SEALED) throw new CoffreError('FORMAT', `blob ${id.slice(0, 12)} has unknown version ${version}`);
    if ((flags & ~FLAG_ZSTD) !== 0) throw new CoffreError('FORMAT', `blob ${id.slice(0, 12)} has unknown flags ${flags}`);
    const sealed = version === BLOB_VERSION_SEALED;
    if (sealed && blob.length < BLOB_OVERHEAD_SEALED) throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} is truncated`);
    const ephemeral = sealed ? blob.subarray(2, 34) : undefined;
    let key: Buffer | undefined;
    if (sealed) {
      if (!this.keys.read) throw new CoffreError('NO_KEY', WRITE_ONLY_MESSAGE);
      key = this.keys.read.sessionKey(ephemeral!);
    } else {
      key = this.keys.v1;
      if (!key) throw new CoffreError('NO_KEY', WRITE_ONLY_MESSAGE);
    }
    const head = sealed ? 34 : 2;
    let payload: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', key, blob.subarray(head, head + 12));
      d.setAAD(aad(id, version, flags, ephemeral));
      d.setAuthTag(blob.subarray(blob.length - 16));
      payload = Buffer.concat([d.update(blob.subarray(head + 12, blob.length - 16)), d.final()]);
    } catch {
      throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} failed authentication (corrupted, tampered or wrong key)`);
    }
    if (payload.length > maxPlain && !(flags & FLAG_ZSTD)) {
      throw new CoffreError('TOO_LARGE', `blob ${id.slice(0, 12)} is larger than allowed`);
    }
    const plain = flags & FLAG_ZSTD ? boundedDecompress(this.dctx, payload, maxPlain, id) : payload;
    if (chunkId(idKey, plain) !== id) {
      throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} does not hash to its id`);
    }
    return plain;
  }
}

function boundedDecompress(dctx: InstanceType<ZstdBinding['DCtx']>, payload: Buffer, maxPlain: number, id: ChunkId): Buffer {
  // Every frame header declares its content size (we always write it); sum them and
  // refuse before allocating anything if the total is over the limit.
  let declared = 0;
  let frames = 0;
  try {
    for (let rest: Buffer = payload; rest.length > 0 && frames < 64; frames++) {
      const size = zstd.getFrameContentSize(rest);
      if (size === null) throw new Error('frame without a content size');
      declared += size;
      if (declared > maxPlain) {
        throw new CoffreError('TOO_LARGE', `blob ${id.slice(0, 12)} declares more than the limit of ${maxPlain} bytes`);
      }
      rest = rest.subarray(zstd.findFrameCompressedSize(rest));
    }
  } catch (e) {
    if (e instanceof CoffreError) throw e;
    throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} is not a valid zstd payload: ${(e as Error).message}`);
  }
  const out = Buffer.allocUnsafe(declared);
  let n: number;
  try {
    n = dctx.decompress(out, payload);
  } catch (e) {
    throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} does not decompress: ${(e as Error).message}`);
  }
  if (n !== declared) throw new CoffreError('INTEGRITY', `blob ${id.slice(0, 12)} decompressed to an unexpected size`);
  return out;
}
