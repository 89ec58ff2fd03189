/**
 * A set of 32-byte ids (keyed hashes, so uniformly distributed) in one flat buffer with
 * open addressing: about 46 bytes per id at most (32 × 1/0.7 load), instead of ~150 for a
 * Set of hex strings. GC holds the customer's live set in one.
 */
export class IdSet {
  private keys: Buffer;
  private used: Uint8Array;
  private mask: number;
  private count = 0;

  constructor(expected = 1024) {
    let cap = 1024;
    while (cap * 0.7 < expected) cap *= 2;
    this.keys = Buffer.alloc(cap * 32);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Adds the id at `buf[offset … offset+32)`; true if it was new. */
  addAt(buf: Buffer, offset = 0): boolean {
    if ((this.count + 1) > (this.mask + 1) * 0.7) this.grow();
    let i = buf.readUInt32LE(offset) & this.mask;
    for (;;) {
      if (this.used[i] === 0) {
        buf.copy(this.keys, i * 32, offset, offset + 32);
        this.used[i] = 1;
        this.count++;
        return true;
      }
      if (this.keys.compare(buf, offset, offset + 32, i * 32, i * 32 + 32) === 0) return false;
      i = (i + 1) & this.mask;
    }
  }

  hasAt(buf: Buffer, offset = 0): boolean {
    let i = buf.readUInt32LE(offset) & this.mask;
    for (;;) {
      if (this.used[i] === 0) return false;
      if (this.keys.compare(buf, offset, offset + 32, i * 32, i * 32 + 32) === 0) return true;
      i = (i + 1) & this.mask;
    }
  }

  has(id: Buffer | string): boolean {
    return this.hasAt(typeof id === 'string' ? Buffer.from(id, 'hex') : id, 0);
  }

  /** Adds every id of a reference list (concatenated raw 32-byte ids). */
  addAll(refs: Buffer): void {
    for (let off = 0; off + 32 <= refs.length; off += 32) this.addAt(refs, off);
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldUsed = this.used;
    const cap = (this.mask + 1) * 2;
    this.keys = Buffer.alloc(cap * 32);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    for (let i = 0; i < oldUsed.length; i++) if (oldUsed[i] === 1) this.addAt(oldKeys, i * 32);
  }
}
