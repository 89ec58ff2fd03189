// Over 400 lines on purpose: the store and its streamed upload share one client, one error
// classification and the prefix rules; split, each half would need the other's internals.
/**
 * An ObjectStore in a bucket of an S3-compatible service (AWS S3, or e.g. OpenStack Swift's
 * s3api, MinIO, Ceph RGW with `endpoint` and path-style addressing). It passes the same
 * conformance suite as the filesystem store, on a real server (test/s3-store.test.ts).
 *
 * Layout: the object `key` is `PREFIX/key` in the bucket (or `key` with no prefix). A store
 * only ever lists, purges or deletes under `PREFIX/` — never `PREFIX` followed by anything
 * else, so stores `a/b` and `a/bc` share a bucket safely. Bucket keys that are not valid
 * store keys (foreign objects) are not listed.
 *
 * Contract, as documented on `ObjectStore`:
 * - `put` is one PutObject with its Content-Length: atomic by the service (a reader sees the
 *   old or the whole new object).
 * - `get`/`getStream` send a Range header for a range; S3 truncates a range that runs past
 *   the end, so the total size in Content-Range is checked (and HeadObject answers
 *   zero-length ranges, which HTTP cannot express) and InvalidRangeError thrown when the
 *   range is not inside the object. Every failure surfaces before the stream is handed
 *   out; a connection lost afterwards destroys the stream with a StoreUnavailableError.
 * - `createUpload`: with an announced size ≤ partSize, the bytes are buffered and sent by
 *   one PutObject on commit. Otherwise they are buffered up to partSize, then a multipart
 *   upload is created (lazily) and each full part sent while the next one fills: `write`
 *   waits while one part is uploading and the next is full, so an upload holds at most
 *   about two parts plus the caller's last chunk in memory, whatever its size (the
 *   default part is 8 MiB: ~16 MiB per upload). `commit` sends the last part and
 *   CompleteMultipartUpload; a wrong total, a failed part or a failed completion aborts
 *   the multipart upload, so nothing is left pending. (One ambiguity is S3's own: a
 *   completion whose answer is lost may have succeeded although commit rejects.)
 * - `purgeTemporary` aborts the multipart uploads under the prefix that were initiated,
 *   and last written to (ListParts), before the cutoff — left by a crashed server.
 * - Errors are classified: not reachable, timeouts (connection 5 s; 120 s for an answer
 *   and of silence on the socket), HTTP 5xx, 429 and throttling → StoreUnavailableError
 *   (retryable, the server answers 503), after the SDK's standard retries (3 attempts);
 *   access denied, bad credentials, missing bucket → an ObjectStoreError naming the
 *   operation, the bucket and the endpoint. Messages never include credentials, and the
 *   SDK's error (which carries the access key id and the string to sign) is not kept as
 *   `cause`.
 *
 * Swift 2.30 quirks handled here: checksums only when required (otherwise a streamed
 * PutObject gets `501 aws-chunked is not supported`); no DeleteObjects (it wants a
 * Content-MD5 header that SDK v3 does not send): objects are deleted one by one; parts
 * under 5 MiB are refused at completion (EntityTooSmall), as on AWS; times have a
 * one-second resolution.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import type { ByteRange, ObjectStore, ObjectUpload, UploadOptions } from './object-store.js';
import {
  InvalidRangeError,
  isValidKey,
  ObjectNotFoundError,
  ObjectStoreError,
  StoreUnavailableError,
  UploadStateError,
  validateKey,
  validatePrefix,
  validateRange,
} from './object-store.js';
import { emptyStream, exactLengthStream } from './stream.js';

const MiB = 1024 * 1024;
/** S3's smallest part (except the last one). */
export const MIN_PART_SIZE = 5 * MiB;
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Concurrent connections to the S3 service per store (per server instance). */
export const MAX_SOCKETS = 256;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
const MAX_PREFIX_LENGTH = 200;

