/**
 * A set of 32-byte chunk ids in a SharedArrayBuffer: the main thread inserts, worker
 * threads look up without messages or locks. Open addressing with linear probing;
 * each 36-byte slot is [int32 state (0 empty, 1 full)][32 id bytes]. The id bytes are
 * written before the state is published with Atomics.store, so a reader that sees
 * state 1 sees the whole id. A stale (smaller) copy in a worker only causes a
 * redundant encode, which the main thread drops: it is never a correctness issue.
 */
const SLOT = 36;

export class SharedIdSet {
  private sab: SharedArrayBuffer;
  private bytes: Uint8Array;
  private words: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacityOrBuffer: number | SharedArrayBuffer = 1 << 16) {
    if (typeof capacityOrBuffer === 'number') {
      let cap = 1024;
      while (cap < capacityOrBuffer * 2) cap *= 2;
      this.sab = new SharedArrayBuffer(cap * SLOT);
    } else {
      this.sab = capacityOrBuffer;
    }
    this.bytes = new Uint8Array(this.sab);
    this.words = new Int32Array(this.sab);
    this.mask = this.sab.byteLength / SLOT - 1;
  }

  get buffer(): SharedArrayBuffer {
    return this.sab;
  }
  get size(): number {
    return this.count;
  }

  private slotOf(id: Uint8Array): number {
    return ((id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0) & this.mask;
  }

  private find(id: Uint8Array): { slot: number; found: boolean } {
    let s = this.slotOf(id);
    for (;;) {
      const base = s * SLOT;
      if (Atomics.load(this.words, base / 4) === 0) return { slot: s, found: false };
      let eq = true;
      for (let i = 0; i < 32; i++) {
        if (this.bytes[base + 4 + i] !== id[i]) {
          eq = false;
          break;
        }
      }
      if (eq) return { slot: s, found: true };
      s = (s + 1) & this.mask;
    }
  }

  hasBytes(id: Uint8Array): boolean {
    return this.find(id).found;
  }
  has(hex: string): boolean {
    return this.hasBytes(Buffer.from(hex, 'hex'));
  }

  /** Main thread only. Returns false if already present. May grow (new buffer). */
  addBytes(id: Uint8Array): boolean {
    const { slot, found } = this.find(id);
    if (found) return false;
    const base = slot * SLOT;
    this.bytes.set(id.subarray(0, 32), base + 4);
    Atomics.store(this.words, base / 4, 1);
    this.count++;
    if (this.count * 2 > this.mask + 1) this.grow();
    return true;
  }
  add(hex: string): boolean {
    return this.addBytes(Buffer.from(hex, 'hex'));
  }

  private grow(): void {
    const old = this.bytes;
    const oldSlots = this.mask + 1;
    this.sab = new SharedArrayBuffer(oldSlots * 2 * SLOT);
    this.bytes = new Uint8Array(this.sab);
    this.words = new Int32Array(this.sab);
    this.mask = oldSlots * 2 - 1;
    this.count = 0;
    for (let s = 0; s < oldSlots; s++) {
      const base = s * SLOT;
      if (old[base] === 1) this.addBytes(old.subarray(base + 4, base + 36));
    }
  }
}
