import { createHash, type Hash } from 'node:crypto';
import { CoffreError, MAX_PACK_SIZE, PACK_HEADER_FIXED, packEntryCount, packHeaderSize, packIdOf, parsePackHeader, type PackEntry } from '@coffre/core';

/**
 * Verifies a pack while its bytes arrive, holding only the header in memory (12 + 80·N
 * bytes). Once the header is complete it is checked at once — format, size, that it
 * hashes to the expected pack id, and that it matches the announced body length — and
 * then each blob is hashed on its own as it streams by. The id commits to the header,
 * the header to every blob's SHA-256, offset and length, so when `end` succeeds the bytes
 * seen are exactly the pack named by the id.
 *
 * Throws CoffreError as soon as the bytes so far prove the pack bad: FORMAT (not a pack,
 * header/length mismatch, trailing or missing bytes), TOO_LARGE, INTEGRITY (wrong id or
 * a blob that does not match its hash).
 */
export class PackStreamVerifier {
  private readonly fixed = Buffer.alloc(PACK_HEADER_FIXED);
  private header: Buffer | null = null;
  /** Bytes of the fixed part, then of the whole header, received so far. */
  private filled = 0;
  private parsed: PackEntry[] | null = null;
  private total = 0;
  private received = 0;
  /** The blob being received, how much of it is still due, and its running hash. */
  private blob = 0;
  private blobLeft = 0;
  private hash: Hash | null = null;

  /** `declaredLength`: the request's Content-Length when it has one. */
  constructor(
    private readonly expectedId: string,
    private readonly declaredLength?: number,
  ) {}

  /** The entries once the header is complete and verified, else null. */
  get entries(): readonly PackEntry[] | null {
    return this.parsed;
  }

  /** The pack size the header implies, once it is complete (0 before). */
  get size(): number {
    return this.total;
  }

  /**
   * Consumes the next bytes of the body and returns what to store, in order: nothing while
   * the header is incomplete, then the header and the rest of this chunk, then each chunk
   * as is (no copy). Returned buffers are never modified afterwards.
   */
  push(chunk: Buffer): Buffer[] {
    this.received += chunk.length;
    if (this.parsed !== null) {
      this.hashBlobs(chunk);
      return [chunk];
    }
    const used = this.takeHeader(chunk);
    if (this.parsed === null) return [];
    const rest = used === chunk.length ? null : chunk.subarray(used);
    if (rest) this.hashBlobs(rest);
    return rest ? [this.header!, rest] : [this.header!];
  }

  /** Call when the body has ended: the entries, or FORMAT unless exactly the whole pack arrived. */
  end(): PackEntry[] {
    if (this.parsed === null) {
      throw new CoffreError('FORMAT', this.received < PACK_HEADER_FIXED ? 'not a coffre pack (too short)' : 'pack header truncated');
    }
    if (this.blob < this.parsed.length) throw new CoffreError('FORMAT', `pack length ${this.received} does not match its header (${this.total})`);
    return this.parsed;
  }

  /** Copies header bytes from `chunk`; returns how many it used. Verifies the header once complete. */
  private takeHeader(chunk: Buffer): number {
    let pos = 0;
    if (this.header === null) {
      pos = chunk.copy(this.fixed, this.filled, 0, PACK_HEADER_FIXED - this.filled);
      this.filled += pos;
      if (this.filled < PACK_HEADER_FIXED) return pos;
      const count = packEntryCount(this.fixed);
      const headerSize = packHeaderSize(count);
      // Every blob has at least one byte: refuse an impossible length before buffering the header.
      if (this.declaredLength !== undefined && this.declaredLength < headerSize + count) {
        throw new CoffreError('FORMAT', `pack length ${this.declaredLength} is too short for ${count} entries`);
      }
      // allocUnsafe: pages are only touched as header bytes really arrive.
      this.header = Buffer.allocUnsafe(headerSize);
      this.fixed.copy(this.header, 0);
    }
    const n = chunk.copy(this.header, this.filled, pos, pos + (this.header.length - this.filled));
    this.filled += n;
    pos += n;
    if (this.filled === this.header.length) this.verifyHeader(this.header);
    return pos;
  }

  private verifyHeader(header: Buffer): void {
    // With a Content-Length, parsePackHeader also checks it against the blob layout (and the size limit).
    const entries = parsePackHeader(header, this.declaredLength);
    const last = entries[entries.length - 1]!;
    this.total = last.offset + last.length;
    if (this.total > MAX_PACK_SIZE) throw new CoffreError('TOO_LARGE', 'pack too large');
    if (packIdOf(header) !== this.expectedId) throw new CoffreError('INTEGRITY', 'pack header does not match the pack id');
    this.parsed = entries;
    this.blob = 0;
    this.blobLeft = entries[0]!.length;
    this.hash = createHash('sha256');
  }

  private hashBlobs(bytes: Buffer): void {
    const entries = this.parsed!;
    let pos = 0;
    while (pos < bytes.length) {
      if (this.blob === entries.length) throw new CoffreError('FORMAT', `pack is longer than its header says (${this.total} bytes)`);
      const n = Math.min(this.blobLeft, bytes.length - pos);
      this.hash!.update(n === bytes.length ? bytes : bytes.subarray(pos, pos + n));
      pos += n;
      this.blobLeft -= n;
      if (this.blobLeft > 0) continue;
      const e = entries[this.blob]!;
      if (this.hash!.digest('hex') !== e.sha256) throw new CoffreError('INTEGRITY', `blob ${e.id.slice(0, 12)} in pack does not match its recorded SHA-256`);
      this.blob++;
      if (this.blob < entries.length) {
        this.blobLeft = entries[this.blob]!.length;
        this.hash = createHash('sha256');
      } else {
        this.hash = null;
      }
    }
  }
}