export interface S3StoreOptions {
  readonly bucket: string;
  /** '' or segments of the key grammar joined by '/', without a trailing slash. */
  readonly prefix: string;
  /** http(s)://host[:port] of an S3-compatible service; omitted for AWS itself. */
  readonly endpoint?: string;
  /** Default 'us-east-1'. */
  readonly region?: string;
  /** Path-style addressing (http://host/bucket/key). Default: true with an `endpoint`, false for AWS. */
  readonly forcePathStyle?: boolean;
  /** Default: the SDK's provider chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles…). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Bytes per multipart part, and the largest upload sent by one PutObject. Default 8 MiB, at least 5 MiB. */
  readonly partSize?: number;
  /** Tests only: accept a partSize under 5 MiB (the service will refuse to complete such uploads). */
  readonly allowSmallParts?: boolean;
  /** Tests only: the most entries asked per list request (default: the service's, 1000). */
  readonly pageSize?: number;
  /** A ready client (its own settings are used as they are; the store does not destroy it). */
  readonly client?: S3Client;
}

export interface S3Store extends ObjectStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly partSize: number;
  createUpload(key: string, opts?: UploadOptions): Promise<S3Upload>;
  /** `s3://bucket/prefix at <endpoint>`, for logs and messages. */
  describe(): string;
  /** Closes the client's idle connections (unless the client was given). */
  destroy(): void;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SEGMENT = /^[a-z0-9_-][a-z0-9._-]*$/;

function checkBucket(bucket: string, what: string): void {
  if (typeof bucket !== 'string' || !BUCKET.test(bucket) || bucket.includes('..')) {
    throw new Error(`${what}: ${JSON.stringify(String(bucket).slice(0, 100))} is not a valid bucket name (3 to 63 characters: lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)`);
  }
}

function checkPrefix(prefix: string, what: string): void {
  if (typeof prefix !== 'string') throw new Error(`${what}: the prefix must be a string`);
  if (prefix === '') return;
  if (prefix.length > MAX_PREFIX_LENGTH) throw new Error(`${what}: the prefix is longer than ${MAX_PREFIX_LENGTH} characters`);
  if (!prefix.split('/').every((s) => SEGMENT.test(s))) {
    throw new Error(
      `${what}: the prefix ${JSON.stringify(prefix.slice(0, 100))} must be segments of lower-case letters, digits, '.', '_' and '-' (not starting with '.') separated by single '/', without a leading or trailing '/'`,
    );
  }
}

/** `s3://BUCKET[/PREFIX]` → bucket and prefix ('' or 'a/b': no trailing slash). Throws an Error naming what is wrong. */
export function parseStoreUrl(url: string): { bucket: string; prefix: string } {
  const m = typeof url === 'string' ? /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(url) : null;
  if (!m) throw new Error(`invalid store URL ${JSON.stringify(String(url).slice(0, 200))}: expected s3://BUCKET[/PREFIX]`);
  const bucket = m[1]!;
  checkBucket(bucket, `invalid store URL ${JSON.stringify(url.slice(0, 200))}`);
  const prefix = (m[2] ?? '').replace(/\/$/, '');
  checkPrefix(prefix, `invalid store URL ${JSON.stringify(url.slice(0, 200))}`);
  return { bucket, prefix };
}

/** The endpoint without any credentials or path noise, for messages. */
function safeEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return u.origin + (u.pathname === '/' ? '' : u.pathname);
  } catch {
    return '(invalid endpoint)';
  }
}

