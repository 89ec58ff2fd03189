import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { fileAuditHead, storeAuditHead } from '../audit/head.js';
import { loadServerKeys } from '../auth/server-key.js';
import { initDataDir, recordBackendSettings, type DataDir } from '../datadir.js';
import { describeDatabase, openDatabase, type Database } from '../db/database.js';
import { countRows, deleteRow, dropSeedRows, indexedObjectKeys, pagedKeys, rowExists, snapshotRefsChecksums, sqliteTables, sqliteTableShape, streamRows, upsertRows, type TableShape } from '../db/queries/copy.js';
import { createInstallation, getInstallation, markInstallationMarkerWritten, type InstallationRow } from '../db/queries/installation.js';
import { PackStreamVerifier } from '../routes/packs/stream-verifier.js';
import type { ObjectStore } from '../store/object-store.js';
import { checkDatabaseUrl, describeStore, parseStoreUrl, resolveBackends, storeIdentity, type StoreTarget } from './config.js';
import { lockDataDir } from './dir-lock.js';
import { checkInstallation, INSTALLATION_MARKER_KEY, MIGRATION_MARKER_KEY, readInstallationMarker, writeInstallationMarker, type InstallationMarker } from './installation.js';
import { BackendError, createStore } from './open.js';

/**
 * `coffre-server migrate-storage`: copies an embedded installation (SQLite database and
 * filesystem store in its data directory) to PostgreSQL and an S3-compatible bucket, so
 * that a server started on those serves the same customers, people, credentials, audit
 * chain and snapshots, and agents keep working unchanged.
 *
 * The data directory's server.json then names the new database and store (and the S3
 * endpoint given by COFFRE_S3_ENDPOINT), so `start --data-dir DIR` alone uses them.
 *
 * Safe to interrupt and run again: objects already in the target with the right size are
 * not copied again (each was verified before its upload was committed), rows are upserted
 * by primary key. Until it completes, the target store carries a "migration in progress"
 * marker that makes servers refuse it. It refuses to run while a server uses the data
 * directory (its lock file), when the target belongs to another installation or holds
 * other data, and when a pack or reference list does not check out (nothing is copied for
 * it; the run fails and names it).
 */
export interface MigrateStorageOptions {
  readonly dataDir: string;
  readonly toDatabase: string;
  readonly toStore: string;
  /** Objects copied at once. */
  readonly concurrency?: number;
  readonly progress?: (p: MigrateProgress) => void;
  /** Test seam: runs after each object or table copied; throwing there simulates a kill. */
  readonly hook?: (step: 'object' | 'table', name: string) => void | Promise<void>;
}

export interface MigrateProgress {
  readonly phase: 'objects' | 'rows' | 'verify';
  readonly done: number;
  readonly total: number;
  readonly bytes: number;
}

export interface MigrateReport {
  readonly installationId: string;
  readonly from: { readonly database: string; readonly store: string };
  readonly to: { readonly database: string; readonly store: string };
  readonly objects: { readonly copied: number; readonly skipped: number; readonly bytes: number; readonly packsVerified: number; readonly refsVerified: number };
  readonly rows: Readonly<Record<string, number>>;
  readonly alreadyDone: boolean;
}

/** A pack or reference list that does not check out: nothing is copied for it. */
export class MigrationIntegrityError extends Error {
  override readonly name = 'MigrationIntegrityError';
}

/** Tables in an order where every row's references are copied before it (organisations: parents first). */
export const COPY_ORDER: readonly string[] = [
  'tiers',
  'sequences',
  'orgs',
  'customers',
  'users',
  'recovery_codes',
  'webauthn_credentials',
  'sessions',
  'auth_throttle',
  'access_reviews',
  'machines',
  'enroll_tokens',
  'repos',
  'key_slots',
  'packs',
  'chunks',
  'snapshots',
  'backup_runs',
  'machine_jobs',
  'alerts',
  'restore_tests',
  'outbox',
  'usage_daily',
  'upload_sessions',
  'gc_epochs',
  'pack_tombstones',
  'gc_orphans',
  'audit_anchor',
  'audit_log',
  'audit_signing_key',
  'audit_checkpoints',
  'sites',
  'site_state',
  'customer_sites',
  'site_authorisations',
  'site_changes',
  'replication_tokens',
  'replication_credentials',
  'replica_holds',
  'replicated_audit',
];
/** Not copied: who runs what now (leases, claimed job times) belongs to the running processes; the installation row is written first, on its own. */
export const NOT_COPIED: readonly string[] = ['installation', 'gc_lease', 'job_leases', 'job_ticks'];
const ORG_ORDER = "case type when 'operator' then 0 when 'reseller' then 1 else 2 end";

