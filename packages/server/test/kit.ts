// Over 400 lines: the one test kit of the server tests (servers, clients, factories, backends' views).
/**
 * Test kit: a real HTTPS server on an ephemeral port over a real SQLite file in a temp
 * dir (or, with COFFRE_TEST_BACKEND=postgres-s3, a fresh PostgreSQL database and S3 prefix:
 * test/backends.ts), a pinned HTTPS client, and factories for customers, machines, packs
 * and snapshots.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import type { IncomingHttpHeaders } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListPartsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import {
  BlobCodec,
  chunkId,
  deriveSubkeys,
  encodeRefs,
  newMasterKey,
  newSnapshotId,
  PackBuilder,
  sealManifest,
  type ApiErrorBody,
  type ChunkId,
  type EnrollResponse,
  type PackEntry,
  type PackId,
  type SnapshotCommitRequest,
  type SnapshotId,
  type Subkeys,
} from '@coffre/core';
import { adminCreateCustomer, adminCreateEnrollToken, openAdmin, type AdminContext } from '../src/admin/index.js';
import type { LogEntry } from '../src/log.js';
import { startServer, type RunningServer, type StartServerOptions } from '../src/server.js';
import { dataDirPaths, type ServerSettings } from '../src/datadir.js';
import { openDatabase, type Database, type DatabaseTarget, type MigrationReport } from '../src/db/database.js';
import type { JobContext } from '../src/jobs/job.js';
import type { ObjectStore } from '../src/store/object-store.js';
import type { S3Store } from '../src/store/s3-store.js';
import { dropDatabase, freshDatabaseUrl, onPostgresS3, prepareDataDir, testS3Client } from './backends.js';

export async function tempDir(prefix = 'coffre-server-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A clock tests move by hand; shared by the server and the admin context. */
export class TestClock {
  constructor(private t = Date.parse('2026-03-02T09:00:00.000Z')) {}
  readonly now = (): Date => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
  /** Jumps to a given instant (forward only: the server never sees time go back). */
  set(d: Date): void {
    if (d.getTime() < this.t) throw new Error(`the test clock only moves forward (${new Date(this.t).toISOString()} → ${d.toISOString()})`);
    this.t = d.getTime();
  }
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  readonly token?: string;
  readonly json?: unknown;
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
}