export function createS3Store(opts: S3StoreOptions): S3Store {
  checkBucket(opts.bucket, 'S3 store');
  checkPrefix(opts.prefix, 'S3 store');
  const partSize = opts.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < 1 || partSize > MAX_PART_SIZE || (partSize < MIN_PART_SIZE && opts.allowSmallParts !== true)) {
    throw new Error(`S3 store: partSize must be an integer from ${MIN_PART_SIZE} (5 MiB) to ${MAX_PART_SIZE} bytes, got ${partSize}`);
  }
  if (opts.endpoint !== undefined) {
    let u: URL;
    try {
      u = new URL(opts.endpoint);
    } catch {
      throw new Error(`S3 store: the endpoint must be http(s)://HOST[:PORT], got ${JSON.stringify(opts.endpoint.slice(0, 200))}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`S3 store: the endpoint must be http(s)://HOST[:PORT], got ${u.protocol}`);
    if (u.username || u.password) throw new Error('S3 store: the endpoint must not hold credentials (pass them as credentials, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)');
  }
  const region = opts.region ?? 'us-east-1';
  let client = opts.client;
  const ownClient = client === undefined;
  if (client === undefined) {
    // The pinned SDK otherwise warns on every process start about Node 20's end of support.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    client = new S3Client({
      region,
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
      // Swift's s3api refuses aws-chunked bodies (sent for the default checksums).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      retryMode: 'standard',
      maxAttempts: 3,
      // Constructor options of @smithy/node-http-handler's NodeHttpHandler, which the SDK builds.
      // Sockets: a restore's GET /packs holds one for the client's whole download; the SDK's
      // default of 50 would let slow restores starve uploads and the rest.
      requestHandler: {
        connectionTimeout: 5_000,
        requestTimeout: 120_000,
        throwOnRequestTimeout: true,
        socketTimeout: 120_000,
        httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
        httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      },
    });
  }
  const where = `s3://${opts.bucket}${opts.prefix ? `/${opts.prefix}` : ''} at ${opts.endpoint !== undefined ? safeEndpoint(opts.endpoint) : `AWS (${region})`}`;
  const secrets = [opts.credentials?.secretAccessKey, opts.credentials?.accessKeyId, opts.credentials?.sessionToken].filter((s): s is string => typeof s === 'string' && s.length >= 4);
  if (opts.pageSize !== undefined && (!Number.isSafeInteger(opts.pageSize) || opts.pageSize < 1 || opts.pageSize > 1000)) throw new Error(`S3 store: pageSize must be an integer from 1 to 1000, got ${opts.pageSize}`);
  return new S3StoreImpl(client, ownClient, opts.bucket, opts.prefix, partSize, where, secrets, opts.pageSize);
}

/** What the SDK throws: a service exception or a network error, with metadata. */
interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string };
}

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'RequestLimitExceeded', 'TooManyRequestsException', 'ServiceUnavailable', 'InternalError', 'RequestTimeout', 'TimeoutError']);
const ACCESS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'AccountProblem', 'AllAccessDisabled']);

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | null)?.$metadata?.httpStatusCode;
}

function nameOf(err: unknown): string {
  const e = err as SdkError | null;
  return typeof e?.name === 'string' ? e.name : 'Error';
}

