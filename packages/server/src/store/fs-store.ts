import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { ByteRange, ObjectStore } from './object-store.js';
import { InvalidRangeError, ObjectNotFoundError, ObjectStoreError, validateKey, validatePrefix, validateRange } from './object-store.js';

export interface FsStoreOptions {
  /** Test seam: runs after the temp file is written and synced, before the rename that
   *  publishes it. Throwing from it simulates a crash at the worst moment of a put. */
  readonly beforeCommit?: (key: string) => Promise<void> | void;
}

/**
 * Objects as files under `root`, the key being the relative path. A put writes a
 * dot-prefixed temp file in the target directory, fsyncs it, renames it over the key
 * and fsyncs the directory: after put resolves the object survives a power loss, and
 * at no moment can a reader see a partial file. Keys never start a segment with ".",
 * so temp files can never collide with objects and `list` skips them.
 */
export function createFsStore(root: string, opts: FsStoreOptions = {}): ObjectStore {
  return new FsStore(path.resolve(root), opts);
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

class FsStore implements ObjectStore {
  constructor(
    private readonly root: string,
    private readonly opts: FsStoreOptions,
  ) {}

  private file(key: string): string {
    validateKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  /** mkdir -p, then fsync the parent of every directory it created so they are durable too. */
  private async ensureDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true });
    if (first === undefined) return;
    for (let d = dir; ; d = path.dirname(d)) {
      await fsyncPath(path.dirname(d));
      if (d === first || d === this.root || path.dirname(d) === d) break;
    }
  }

  async put(key: string, data: Buffer): Promise<void> {
    const file = this.file(key);
    const dir = path.dirname(file);
    await this.ensureDir(dir);
    const tmp = path.join(dir, `.tmp-${path.basename(file)}-${randomBytes(6).toString('hex')}`);
    let published = false;
    try {
      const fh = await open(tmp, 'wx', 0o640);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.opts.beforeCommit?.(key);
      await rename(tmp, file);
      published = true;
      await fsyncPath(dir);
    } finally {
      if (!published) await unlink(tmp).catch(() => undefined);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const file = this.file(key);
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new ObjectNotFoundError(key);
      throw err;
    }
    try {
      const size = (await fh.stat()).size;
      const { offset, length } = range ?? { offset: 0, length: size };
      if (range) validateRange(key, range, size);
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new InvalidRangeError(key, { offset, length }, offset + done);
        done += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<{ size: number } | null> {
    try {
      const s = await stat(this.file(key));
      if (!s.isFile()) throw new ObjectStoreError(`object path is not a file: ${key}`);
      return { size: s.size };
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    validatePrefix(prefix);
    // Walk only the deepest directory that every matching key must live in.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    yield* this.walk(base, prefix);
  }

  private async *walk(rel: string, prefix: string): AsyncIterable<{ key: string; size: number }> {
    let entries: Dirent[];
    try {
      entries = await readdir(rel === '' ? this.root : path.join(this.root, ...rel.split('/')), { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // temp files of puts in progress
      const key = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (e.isFile() && key.startsWith(prefix)) {
        const s = await this.stat(key);
        if (s) yield { key, size: s.size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.file(key));
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
      throw err;
    }
  }
}
