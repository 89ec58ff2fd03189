import { createHash } from 'node:crypto';
import type { ChunkId, PackId } from './bytes.js';
import { CoffreError } from './errors.js';

/**
 * Pack file (docs/FORMAT.md §5). A pack groups encrypted blobs so that the object store
 * holds few large objects. Its header is in clear so the server can verify, index,
 * replicate and repack without any key:
 *
 *   0   4B  magic "CFPK"
 *   4   u8  version = 1
 *   5   3B  reserved, zero
 *   8   u32 BE entry count N (1 ≤ N ≤ MAX_PACK_ENTRIES)
 *   12  N × 80B entries:
 *         32B chunk id | u64 BE offset of the blob from the start of the pack |
 *         u32 BE blob length | 32B SHA-256 of the blob bytes | 4B reserved, zero
 *   12+80N  the blobs, in entry order, contiguous, up to the end of the file
 *
 * The pack id is the SHA-256 of the header (12 + 80N bytes). The header commits to every
 * blob's SHA-256, offset and length, and blobs must end exactly at the end of the file, so
 * the id binds the whole content (a Merkle-style commitment) while costing one pass over
 * the data instead of two.
 */
export const PACK_MAGIC = Buffer.from('CFPK', 'ascii');
export const PACK_VERSION = 1;
export const PACK_ENTRY_SIZE = 80;
export const PACK_HEADER_FIXED = 12;
export const MAX_PACK_ENTRIES = 200_000;
export const MAX_PACK_SIZE = 256 * 1024 * 1024;
export const TARGET_PACK_SIZE = 16 * 1024 * 1024;

export interface PackEntry {
  readonly id: ChunkId;
  readonly offset: number;
  readonly length: number;
  readonly sha256: string; // hex
}

/** Entry count from the fixed part of a header (first 12 bytes), validated. */
export function packEntryCount(fixed: Uint8Array): number {
  const b = Buffer.from(fixed.buffer, fixed.byteOffset, fixed.byteLength);
  if (b.length < PACK_HEADER_FIXED || !b.subarray(0, 4).equals(PACK_MAGIC)) throw new CoffreError('FORMAT', 'not a coffre pack (bad magic)');
  const n = b.readUInt32BE(8);
  if (n < 1 || n > MAX_PACK_ENTRIES) throw new CoffreError('FORMAT', `pack entry count ${n} out of range`);
  return n;
}

export function packHeaderSize(count: number): number {
  return PACK_HEADER_FIXED + count * PACK_ENTRY_SIZE;
}

/**
 * Accumulates blobs and produces a pack. Not thread-safe; one per upload stream.
 * `has` lets the caller skip a chunk id already in the pack being built.
 */
export class PackBuilder {
  private blobs: Buffer[] = [];
  private readonly ids: ChunkId[] = [];
  private readonly hashes: Buffer[] = [];
  private readonly seen = new Set<string>();
  private bytes = 0;

  get size(): number {
    return packHeaderSize(this.blobs.length) + this.bytes;
  }
  get count(): number {
    return this.blobs.length;
  }
  has(id: ChunkId): boolean {
    return this.seen.has(id);
  }

  /** `sha256` may be given when the producer already hashed the blob (worker threads do). */
  add(id: ChunkId, blob: Buffer, sha256?: Buffer): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.ids.push(id);
    this.blobs.push(blob);
    this.hashes.push(sha256 ?? createHash('sha256').update(blob).digest());
    this.bytes += blob.length;
    return true;
  }

  /**
   * Returns the pack as a header followed by the blobs (write them in order; no copy is
   * made), its id and entries; the builder is then empty.
   */
  finishParts(): { id: PackId; parts: Buffer[]; size: number; entries: PackEntry[] } {
    const n = this.blobs.length;
    if (n === 0) throw new Error('empty pack');
    const header = Buffer.alloc(packHeaderSize(n));
    PACK_MAGIC.copy(header, 0);
    header[4] = PACK_VERSION;
    header.writeUInt32BE(n, 8);
    let offset = header.length;
    const entries: PackEntry[] = [];
    for (let i = 0; i < n; i++) {
      const p = PACK_HEADER_FIXED + i * PACK_ENTRY_SIZE;
      const blob = this.blobs[i]!;
      header.write(this.ids[i]!, p, 'hex');
      header.writeBigUInt64BE(BigInt(offset), p + 32);
      header.writeUInt32BE(blob.length, p + 40);
      this.hashes[i]!.copy(header, p + 44);
      entries.push({ id: this.ids[i]!, offset, length: blob.length, sha256: this.hashes[i]!.toString('hex') });
      offset += blob.length;
    }
    const parts = [header, ...this.blobs];
    const id = packIdOf(header);
    this.blobs = [];
    this.ids.length = 0;
    this.hashes.length = 0;
    this.seen.clear();
    this.bytes = 0;
    return { id, parts, size: offset, entries };
  }

  /** Same as finishParts, as one contiguous buffer (tests, small packs). */
  finish(): { id: PackId; data: Buffer; entries: PackEntry[] } {
    const { id, parts, size, entries } = this.finishParts();
    return { id, data: Buffer.concat(parts, size), entries };
  }
}