function isMissing(err: unknown): boolean {
  const name = nameOf(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(err) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload');
}

class S3StoreImpl implements S3Store {
  /** Where this store's keys live in the bucket: '' or 'PREFIX/'. */
  private readonly base: string;

  constructor(
    private readonly client: S3Client,
    private readonly ownClient: boolean,
    readonly bucket: string,
    readonly prefix: string,
    readonly partSize: number,
    private readonly where: string,
    private readonly secrets: readonly string[],
    private readonly pageSize: number | undefined,
  ) {
    this.base = prefix === '' ? '' : `${prefix}/`;
  }

  describe(): string {
    return this.where;
  }

  toString(): string {
    return this.where;
  }

  destroy(): void {
    if (this.ownClient) this.client.destroy();
  }

  private objectKey(key: string): string {
    validateKey(key);
    return this.base + key;
  }

  /** The SDK's error as an ObjectStoreError: classified, naming the operation, bucket and endpoint, never a credential. */
  toStoreError(err: unknown, op: string): ObjectStoreError {
    if (err instanceof ObjectStoreError) return err;
    const e = (err ?? {}) as SdkError;
    const name = nameOf(err);
    const status = statusOf(err);
    const requestId = e.$metadata?.requestId;
    const detail = [name, status !== undefined ? `HTTP ${status}` : null, typeof e.code === 'string' && e.code !== name ? e.code : null, requestId ? `request ${requestId}` : null].filter((s) => s !== null).join(', ');
    let text = `${op} on ${this.where} failed`;
    if (name === 'CredentialsProviderError') {
      return new ObjectStoreError(`${text}: no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`);
    }
    if (status === undefined) {
      // Network errors (ECONNREFUSED, ECONNRESET, ENOTFOUND…) and timeouts carry a code and no status.
      const message = typeof e.message === 'string' ? this.redact(e.message.slice(0, 300)) : '';
      text += `: the store is unreachable (${detail}${message ? `: ${message}` : ''})`;
      if (name === 'TimeoutError' || name === 'AbortError' || (typeof e.code === 'string' && /^(E[A-Z]+|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_\w+)$/.test(e.code)) || THROTTLING.has(name)) {
        return new StoreUnavailableError(text);
      }
      return new ObjectStoreError(`${op} on ${this.where} failed (${detail}${message ? `: ${message}` : ''})`);
    }
    if (status >= 500 || status === 429 || status === 408 || THROTTLING.has(name)) return new StoreUnavailableError(`${text}: the store is unavailable (${detail})`);
    if (name === 'NoSuchBucket') return new ObjectStoreError(`${text}: the bucket ${this.bucket} does not exist (${detail})`);
    if (status === 403 || status === 401 || ACCESS.has(name)) {
      return new ObjectStoreError(`${text}: access denied to bucket ${this.bucket} — check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and their rights (${detail})`);
    }
    return new ObjectStoreError(`${text} (${detail})`);
  }

  private redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('[redacted]');
    return out;
  }

  /** Runs one SDK call; every failure comes out as a classified ObjectStoreError. */
  private async call<T>(op: string, fn: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await fn(this.client);
    } catch (err) {
      throw this.toStoreError(err, op);
    }
  }

  async put(key: string, data: Buffer): Promise<void> {
    const k = this.objectKey(key);
    await this.putObject(k, key, data);
  }

  async putObject(bucketKey: string, key: string, data: Buffer): Promise<void> {
    await this.call(`put ${key}`, (c) => c.send(new PutObjectCommand({ Bucket: this.bucket, Key: bucketKey, Body: data, ContentLength: data.length, ContentType: 'application/octet-stream' })));
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const stream = await this.getStream(key, range);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  }

  /** HeadObject's size, or ObjectNotFoundError. */
  private async sizeOf(key: string, k: string): Promise<number> {
    let res;
    try {
      res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: k }));
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFoundError(key);
      throw this.toStoreError(err, `stat ${key}`);
    }
    return res.ContentLength ?? 0;
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const k = this.objectKey(key);
    if (range) {
      const { offset, length } = range;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) {
        // Zero-length (or malformed) ranges cannot be sent as a Range header: check against the size.
        validateRange(key, range, await this.sizeOf(key, k));
        return emptyStream();
      }
    }
    const op = `get ${key}`;
    let res;
    try {
      res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: k, ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}) }),
      );
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFoundError(key);
      if (range && (statusOf(err) === 416 || nameOf(err) === 'InvalidRange')) {
        const size = await this.sizeOf(key, k);
        throw new InvalidRangeError(key, range, size);
      }
      throw this.toStoreError(err, op);
    }
    const body = res.Body;
    if (!(body instanceof Readable)) throw new ObjectStoreError(`${op} on ${this.where}: the response has no readable body`);
    const refuse = (err: ObjectStoreError): never => {
      body.destroy();
      throw err;
    };
    let expected: number;
    if (res.ContentRange !== undefined) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange.trim());
      if (!m) return refuse(new ObjectStoreError(`${op} on ${this.where}: unexpected Content-Range ${JSON.stringify(res.ContentRange.slice(0, 100))}`));
      const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (!range) {
        if (start !== 0 || end !== total - 1) return refuse(new ObjectStoreError(`${op} on ${this.where}: a partial answer (${res.ContentRange}) to a whole-object request`));
        expected = total;
      } else {
        // S3 truncates a range that runs past the end: the object must hold all of it.
        if (range.offset + range.length > total) return refuse(new InvalidRangeError(key, range, total));
        if (start !== range.offset || end !== range.offset + range.length - 1) return refuse(new ObjectStoreError(`${op} on ${this.where}: answered ${res.ContentRange} to a request for bytes ${range.offset}-${range.offset + range.length - 1}`));
        expected = range.length;
      }
    } else {
      const total = res.ContentLength;
      if (total === undefined) return refuse(new ObjectStoreError(`${op} on ${this.where}: the response has no Content-Length`));
      if (range && !(range.offset === 0 && range.length === total)) {
        // The service ignored the Range header and sent the whole object.
        if (range.offset + range.length > total) return refuse(new InvalidRangeError(key, range, total));
        return refuse(new ObjectStoreError(`${op} on ${this.where}: the service ignored the Range header`));
      }
      expected = total;
    }
    return exactLengthStream(body, expected, `${op} on ${this.where}`, (err) => this.toStoreError(err, `reading ${key}`));
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const k = this.objectKey(key);
    try {
      return { size: await this.sizeOf(key, k) };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return null;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }> {
    validatePrefix(prefix);
    let token: string | undefined;
    do {
      const res = await this.call(`list ${prefix || '(all)'}`, (c) =>
        c.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base + prefix, MaxKeys: this.pageSize, ...(token !== undefined ? { ContinuationToken: token } : {}) })),
      );
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.base)) continue;
        const key = o.Key.slice(this.base.length);
        if (!isValidKey(key) || !key.startsWith(prefix)) continue; // foreign objects (e.g. "dir/" markers)
        yield { key, size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date(0) };
      }
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(key: string): Promise<void> {
    const k = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: k }));
    } catch (err) {
      if (isMissing(err)) return;
      throw this.toStoreError(err, `delete ${key}`);
    }
  }

  async createUpload(key: string, opts: UploadOptions = {}): Promise<S3Upload> {
    const k = this.objectKey(key);
    const size = opts.size;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) throw new UploadStateError(`upload of ${key}: invalid announced size ${size}`);
    return new S3Upload(this, key, k, size, this.partSize);
  }

  async createMultipart(k: string, key: string): Promise<string> {
    const res = await this.call(`upload ${key}`, (c) => c.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: k, ContentType: 'application/octet-stream' })));
    if (!res.UploadId) throw new ObjectStoreError(`upload ${key} on ${this.where}: the service returned no upload id`);
    return res.UploadId;
  }

  async uploadPart(k: string, key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const res = await this.call(`upload ${key} (part ${partNumber})`, (c) =>
      c.send(new UploadPartCommand({ Bucket: this.bucket, Key: k, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length })),
    );
    if (!res.ETag) throw new ObjectStoreError(`upload ${key} (part ${partNumber}) on ${this.where}: the service returned no ETag`);
    return res.ETag;
  }

  async completeMultipart(k: string, key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    await this.call(`commit ${key}`, (c) => c.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: k, UploadId: uploadId, MultipartUpload: { Parts: parts } })));
  }

  /** Idempotent: an upload already aborted or completed is not an error. */
  async abortMultipart(k: string, key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: k, UploadId: uploadId }));
    } catch (err) {
      if (nameOf(err) === 'NoSuchUpload' || statusOf(err) === 404) return;
      throw this.toStoreError(err, `abort upload of ${key}`);
    }
  }

  /** Bytes and last write of an upload's parts (ListParts, paginated). */
  private async partsOf(k: string, uploadId: string): Promise<{ bytes: number; lastWrite: number }> {
    let bytes = 0;
    let lastWrite = 0;
    let marker: string | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await this.call(`purge (list parts of ${k})`, (c) =>
        c.send(new ListPartsCommand({ Bucket: this.bucket, Key: k, UploadId: uploadId, MaxParts: this.pageSize, ...(marker !== undefined ? { PartNumberMarker: marker } : {}) })),
      );
      for (const p of res.Parts ?? []) {
        bytes += p.Size ?? 0;
        lastWrite = Math.max(lastWrite, p.LastModified?.getTime() ?? 0);
      }
      if (res.IsTruncated !== true || !res.NextPartNumberMarker || res.NextPartNumberMarker === marker) break;
      marker = res.NextPartNumberMarker;
    }
    return { bytes, lastWrite };
  }

  async purgeTemporary(olderThan: Date): Promise<{ removed: number; bytes: number }> {
    const out = { removed: 0, bytes: 0 };
    const cutoff = olderThan.getTime();
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const res = await this.call('purge (list multipart uploads)', (c) =>
        c.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.base,
            MaxUploads: this.pageSize,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        ),
      );
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Key.startsWith(this.base)) continue;
        // Without a prefix the bucket may be shared: only uploads of keys this store could have written.
        if (this.base === '' && !isValidKey(u.Key)) continue;
        if ((u.Initiated?.getTime() ?? Infinity) >= cutoff) continue; // started recently: maybe in progress
        // Best effort: an upload whose parts cannot be listed counts 0 bytes.
        const parts = await this.partsOf(u.Key, u.UploadId).catch(() => null);
        if (parts && parts.lastWrite >= cutoff) continue; // still being written to
        await this.abortMultipart(u.Key, u.Key.slice(this.base.length), u.UploadId);
        out.removed++;
        out.bytes += parts?.bytes ?? 0;
      }
      if (res.IsTruncated !== true) break;
      const next = [res.NextKeyMarker || undefined, res.NextUploadIdMarker || undefined] as const;
      if (next[0] === undefined || (next[0] === keyMarker && next[1] === uploadIdMarker)) break; // no progress: never loop forever
      [keyMarker, uploadIdMarker] = next;
    }
    return out;
  }
}