const PACK_KEY = /^packs\/([^/]+)\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
const REFS_KEY = /^snapshots\/([^/]+)\/([0-9a-f]+)\.refs$/;

export async function migrateStorage(opts: MigrateStorageOptions): Promise<MigrateReport> {
  const dir = await initDataDir(opts.dataDir);
  const toDatabase = checkDatabaseUrl(opts.toDatabase, '--to-database');
  parseStoreUrl(opts.toStore, '--to-store');
  const lock = await lockDataDir(dir.paths.root, 'migrate-storage');
  try {
    return await migrateLocked(dir, toDatabase, opts);
  } finally {
    await lock.release();
  }
}

async function migrateLocked(dir: DataDir, toDatabase: string, opts: MigrateStorageOptions): Promise<MigrateReport> {
  // The source is what the data directory itself says (server.json), never the environment:
  // the same environment variables may already name the target.
  const source = resolveBackends(dir.paths, dir.settings, {}, {});
  const target = resolveBackends(dir.paths, { database: null, store: null, s3Endpoint: dir.settings.s3Endpoint }, { database: toDatabase, store: opts.toStore });
  const to = { database: describeDatabase(target.database), store: describeStore(target.store) };
  if (source.database.kind === 'postgres' && source.database.url === toDatabase && dir.settings.store === (target.store as Extract<StoreTarget, { kind: 's3' }>).url) {
    return { installationId: '', from: to, to, objects: { copied: 0, skipped: 0, bytes: 0, packsVerified: 0, refsVerified: 0 }, rows: {}, alreadyDone: true };
  }
  if (source.database.kind !== 'sqlite' || source.store.kind !== 'fs') {
    throw new Error(`${dir.paths.root} is not an embedded installation (its server.json names ${describeDatabase(source.database)} and ${describeStore(source.store)}); migrate-storage copies an embedded one`);
  }
  const from = { database: describeDatabase(source.database), store: describeStore(source.store), storeIdentity: storeIdentity(source.store) };
  const keys = await loadServerKeys(dir.paths.secrets);
  const src = await openDatabase(source.database);
  try {
    const srcStore = await createStore(source.store);
    // An installation from before markers gets its id now (as its next start would).
    const installationId = await checkInstallation(src.db, srcStore, keys, from);
    const srcInstallation = (await getInstallation(src.db))!;

    let dstStore: ObjectStore;
    let dstMarker: InstallationMarker | null;
    try {
      dstStore = await createStore(target.store);
      dstMarker = await readInstallationMarker(dstStore);
    } catch (err) {
      throw new BackendError('store', `cannot use the object store ${to.store}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    // Refused before the target database is opened: opening it creates the schema there.
    if (dstMarker && dstMarker.installationId !== installationId) throw anotherInstallationsStore(to.store, dstMarker.installationId);
    const s3Endpoint = target.store.kind === 's3' && target.store.endpoint !== null ? target.store.endpoint : undefined;
    if (dstMarker && (await dstStore.stat(MIGRATION_MARKER_KEY)) === null) {
      // A migration of this installation completed there: the target is live (servers may be
      // running on it) and newer than this directory's copy. Nothing is copied over it; this
      // directory is only pointed at it (as the completed migration's own was).
      await recordBackendSettings(dir.paths, dir.settings, { database: toDatabase, store: opts.toStore, s3Endpoint });
      return { installationId, from, to, objects: { copied: 0, skipped: 0, bytes: 0, packsVerified: 0, refsVerified: 0 }, rows: {}, alreadyDone: true };
    }
    let dst: { db: Database };
    try {
      dst = await openDatabase(target.database);
    } catch (err) {
      throw new BackendError('database', `cannot use the database ${to.database}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    try {
      await claimTarget(dst.db, dstStore, { ...srcInstallation, storeIdentity: storeIdentity(target.store), markerWrittenAt: null }, to);
      const objects = await copyObjects(src.db, srcStore, dstStore, opts);
      const rows = await copyRows(src.db, dst.db, opts);
      // Every indexed object must be there: a management command that changed the source
      // during the copy (they are refused while it runs, but one may have started before)
      // would otherwise leave rows pointing at objects never copied.
      await checkObjectsPresent(dst.db, dstStore);
      // The audit head kept beside the embedded database goes to the shared store.
      const head = await fileAuditHead(dir.paths.auditHead).read();
      if (head) await storeAuditHead(dstStore, to.store).advance(head);
      // Done: the target becomes the installation's (servers accept it from now on), and
      // this directory names it (with the endpoint from COFFRE_S3_ENDPOINT, so later commands
      // given the directory alone find the bucket).
      await writeInstallationMarker(dstStore, { installationId, createdAt: srcInstallation.createdAt });
      await markInstallationMarkerWritten(dst.db, new Date().toISOString());
      await dstStore.delete(MIGRATION_MARKER_KEY);
      await recordBackendSettings(dir.paths, dir.settings, { database: toDatabase, store: opts.toStore, s3Endpoint });
      return { installationId, from, to, objects, rows, alreadyDone: false };
    } finally {
      await dst.db.destroy();
    }
  } finally {
    await src.db.destroy();
  }
}

/**
 * The target must be empty (a fresh schema) or this installation's own unfinished copy.
 * Marks it "migration in progress" before anything is written to it.
 */
async function claimTarget(db: Database, store: ObjectStore, installation: InstallationRow, to: { database: string; store: string }): Promise<void> {
  const marker = await readInstallationMarker(store);
  if (marker && marker.installationId !== installation.installationId) throw anotherInstallationsStore(to.store, marker.installationId);
  const row = await getInstallation(db);
  if (row && row.installationId !== installation.installationId) {
    throw new BackendError('database', `the database ${to.database} belongs to another installation (${row.installationId}); choose an empty database`);
  }
  if (!row) {
    const busy = (await countRows(db, 'customers')) + (await countRows(db, 'users')) + (await countRows(db, 'audit_log'));
    if (busy > 0) throw new BackendError('database', `the database ${to.database} already holds data; migrate-storage needs an empty database`);
    await store.put(MIGRATION_MARKER_KEY, Buffer.from(`${JSON.stringify({ installationId: installation.installationId, startedAt: new Date().toISOString() })}\n`));
    await dropSeedRows(db);
    await createInstallation(db, installation);
  } else {
    // Resuming: keep (or put back) the in-progress marker before anything else is written.
    await store.put(MIGRATION_MARKER_KEY, Buffer.from(`${JSON.stringify({ installationId: installation.installationId, startedAt: new Date().toISOString() })}\n`));
  }
}

/** Every pack row, tombstoned pack whose object is not deleted yet, and snapshot row of the target has its object in the target store. */
async function checkObjectsPresent(db: Database, store: ObjectStore): Promise<void> {
  const present = new Set<string>();
  for await (const o of store.list('')) present.add(o.key);
  const missing: string[] = [];
  for await (const key of indexedObjectKeys(db)) if (!present.has(key)) missing.push(key);
  if (missing.length > 0) {
    throw new Error(
      `${missing.length} indexed object(s) are not in the target store (first: ${missing.slice(0, 3).join(', ')}): the source changed during the copy (a management command?); run migrate-storage again`,
    );
  }
}

function anotherInstallationsStore(store: string, installationId: string): BackendError {
  return new BackendError('store', `the object store ${store} already holds the data of another installation (${installationId}); choose another bucket or prefix`);
}

async function copyObjects(db: Database, src: ObjectStore, dst: ObjectStore, opts: MigrateStorageOptions): Promise<MigrateReport['objects']> {
  const keys: { key: string; size: number }[] = [];
  for await (const o of src.list('')) {
    if (o.key === INSTALLATION_MARKER_KEY || o.key === MIGRATION_MARKER_KEY || o.key.startsWith('audit/')) continue;
    keys.push({ key: o.key, size: o.size });
  }
  keys.sort((a, b) => (a.key < b.key ? -1 : 1));
  const refsSums = await snapshotRefsChecksums(db);
  const total = keys.length;
  const r = { copied: 0, skipped: 0, bytes: 0, packsVerified: 0, refsVerified: 0 };
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= keys.length) return;
      const { key, size } = keys[i]!;
      const there = await dst.stat(key);
      if (there && there.size === size) {
        r.skipped++;
      } else {
        const kind = await copyOne(src, dst, key, size, refsSums);
        r.copied++;
        r.bytes += size;
        if (kind === 'pack') r.packsVerified++;
        if (kind === 'refs') r.refsVerified++;
      }
      done++;
      opts.progress?.({ phase: 'objects', done, total, bytes: r.bytes });
      await opts.hook?.('object', key);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return r;
}

/** Streams one object into the target, checking packs (id, header, every blob) and reference lists (their manifest's SHA-256) before the upload is committed. */
async function copyOne(src: ObjectStore, dst: ObjectStore, key: string, size: number, refsSums: ReadonlyMap<string, string>): Promise<'pack' | 'refs' | 'other'> {
  const pack = PACK_KEY.exec(key);
  const refs = REFS_KEY.exec(key);
  const verifier = pack ? new PackStreamVerifier(pack[3]!, size) : null;
  const hash = refs ? createHash('sha256') : null;
  const stream: Readable = await src.getStream(key);
  const upload = await dst.createUpload(key, { size });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (verifier) verifier.push(chunk);
      hash?.update(chunk);
      await upload.write(chunk);
    }
    if (verifier) {
      try {
        verifier.end();
      } catch (err) {
        throw new MigrationIntegrityError(`pack ${key} is damaged (${(err as Error).message}); not copied — run coffre-server job run verify`);
      }
    }
    if (hash && refs) {
      const want = refsSums.get(`${refs[1]}/${refs[2]}`);
      const got = hash.digest('hex');
      if (want !== undefined && want !== got) throw new MigrationIntegrityError(`reference list ${key} does not match its snapshot's manifest (SHA-256 ${got}, expected ${want}); not copied`);
    }
  } catch (err) {
    stream.destroy();
    await upload.abort();
    if (verifier && !(err instanceof MigrationIntegrityError) && (err as { name?: string }).name === 'CoffreError') {
      throw new MigrationIntegrityError(`pack ${key} is damaged (${(err as Error).message}); not copied — run coffre-server job run verify`);
    }
    throw err;
  }
  await upload.commit();
  return pack ? 'pack' : refs ? 'refs' : 'other';
}

