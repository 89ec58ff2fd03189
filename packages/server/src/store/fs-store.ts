import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ByteRange, ObjectStore, ObjectUpload, UploadOptions } from './object-store.js';
import { InvalidRangeError, ObjectNotFoundError, ObjectStoreError, UploadStateError, validateKey, validatePrefix, validateRange } from './object-store.js';
import { emptyStream, exactLengthStream } from './stream.js';

/** Bytes an upload queues behind the write in flight before `write` makes its caller wait:
 *  at most about twice this much of an upload is in memory at any time. */
export const UPLOAD_HIGH_WATER_MARK = 1 << 20;

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
    const upload = await this.createUpload(key, { size: data.length });
    try {
      await upload.write(data);
    } catch (err) {
      await upload.abort();
      throw err;
    }
    await upload.commit();
  }

  /** A dot-prefixed temp file next to the target, written in the background with bounded
   *  queueing, then fsynced, renamed over the key, and the directory fsynced. */
  async createUpload(key: string, opts: UploadOptions = {}): Promise<ObjectUpload> {
    const file = this.file(key);
    const dir = path.dirname(file);
    await this.ensureDir(dir);
    const tmp = path.join(dir, `.tmp-${path.basename(file)}-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o640);
    return new FsUpload(fh, { key, file, dir, tmp, size: opts.size, beforeCommit: this.opts.beforeCommit });
  }

  /** The object's file, opened for reading; ObjectNotFoundError when there is none. */
  private async openObject(key: string): Promise<FileHandle> {
    try {
      return await open(this.file(key), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new ObjectNotFoundError(key);
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const fh = await this.openObject(key);
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

  /** Opens the file and checks the range against fstat of that handle before resolving; the
   *  stream then reads through the same handle, so a concurrent delete or replace (a rename
   *  over the key) cannot mix two objects. */
  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const fh = await this.openObject(key);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new ObjectNotFoundError(key); // a directory: the prefix of other keys
      const size = st.size;
      if (range) validateRange(key, range, size);
      const { offset, length } = range ?? { offset: 0, length: size };
      if (length === 0) {
        await fh.close();
        return emptyStream();
      }
      // From here on the stream owns the handle and closes it when it ends or is destroyed.
      const source = fh.createReadStream({ start: offset, end: offset + length - 1, autoClose: true });
      return exactLengthStream(source, length, `reading ${key}`, (err) => new ObjectStoreError(`reading ${key} failed: ${err instanceof Error ? err.message : String(err)}`));
    } catch (err) {
      await fh.close();
      throw err;
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

  async *list(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }> {
    validatePrefix(prefix);
    // Walk only the deepest directory that every matching key must live in.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    yield* this.walk(base, prefix);
  }

  private async *walk(rel: string, prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }> {
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
        try {
          const s = await stat(this.file(key));
          yield { key, size: s.size, modifiedAt: s.mtime };
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err; // deleted meanwhile
        }
      }
    }
  }

  /** Temp files (`.tmp-…`, left by crashed or abandoned uploads) not written since `olderThan`. */
  async purgeTemporary(olderThan: Date): Promise<{ removed: number; bytes: number }> {
    const out = { removed: 0, bytes: 0 };
    const visit = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return;
        throw err;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await visit(p);
        else if (e.isFile() && e.name.startsWith('.tmp-')) {
          try {
            const s = await stat(p);
            if (s.mtime >= olderThan) continue; // written recently: maybe an upload in progress
            await unlink(p);
            out.removed++;
            out.bytes += s.size;
          } catch (err) {
            if (!isErrno(err, 'ENOENT')) throw err; // committed or aborted meanwhile
          }
        }
      }
    };
    await visit(this.root);
    return out;
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

/** Writes all of `bufs` at the current file position (libuv splits and resumes writev itself). */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let total = 0;
  for (const b of bufs) total += b.length;
  const { bytesWritten } = await fh.writev(bufs);
  if (bytesWritten !== total) throw new ObjectStoreError(`short write: ${bytesWritten} of ${total} bytes`);
}

interface FsUploadTarget {
  readonly key: string;
  readonly file: string;
  readonly dir: string;
  readonly tmp: string;
  readonly size: number | undefined;
  readonly beforeCommit: ((key: string) => Promise<void> | void) | undefined;
}

/**
 * One streamed write into a temp file. Chunks are queued and written by one `writev` at a
 * time in the background, so receiving and writing overlap; `write` waits once the queue
 * reaches UPLOAD_HIGH_WATER_MARK, which bounds the memory held per upload.
 */
class FsUpload implements ObjectUpload {
  private queue: Buffer[] = [];
  private queued = 0;
  private written = 0;
  /** The writev in flight; never rejects (failures land in `failure`). */
  private inflight: Promise<void> | null = null;
  private failure: { readonly err: unknown } | null = null;
  private state: 'open' | 'committing' | 'ended' = 'open';
  private fileClosed = false;
  private committing: Promise<void> | null = null;

  constructor(
    private readonly fh: FileHandle,
    private readonly t: FsUploadTarget,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.state !== 'open') throw new UploadStateError(`upload of ${this.t.key} has ended`);
    this.throwIfFailed();
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.written += chunk.length;
    if (this.inflight === null) this.pump();
    while (this.queued >= UPLOAD_HIGH_WATER_MARK && this.inflight !== null) await this.inflight;
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.err;
  }

  /** Starts writing everything queued; chains itself until the queue is empty. */
  private pump(): void {
    const bufs = this.queue;
    this.queue = [];
    this.queued = 0;
    this.inflight = writeAll(this.fh, bufs).then(
      () => {
        this.inflight = null;
        if (this.queue.length > 0 && this.failure === null && this.state !== 'ended') this.pump();
      },
      (err: unknown) => {
        this.inflight = null;
        this.failure ??= { err };
        this.queue = [];
        this.queued = 0;
      },
    );
  }

  private async drain(): Promise<void> {
    while (this.inflight !== null) await this.inflight;
  }

  commit(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new UploadStateError(`upload of ${this.t.key} has ended`));
    this.state = 'committing';
    this.committing = this.publish();
    return this.committing;
  }

  private async publish(): Promise<void> {
    const { key, file, dir, tmp, size } = this.t;
    try {
      await this.drain();
      this.throwIfFailed();
      if (size !== undefined && this.written !== size) throw new UploadStateError(`upload of ${key} has ${this.written} bytes, ${size} were announced`);
      await this.fh.sync();
      await this.closeFile();
      await this.t.beforeCommit?.(key);
      await rename(tmp, file);
    } catch (err) {
      await this.discard();
      throw err;
    } finally {
      this.state = 'ended';
    }
    await fsyncPath(dir);
  }

  async abort(): Promise<void> {
    if (this.state === 'committing') {
      await this.committing?.catch(() => undefined);
      return;
    }
    if (this.state === 'ended') return;
    this.state = 'ended';
    await this.discard();
  }

  /** Stops writing, closes and removes the temp file; never throws. */
  private async discard(): Promise<void> {
    this.queue = [];
    this.queued = 0;
    await this.drain();
    await this.closeFile().catch(() => undefined);
    await unlink(this.t.tmp).catch(() => undefined);
  }

  private async closeFile(): Promise<void> {
    if (this.fileClosed) return;
    this.fileClosed = true;
    await this.fh.close();
  }
}