/**
 * One streamed write (see the file comment). Chunks are kept by reference until a part is
 * full; the part is then cut at exactly `partSize` bytes, copied into one buffer and sent
 * in the background while the next part fills. `write` waits for the part in flight
 * before sending the next, so at most one part is uploading and one filling.
 */
export class S3Upload implements ObjectUpload {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inflightBytes = 0;
  private written = 0;
  /** More bytes were written than announced: they are dropped and commit refuses. */
  private overflow = false;
  /** Announced to fit in one part: everything goes out in one PutObject. */
  private readonly single: boolean;
  private uploadId: string | null = null;
  private nextPart = 1;
  private readonly parts: CompletedPart[] = [];
  /** The part being sent; never rejects (failures land in `failure`). */
  private inflight: Promise<void> | null = null;
  private failure: { readonly err: ObjectStoreError } | null = null;
  private state: 'open' | 'committing' | 'ended' = 'open';
  private committing: Promise<void> | null = null;
  private maxHeld = 0;

  constructor(
    private readonly store: S3StoreImpl,
    readonly key: string,
    private readonly bucketKey: string,
    private readonly size: number | undefined,
    private readonly partSize: number,
  ) {
    this.single = size !== undefined && size <= partSize;
  }

  /** Instrumentation: the most bytes this upload has held at once (buffers it references or copied). */
  get maxBufferedBytes(): number {
    return this.maxHeld;
  }