async function copyRows(src: Database, dst: Database, opts: MigrateStorageOptions): Promise<Record<string, number>> {
  const tables = await sqliteTables(src);
  const unknown = tables.filter((t) => !COPY_ORDER.includes(t) && !NOT_COPIED.includes(t));
  if (unknown.length > 0) throw new Error(`migrate-storage does not know how to copy table(s) ${unknown.join(', ')} (update COPY_ORDER)`);
  const counts: Record<string, number> = {};
  const shapes = new Map<string, TableShape>();
  for (const table of COPY_ORDER) shapes.set(table, await sqliteTableShape(src, table));
  // Rows an interrupted earlier run copied that the source has lost since (children first),
  // before the upserts: a stale row could otherwise hold a unique value (an email, a name)
  // that the source now gives another row.
  for (const table of [...COPY_ORDER].reverse()) await dropRowsNotIn(src, dst, shapes.get(table)!);
  let done = 0;
  for (const table of COPY_ORDER) {
    const shape = shapes.get(table)!;
    const perBatch = Math.max(1, Math.floor(20_000 / shape.columns.length));
    let batch: Record<string, unknown>[] = [];
    for await (const row of streamRows(src, shape, table === 'orgs' ? ORG_ORDER : undefined)) {
      batch.push(row);
      if (batch.length >= perBatch) {
        await upsertRows(dst, shape, batch);
        batch = [];
      }
    }
    await upsertRows(dst, shape, batch);
    opts.progress?.({ phase: 'rows', done: ++done, total: COPY_ORDER.length, bytes: 0 });
    await opts.hook?.('table', table);
  }
  for (const table of COPY_ORDER) {
    counts[table] = await countRows(dst, table);
    const want = await countRows(src, table);
    if (counts[table] !== want) throw new Error(`table ${table}: ${counts[table]} rows in the target, ${want} in the source`);
  }
  return counts;
}

/** Rows an earlier, interrupted run copied that the source no longer has (it changed in between). */
async function dropRowsNotIn(src: Database, dst: Database, shape: TableShape): Promise<void> {
  if ((await countRows(dst, shape.table)) === 0) return;
  const gone: Record<string, unknown>[] = [];
  for await (const key of pagedKeys(dst, shape)) if (!(await rowExists(src, shape, key))) gone.push(key);
  for (const key of gone) await deleteRow(dst, shape, key);
}
