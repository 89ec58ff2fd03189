import type { Readable } from 'node:stream';

/**
 * The one storage backend interface (restic's `Backend`, reduced). Every implementation —
 * local filesystem (fs-store.ts), S3-compatible (s3-store.ts), and the in-memory one the
 * tests use — passes test/store-conformance.ts. Retries, caching or fault injection are
 * added by wrapping a store, never inside one.
 *
 * Keys follow one grammar for every store (see `validateKey`): slash-separated segments
 * of [a-z0-9._-], no empty segment, no segment starting with "." (so "." and ".." are
 * impossible and implementations may keep private dot-files, e.g. temp files).
 */
export interface ObjectStore {
  /** Stores `data` under `key`, replacing any previous object. Atomic: a reader sees the
   *  old object or the whole new one, never a part; a failed put leaves no new object. */
  put(key: string, data: Buffer): Promise<void>;
  /** Whole object, or `range.length` bytes from `range.offset`. Throws ObjectNotFoundError,
   *  or InvalidRangeError when the range does not lie inside the object. */
  get(key: string, range?: ByteRange): Promise<Buffer>;
  /**
   * The same bytes as `get`, streamed, so that large objects are never held in memory.
   * Every up-front failure rejects *before* the promise resolves (ObjectNotFoundError,
   * InvalidRangeError, InvalidKeyError, or a store error), so a caller can still answer
   * 404/416. The stream then yields exactly the object's (or the range's) bytes, from one
   * version of the object even if it is replaced or deleted meanwhile, or is destroyed
   * with an ObjectStoreError (never ends early without an error). The caller must consume
   * or destroy it; destroying it releases what it holds (file handle, connection).
   */
  getStream(key: string, range?: ByteRange): Promise<Readable>;
  /** null when the object does not exist. */
  stat(key: string): Promise<{ size: number } | null>;
  /** Every object whose key starts with `prefix` (a plain string prefix, as in S3), with its
   *  size and last modification; order unspecified. */
  list(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }>;
  /**
   * Removes what failed, crashed or abandoned uploads left behind (temp files, incomplete
   * multipart uploads…) last written before `olderThan` (R8). Never touches a committed
   * object, nor an upload written to since `olderThan`. Returns what was removed.
   */
  purgeTemporary(olderThan: Date): Promise<{ removed: number; bytes: number }>;
  /** Idempotent: deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Starts a streamed write of `key` (for objects too large to hold in memory, e.g. packs
   * received over HTTP). Nothing is visible under `key` until `commit` resolves; then the
   * whole object appears at once, with the same atomicity and durability as `put`. A failed
   * or aborted upload leaves no new object and no leftover (temp file, pending multipart
   * upload…). Stores that persist elsewhere hold at most a bounded part of an upload in
   * memory (a few MiB), whatever its size.
   */
  createUpload(key: string, opts?: UploadOptions): Promise<ObjectUpload>;
}

export interface UploadOptions {
  /** The final size in bytes, when known in advance. A store may use it (e.g. one
   *  streaming PUT instead of a multipart upload) and `commit` refuses any other size. */
  readonly size?: number;
}

/** One streamed write; obtained from `ObjectStore#createUpload`, used by one caller at a time. */
export interface ObjectUpload {
  /** Appends `chunk`. Resolves when the caller may write more (backpressure): await it
   *  before the next write. The store may keep a reference to `chunk` until `commit` or
   *  `abort` settles, so the caller must not modify it afterwards. Rejects once the upload
   *  has failed, been committed or aborted. */
  write(chunk: Buffer): Promise<void>;
  /** Publishes everything written, atomically and durably. On failure the upload is
   *  aborted (no new object, nothing left behind) and the error is rethrown. */
  commit(): Promise<void>;
  /** Discards the upload. Idempotent, never rejects, harmless after commit. */
  abort(): Promise<void>;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Base of every store error, so callers can tell store failures from bugs. */
export class ObjectStoreError extends Error {
  override readonly name: string = 'ObjectStoreError';
}
/**
 * The store could not be reached or answered that it is temporarily unable to serve
 * (network error, timeout, HTTP 5xx, throttling): the operation may succeed if retried
 * later, so the server can answer a retryable 503 rather than a 500.
 */
export class StoreUnavailableError extends ObjectStoreError {
  override readonly name = 'StoreUnavailableError';
}
export class ObjectNotFoundError extends ObjectStoreError {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly key: string) {
    super(`object not found: ${key}`);
  }
}
export class InvalidKeyError extends ObjectStoreError {
  override readonly name = 'InvalidKeyError';
  constructor(readonly key: string) {
    super(`invalid object key: ${JSON.stringify(key.slice(0, 200))}`);
  }
}
/** A streamed upload was used after it ended, or committed with a size other than announced. */
export class UploadStateError extends ObjectStoreError {
  override readonly name = 'UploadStateError';
}
export class InvalidRangeError extends ObjectStoreError {
  override readonly name = 'InvalidRangeError';
  constructor(key: string, range: ByteRange, size: number) {
    super(`range ${range.offset}+${range.length} is outside object ${key} of ${size} bytes`);
  }
}

export function isNotFound(err: unknown): err is ObjectNotFoundError {
  return err instanceof ObjectNotFoundError;
}

const SEGMENT = /^[a-z0-9_-][a-z0-9._-]*$/;
export const MAX_KEY_LENGTH = 512;

export function isValidKey(key: string): boolean {
  return typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY_LENGTH && key.split('/').every((s) => SEGMENT.test(s));
}
export function validateKey(key: string): void {
  if (!isValidKey(key)) throw new InvalidKeyError(key);
}
/** A list prefix is any leading part of a valid key (may be "" or end with "/"). */
export function validatePrefix(prefix: string): void {
  if (prefix === '') return;
  if (!/^[a-z0-9/._-]*$/.test(prefix) || prefix.startsWith('/') || prefix.length > MAX_KEY_LENGTH) throw new InvalidKeyError(prefix);
  const segments = prefix.split('/');
  segments.pop(); // the last segment may be partial or empty
  if (!segments.every((s) => SEGMENT.test(s))) throw new InvalidKeyError(prefix);
}

export function validateRange(key: string, range: ByteRange, size: number): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new InvalidRangeError(key, range, size);
  }
}