  /** Instrumentation: parts sent so far (0 while everything fits in one PutObject). */
  get partsSent(): number {
    return this.parts.length;
  }

  private note(extra = 0): void {
    this.maxHeld = Math.max(this.maxHeld, this.pendingBytes + this.inflightBytes + extra);
  }

  private ended(): UploadStateError {
    return new UploadStateError(`upload of ${this.key} has ended`);
  }

  /** Throws the failure of a part sent in the background, if any (a method: it changes behind TypeScript's back). */
  private throwIfFailed(): void {
    if (this.failure) throw this.failure.err;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.state !== 'open') throw this.ended();
    this.throwIfFailed();
    if (chunk.length === 0) return;
    this.written += chunk.length;
    if (this.overflow) return;
    if (this.size !== undefined && this.written > this.size) {
      // commit will refuse: stop holding or sending anything.
      this.overflow = true;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.note();
    if (this.single) return;
    // Strictly more than a part: an upload of exactly partSize bytes still goes out in one PutObject.
    while (this.pendingBytes > this.partSize) {
      await this.settle();
      if (this.state !== 'open') throw this.ended();
      this.throwIfFailed();
      this.sendPart(this.take(this.partSize));
    }
  }

  /** Waits until no part is in flight. Never rejects. */
  private async settle(): Promise<void> {
    while (this.inflight !== null) await this.inflight;
  }