/** The pack id: SHA-256 of the header bytes. */
export function packIdOf(header: Uint8Array): PackId {
  return createHash('sha256').update(header).digest('hex') as PackId;
}

/**
 * Parses and checks the header: magic, version, bounds, contiguity, unique ids, and —
 * when `totalLength` is given — that the blobs end exactly at the end of the pack.
 * Needs only the first `packHeaderSize(count)` bytes.
 */
export function parsePackHeader(head: Uint8Array, totalLength?: number): PackEntry[] {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < PACK_HEADER_FIXED || !b.subarray(0, 4).equals(PACK_MAGIC)) {
    throw new CoffreError('FORMAT', 'not a coffre pack (bad magic)');
  }
  if (b[4] !== PACK_VERSION) throw new CoffreError('FORMAT', `unsupported pack version ${b[4]}`);
  if (b[5] !== 0 || b[6] !== 0 || b[7] !== 0) throw new CoffreError('FORMAT', 'pack reserved bytes are not zero');
  const n = b.readUInt32BE(8);
  if (n < 1 || n > MAX_PACK_ENTRIES) throw new CoffreError('FORMAT', `pack entry count ${n} out of range`);
  const hsize = packHeaderSize(n);
  if (b.length < hsize) throw new CoffreError('FORMAT', 'pack header truncated');
  if (totalLength !== undefined && totalLength > MAX_PACK_SIZE) throw new CoffreError('TOO_LARGE', 'pack too large');
  const entries: PackEntry[] = [];
  const ids = new Set<string>();
  let expected = hsize;
  for (let i = 0; i < n; i++) {
    const p = PACK_HEADER_FIXED + i * PACK_ENTRY_SIZE;
    const id = b.toString('hex', p, p + 32) as ChunkId;
    const offset = b.readBigUInt64BE(p + 32);
    const length = b.readUInt32BE(p + 40);
    if (b.readUInt32BE(p + 76) !== 0) throw new CoffreError('FORMAT', 'pack entry reserved bytes are not zero');
    if (offset !== BigInt(expected)) throw new CoffreError('FORMAT', `pack entry ${i} is not contiguous`);
    if (length < 1) throw new CoffreError('FORMAT', `pack entry ${i} is empty`);
    if (ids.has(id)) throw new CoffreError('FORMAT', `pack lists chunk ${id.slice(0, 12)} twice`);
    ids.add(id);
    entries.push({ id, offset: expected, length, sha256: b.toString('hex', p + 44, p + 76) });
    expected += length;
  }
  if (totalLength !== undefined && expected !== totalLength) throw new CoffreError('FORMAT', `pack length ${totalLength} does not match its header (${expected})`);
  return entries;
}

/** Full check of an in-memory pack: header, every blob hash, and the pack id (hash of the header). */
export function verifyPack(data: Uint8Array, expectedId?: string): PackEntry[] {
  const entries = parsePackHeader(data, data.length);
  for (const e of entries) {
    const h = createHash('sha256').update(data.subarray(e.offset, e.offset + e.length)).digest('hex');
    if (h !== e.sha256) throw new CoffreError('INTEGRITY', `blob ${e.id.slice(0, 12)} in pack does not match its recorded SHA-256`);
  }
  if (expectedId !== undefined && packIdOf(data.subarray(0, packHeaderSize(entries.length))) !== expectedId) {
    throw new CoffreError('INTEGRITY', 'pack header does not match the pack id');
  }
  return entries;
}
