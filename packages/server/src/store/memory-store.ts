import type { ByteRange, ObjectStore } from './object-store.js';
import { ObjectNotFoundError, validateKey, validatePrefix, validateRange } from './object-store.js';

export interface MemoryStoreOptions {
  /** Test seam: runs after the new content is prepared and before it becomes visible.
   *  Throwing from it simulates a crash in the middle of a put. */
  readonly beforeCommit?: (key: string) => Promise<void> | void;
}

/** In-memory store for tests and tools. Copies on the way in and out, so callers can
 *  never mutate stored bytes through a Buffer they hold. */
export function createMemoryStore(opts: MemoryStoreOptions = {}): ObjectStore {
  return new MemoryStore(opts);
}

class MemoryStore implements ObjectStore {
  private readonly objects = new Map<string, Buffer>();
  constructor(private readonly opts: MemoryStoreOptions) {}

  async put(key: string, data: Buffer): Promise<void> {
    validateKey(key);
    const copy = Buffer.from(data);
    await this.opts.beforeCommit?.(key);
    this.objects.set(key, copy);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    validateKey(key);
    const obj = this.objects.get(key);
    if (!obj) throw new ObjectNotFoundError(key);
    if (!range) return Buffer.from(obj);
    validateRange(key, range, obj.length);
    return Buffer.from(obj.subarray(range.offset, range.offset + range.length));
  }

  async stat(key: string): Promise<{ size: number } | null> {
    validateKey(key);
    const obj = this.objects.get(key);
    return obj ? { size: obj.length } : null;
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    validatePrefix(prefix);
    // Snapshot the keys first: callers may delete while iterating.
    const entries = [...this.objects].filter(([k]) => k.startsWith(prefix));
    for (const [key, obj] of entries) yield { key, size: obj.length };
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.objects.delete(key);
  }
}