  /** The first `n` pending bytes as one buffer (a copy unless they are one chunk already). */
  private take(n: number): Buffer {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.pending[0]!;
      if (c.length <= need) {
        out.push(c);
        this.pending.shift();
        need -= c.length;
      } else {
        out.push(c.subarray(0, need));
        this.pending[0] = c.subarray(need);
        need = 0;
      }
    }
    this.pendingBytes -= n;
    if (out.length === 1) return out[0]!;
    this.note(2 * n); // the chunks and their copy, for a moment
    return Buffer.concat(out, n);
  }

  /** Starts sending `body` as the next part, creating the multipart upload first if needed. */
  private sendPart(body: Buffer): void {
    const partNumber = this.nextPart++;
    this.inflightBytes = body.length;
    this.note();
    this.inflight = (async () => {
      try {
        if (partNumber > MAX_PARTS) throw new ObjectStoreError(`upload of ${this.key}: more than ${MAX_PARTS} parts of ${this.partSize} bytes`);
        this.uploadId ??= await this.store.createMultipart(this.bucketKey, this.key);
        if (this.state === 'ended') return; // aborted meanwhile: abort() removes the upload
        const etag = await this.store.uploadPart(this.bucketKey, this.key, this.uploadId, partNumber, body);
        this.parts.push({ PartNumber: partNumber, ETag: etag });
      } catch (err) {
        this.failure ??= { err: this.store.toStoreError(err, `upload ${this.key}`) };
        // The upload can no longer succeed: remove what it sent now rather than on abort.
        const id = this.uploadId;
        this.uploadId = null;
        if (id !== null) await this.store.abortMultipart(this.bucketKey, this.key, id).catch(() => undefined);
      } finally {
        this.inflightBytes = 0;
        this.inflight = null;
      }
    })();
  }

  commit(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.ended());
    this.state = 'committing';
    this.committing = this.publish();
    return this.committing;
  }

  private async publish(): Promise<void> {
    try {
      await this.settle();
      this.throwIfFailed();
      if (this.overflow || (this.size !== undefined && this.written !== this.size)) {
        throw new UploadStateError(`upload of ${this.key} has ${this.written} bytes, ${this.size} were announced`);
      }
      if (this.nextPart === 1) {
        // Everything fits in one part: one PutObject.
        const body = this.pendingBytes === 0 ? Buffer.alloc(0) : this.take(this.pendingBytes);
        this.pending = [];
        await this.store.putObject(this.bucketKey, this.key, body);
        return;
      }
      if (this.pendingBytes > 0) {
        this.sendPart(this.take(this.pendingBytes));
        await this.settle();
        this.throwIfFailed();
      }
      const parts = [...this.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.store.completeMultipart(this.bucketKey, this.key, this.uploadId!, parts);
      this.uploadId = null; // completed: nothing left to abort
    } catch (err) {
      await this.discard();
      throw err instanceof ObjectStoreError ? err : this.store.toStoreError(err, `commit ${this.key}`);
    } finally {
      this.state = 'ended';
      this.pending = [];
      this.pendingBytes = 0;
    }
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

  /** Drops the buffers, waits for the part in flight and aborts the multipart upload; never throws. */
  private async discard(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.settle();
    const id = this.uploadId;
    this.uploadId = null;
    // If even this fails (store unreachable), purgeTemporary removes the upload later.
    if (id !== null) await this.store.abortMultipart(this.bucketKey, this.key, id).catch(() => undefined);
  }
}
