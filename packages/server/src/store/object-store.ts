/**
 * The one storage backend interface (restic's `Backend`, reduced). Every implementation —
 * local filesystem, in-memory, later S3 — passes test/store-conformance.ts. Retries,
 * caching or fault injection are added by wrapping a store, never inside one.
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
  /** null when the object does not exist. */
  stat(key: string): Promise<{ size: number } | null>;
  /** Every object whose key starts with `prefix` (a plain string prefix, as in S3); order unspecified. */
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;
  /** Idempotent: deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Base of every store error, so callers can tell store failures from bugs. */
export class ObjectStoreError extends Error {
  override readonly name: string = 'ObjectStoreError';
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
