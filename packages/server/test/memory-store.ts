import { Readable } from 'node:stream';
import type { ByteRange, ObjectStore, ObjectUpload, UploadOptions } from '../src/store/object-store.js';
import { ObjectNotFoundError, UploadStateError, validateKey, validatePrefix, validateRange } from '../src/store/object-store.js';

export interface MemoryStoreOptions {
  /** Test seam: runs after the new content is prepared and before it becomes visible.
   *  Throwing from it simulates a crash in the middle of a put. */
  readonly beforeCommit?: (key: string) => Promise<void> | void;
}

/** In-memory store, for tests only (production stores persist). Copies on the way in and
 *  out, so callers can never mutate stored bytes through a Buffer they hold. */
export function createMemoryStore(opts: MemoryStoreOptions = {}): ObjectStore {
  return new MemoryStore(opts);
}

class MemoryStore implements ObjectStore {
  private readonly objects = new Map<string, Buffer>();
  private readonly modified = new Map<string, Date>();
  constructor(private readonly opts: MemoryStoreOptions) {}

  async put(key: string, data: Buffer): Promise<void> {
    validateKey(key);
    const copy = Buffer.from(data);
    await this.opts.beforeCommit?.(key);
    this.objects.set(key, copy);
    this.modified.set(key, new Date());
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    validateKey(key);
    const obj = this.objects.get(key);
    if (!obj) throw new ObjectNotFoundError(key);
    if (!range) return Buffer.from(obj);
    validateRange(key, range, obj.length);
    return Buffer.from(obj.subarray(range.offset, range.offset + range.length));
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const data = await this.get(key, range);
    return Readable.from(data.length === 0 ? [] : [data], { objectMode: false });
  }

  async stat(key: string): Promise<{ size: number } | null> {
    validateKey(key);
    const obj = this.objects.get(key);
    return obj ? { size: obj.length } : null;
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }> {
    validatePrefix(prefix);
    // Snapshot the keys first: callers may delete while iterating.
    const entries = [...this.objects].filter(([k]) => k.startsWith(prefix));
    for (const [key, obj] of entries) yield { key, size: obj.length, modifiedAt: this.modified.get(key) ?? new Date(0) };
  }

  /** Uploads in progress live in their own closures and vanish with them: nothing to purge. */
  async purgeTemporary(): Promise<{ removed: number; bytes: number }> {
    return { removed: 0, bytes: 0 };
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.objects.delete(key);
    this.modified.delete(key);
  }

  async createUpload(key: string, opts: UploadOptions = {}): Promise<ObjectUpload> {
    validateKey(key);
    let parts: Buffer[] = [];
    let size = 0;
    let state: 'open' | 'ended' = 'open';
    const ended = () => new UploadStateError(`upload of ${key} has ended`);
    return {
      write: async (chunk) => {
        if (state !== 'open') throw ended();
        parts.push(Buffer.from(chunk));
        size += chunk.length;
      },
      commit: async () => {
        if (state !== 'open') throw ended();
        state = 'ended';
        const data = Buffer.concat(parts, size);
        parts = [];
        if (opts.size !== undefined && size !== opts.size) throw new UploadStateError(`upload of ${key} has ${size} bytes, ${opts.size} were announced`);
        await this.opts.beforeCommit?.(key);
        this.objects.set(key, data);
        this.modified.set(key, new Date());
      },
      abort: async () => {
        state = 'ended';
        parts = [];
      },
    };
  }
}