/** One HTTPS request, trusting only `certPem` (the server's self-signed certificate). */
export function httpsRequest(baseUrl: string, certPem: string, method: string, urlPath: string, opts: RequestOptions = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  let payload: Buffer | undefined;
  if (opts.json !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.json));
    headers['content-type'] ??= 'application/json';
  } else if (opts.body !== undefined) {
    payload = opts.body;
    headers['content-type'] ??= 'application/octet-stream';
  }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(urlPath, baseUrl), { method, headers, ca: certPem, agent: false }, (res) => {
      collectResponse(res).then(resolve, reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface TestServer {
  readonly server: RunningServer;
  readonly admin: AdminContext;
  readonly clock: TestClock;
  readonly logs: LogEntry[];
  readonly dataDir: string;
  request(method: string, urlPath: string, opts?: RequestOptions): Promise<HttpResponse>;
  close(): Promise<void>;
}

/** Starts a server (real HTTPS, real SQLite, temp dir); `close` removes everything. */
export async function testServer(opts: Pick<StartServerOptions, 'wrapStore' | 'consoleDir'> = {}): Promise<TestServer> {
  const tmp = await tempDir();
  const clock = new TestClock();
  const logs: LogEntry[] = [];
  const dataDir = path.join(tmp.dir, 'data');
  await prepareDataDir(dataDir);
  const server = await startServer({ dataDir, listen: '127.0.0.1:0', clock: clock.now, log: (e) => logs.push(e), runJobs: false, ...opts });
  const admin = await openAdmin(dataDir, clock.now);
  return {
    server,
    admin,
    clock,
    logs,
    dataDir,
    request: (method, urlPath, o) => httpsRequest(server.url, server.certPem, method, `/api/v1${urlPath}`, o),
    close: async () => {
      await server.close();
      await admin.close();
      const database = admin.dataDir.settings.database;
      if (database !== null) await dropDatabase(database); // a fresh one per test server (prepareDataDir)
      await tmp.cleanup();
    },
  };
}

export function assertError(res: HttpResponse, status: number, code: string): ApiErrorBody['error'] {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.body.toString('utf8').slice(0, 500)}`);
  const body = res.json<ApiErrorBody>();
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.messageFr, 'string');
  assert.equal(body.error.requestId, res.headers['x-request-id']);
  return body.error;
}

let customerSeq = 0;
export async function buildCustomer(ts: TestServer, name = `Cabinet ${++customerSeq}`): Promise<{ id: string; name: string }> {
  return adminCreateCustomer(ts.admin, name);
}

export interface TestMachine extends EnrollResponse {
  /** Authenticated request as this machine. */
  request(method: string, urlPath: string, opts?: Omit<RequestOptions, 'token'>): Promise<HttpResponse>;
}

let machineSeq = 0;
export async function enrollMachine(ts: TestServer, customerName: string, machineName = `poste-${++machineSeq}`): Promise<TestMachine> {
  const { token } = await adminCreateEnrollToken(ts.admin, customerName);
  const res = await ts.request('POST', '/enroll', { json: { token, machineName, hostname: 'host.local', os: 'linux', agentVersion: '0.1.0' } });
  assert.equal(res.status, 200, res.body.toString());
  const e = res.json<EnrollResponse>();
  return { ...e, request: (m, p, o) => ts.request(m, p, { ...o, token: e.credential }) };
}

/** Keys of one test repository (what an agent holds after unlocking). */
export function testKeys(): Subkeys {
  return deriveSubkeys(newMasterKey());
}

export interface TestPack {
  readonly id: PackId;
  readonly data: Buffer;
  readonly entries: PackEntry[];
  readonly chunkIds: ChunkId[];
}

/** A valid pack of real encrypted blobs; `plains` lets two packs share chunks. */
export function buildPack(keys: Subkeys, plains: readonly Buffer[] = [randomBytes(3000), randomBytes(5000), randomBytes(100)]): TestPack {
  const codec = new BlobCodec(keys.encryption);
  const builder = new PackBuilder();
  for (const plain of plains) {
    const id = chunkId(keys.chunkId, plain);
    builder.add(id, codec.encode(id, plain));
  }
  const { id, data, entries } = builder.finish();
  return { id, data, entries, chunkIds: entries.map((e) => e.id) };
}

export function snapshotRequest(
  keys: Subkeys,
  machineId: string,
  chunkIds: readonly ChunkId[],
  opts: { parent?: SnapshotId | null; id?: SnapshotId; logicalSize?: number } = {},
): SnapshotCommitRequest {
  const refs = encodeRefs(chunkIds);
  const id = opts.id ?? newSnapshotId();
  const manifest = sealManifest(keys, {
    id,
    machineId,
    parent: opts.parent ?? null,
    refs,
    logicalSize: opts.logicalSize ?? 12345,
    secret: {
      v: 1,
      root: chunkIds[0]!,
      hostname: 'host.local',
      paths: ['/data'],
      tags: [],
      clientTime: '1999-01-01T00:00:00.000Z',
      stats: { files: 1, dirs: 1, symlinks: 0, bytes: 8100, newFiles: 1, changedFiles: 0, unchangedFiles: 0, addedChunks: chunkIds.length, addedBytes: 8100, skipped: 0, durationMs: 5 },
      agentVersion: '0.1.0',
    },
  });
  return { manifest, refs: refs.toString('base64') };
}

/** Every file under `dir` (relative paths, sorted), dot-files included; [] if `dir` does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true });
    return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Polls `check` until it returns true (or fails after `timeoutMs`). */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function countRows(ts: TestServer, table: 'packs' | 'chunks' | 'snapshots' | 'machines' | 'key_slots'): Promise<number> {
  const { n } = await ts.admin.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(n);
}

/** Reads a whole HTTP response into an HttpResponse. */
export function collectResponse(res: IncomingMessage): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => {
      const body = Buffer.concat(chunks);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body.toString('utf8')) as T });
    });
  });
}

/** A fresh test server with one customer and one enrolled machine: the usual set-up. */
export async function serverWithMachine(): Promise<{ ts: TestServer; m: TestMachine }> {
  const ts = await testServer();
  return { ts, m: await enrollMachine(ts, (await buildCustomer(ts)).name) };
}

export const CLI_ENTRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli.js');

/** Runs the coffre-server CLI as a child process (COFFRE_DEBUG off, so errors are one line). */
export function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], { env: { ...process.env, COFFRE_DEBUG: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * What a server job gets when run against the test server (as `coffre-server job run` would
 * next to it): its database, store, audit trail, clock and settings (optionally changed), no
 * SMTP server.
 */
export function jobContext(ts: TestServer, settings: Partial<ServerSettings> = {}): JobContext {
  return {
    db: ts.admin.db,
    store: ts.admin.store,
    audit: ts.admin.audit,
    clock: ts.clock.now,
    settings: { ...ts.admin.dataDir.settings, ...settings },
    log: (e) => void ts.logs.push(e),
    mailer: null,
    keys: ts.admin.keys,
    fingerprint: ts.server.fingerprint,
  };
}

/** The S3 store `store` is, or null (the filesystem store, a test double…). */
export function s3StoreOf(store: ObjectStore): S3Store | null {
  const s = store as Partial<S3Store>;
  return typeof s.bucket === 'string' && typeof s.prefix === 'string' && typeof s.partSize === 'number' && typeof s.describe === 'function' ? (store as S3Store) : null;
}

/** What an upload in progress (or abandoned) leaves in the store until it is committed or aborted. */
export interface PendingUpload {
  /** The temp file (relative to the objects directory), or `KEY?uploadId=ID` of a multipart upload. */
  readonly name: string;
  readonly bytes: number;
  /** What the store's purgeTemporary compares with its cutoff: the file's mtime, or the later of the upload's start and its last part. */
  readonly lastWrite: Date;
}

/** The S3 multipart uploads in progress under `store`'s prefix, with their parts' sizes and times. */
async function multipartUploads(store: S3Store): Promise<PendingUpload[]> {
  const base = store.prefix === '' ? '' : `${store.prefix}/`;
  const s3 = testS3Client();
  try {
    const out: PendingUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: store.bucket, Prefix: base, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of res.Uploads ?? []) {
        if (!u.Key?.startsWith(base) || !u.UploadId) continue;
        let bytes = 0;
        let last = u.Initiated?.getTime() ?? 0;
        let marker: string | undefined;
        let gone = false;
        for (;;) {
          let parts;
          try {
            parts = await s3.send(new ListPartsCommand({ Bucket: store.bucket, Key: u.Key, UploadId: u.UploadId, PartNumberMarker: marker }));
          } catch (err) {
            if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
            gone = true; // completed or aborted since it was listed
            break;
          }
          for (const p of parts.Parts ?? []) {
            bytes += p.Size ?? 0;
            last = Math.max(last, p.LastModified?.getTime() ?? 0);
          }
          if (parts.IsTruncated !== true || !parts.NextPartNumberMarker) break;
          marker = parts.NextPartNumberMarker;
        }
        if (!gone) out.push({ name: `${u.Key.slice(base.length)}?uploadId=${u.UploadId}`, bytes, lastWrite: new Date(last) });
      }
      if (res.IsTruncated !== true || !res.NextKeyMarker) break;
      [keyMarker, uploadIdMarker] = [res.NextKeyMarker, res.NextUploadIdMarker];
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  } finally {
    s3.destroy();
  }
}

/**
 * Uploads in progress (or left behind) in the test server's store: on the filesystem store
 * its dot-prefixed temp files, on S3 the bucket's in-progress multipart uploads under the
 * store's prefix. A store that buffers a small upload and sends it in one request has
 * nothing pending meanwhile.
 */
export async function pendingUploads(ts: TestServer): Promise<PendingUpload[]> {
  const s3 = s3StoreOf(ts.admin.store);
  if (s3) return multipartUploads(s3);
  const root = dataDirPaths(ts.dataDir).objects;
  const out: PendingUpload[] = [];
  for (const f of (await filesUnder(root)).filter((f) => path.basename(f).startsWith('.'))) {
    try {
      const s = await stat(path.join(root, f));
      out.push({ name: f, bytes: s.size, lastWrite: s.mtime });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // committed or removed meanwhile
    }
  }
  return out;
}

/**
 * Leaves `size` bytes of an upload of `key` that never completes, as a crashed server would:
 * a temp file next to where the object would go (named as the filesystem store names them),
 * or a multipart upload with one part. Returns its name as `pendingUploads` lists it.
 */
export async function abandonUpload(ts: TestServer, key: string, size: number): Promise<string> {
  const store = s3StoreOf(ts.admin.store);
  if (store) {
    const bucketKey = store.prefix === '' ? key : `${store.prefix}/${key}`;
    const s3 = testS3Client();
    try {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: store.bucket, Key: bucketKey }));
      await s3.send(new UploadPartCommand({ Bucket: store.bucket, Key: bucketKey, UploadId, PartNumber: 1, Body: randomBytes(size), ContentLength: size }));
      return `${key}?uploadId=${UploadId}`;
    } finally {
      s3.destroy();
    }
  }
  const rel = path.posix.join(path.posix.dirname(key), `.tmp-${path.posix.basename(key)}-${randomBytes(6).toString('hex')}`);
  const file = path.join(dataDirPaths(ts.dataDir).objects, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, randomBytes(size));
  return rel;
}

/** The database engine of the selected backend (test/backends.ts). */
export type Engine = 'sqlite' | 'postgres';
export const TEST_ENGINE: Engine = onPostgresS3 ? 'postgres' : 'sqlite';

/** Where a fresh, empty test database is (nothing opened yet); `drop` removes it. */
export async function testDatabaseTarget(engine: Engine = TEST_ENGINE): Promise<{ engine: Engine; target: DatabaseTarget; drop(): Promise<void> }> {
  if (engine === 'postgres') {
    const url = await freshDatabaseUrl();
    return { engine, target: { kind: 'postgres', url }, drop: () => dropDatabase(url) };
  }
  const tmp = await tempDir('coffre-db-test-');
  return { engine, target: { kind: 'sqlite', file: path.join(tmp.dir, 'coffre.db') }, drop: tmp.cleanup };
}

export interface TestDatabase {
  readonly engine: Engine;
  readonly target: DatabaseTarget;
  /** Opened (and migrated) by `testDatabase`. */
  readonly db: Database;
  readonly migrations: MigrationReport;
  /** Another handle on the same database (as another server process would have); closed by `close`. */
  open(): Promise<{ db: Database; migrations: MigrationReport }>;
  /** Closes every handle and removes the database. */
  close(): Promise<void>;
}

/** A fresh metadata database of the selected engine (or the one given), opened with `openDatabase`. */
export async function testDatabase(engine: Engine = TEST_ENGINE): Promise<TestDatabase> {
  const t = await testDatabaseTarget(engine);
  const handles: Database[] = [];
  const open = async (): Promise<{ db: Database; migrations: MigrationReport }> => {
    const opened = await openDatabase(t.target);
    handles.push(opened.db);
    return opened;
  };
  let first: { db: Database; migrations: MigrationReport };
  try {
    first = await open();
  } catch (err) {
    await t.drop().catch(() => undefined);
    throw err;
  }
  return {
    engine,
    target: t.target,
    db: first.db,
    migrations: first.migrations,
    open,
    close: async () => {
      for (const h of handles.splice(0)) await h.destroy().catch(() => undefined); // a handle the test destroyed already
      await t.drop();
    },
  };
}

/** Uploads a small pack and commits a snapshot of it as machine `m` (what a backup run leaves); returns its id. */
export async function commitTestSnapshot(m: TestMachine, keys: Subkeys = testKeys()): Promise<string> {
  const pack = buildPack(keys);
  const put = await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
  assert.equal(put.status, 200, put.body.toString());
  const req = snapshotRequest(keys, m.machineId, pack.chunkIds);
  const res = await m.request('POST', '/snapshots', { json: req });
  assert.equal(res.status, 201, res.body.toString());
  return req.manifest.id;
}
