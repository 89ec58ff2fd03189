import { mkdir } from 'node:fs/promises';
import { fileAuditHead, storeAuditHead, type AuditHead } from '../audit/head.js';
import { loadServerKeys, type ServerKeys } from '../auth/server-key.js';
import type { DataDir } from '../datadir.js';
import { describeDatabase, openDatabase, openPgLockHandle, type Database, type MigrationReport } from '../db/database.js';
import { sectionLocks, type SectionLocks } from '../db/engine.js';
import { createFsStore } from '../store/fs-store.js';
import type { ObjectStore } from '../store/object-store.js';
import { createS3Store } from '../store/s3-store.js';
import { describeStore, resolveBackends, storeIdentity, type BackendOverrides, type BackendTargets, type StoreTarget } from './config.js';
import { checkInstallation, InstallationMismatchError, readInstallationMarker } from './installation.js';

/**
 * A backend cannot be used: unreachable, refused the credentials, or misconfigured. One
 * line naming which backend and where (never a password or secret key); the CLI exits 3.
 */
export class BackendError extends Error {
  override readonly name = 'BackendError';
  constructor(
    readonly which: 'database' | 'store' | 'secrets',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a server or a command works on. */
export interface Backends {
  readonly db: Database;
  readonly store: ObjectStore;
  readonly targets: BackendTargets;
  readonly keys: ServerKeys;
  readonly audit: AuditHead;
  readonly installationId: string;
  /** Mutual exclusion for slow sections outside transactions (snapshot commits), across instances. */
  readonly locks: SectionLocks;
  readonly migrations: MigrationReport;
  /** The database and store for messages: the file or the URL without its password. */
  readonly where: { readonly database: string; readonly store: string };
  close(): Promise<void>;
}

function firstLine(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const msg = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 300) : String(err);
  return typeof code === 'string' && code !== '' && !msg.includes(code) ? `${msg} (${code})` : msg;
}

/** Releases what a store holds (the S3 client's sockets); the filesystem store holds nothing. */
function destroyStore(store: ObjectStore): void {
  (store as Partial<{ destroy(): void }>).destroy?.();
}

/** The object store of a target (no I/O yet). */
export async function createStore(t: StoreTarget): Promise<ObjectStore> {
  if (t.kind === 'fs') {
    await mkdir(t.root, { recursive: true, mode: 0o700 });
    return createFsStore(t.root);
  }
  return createS3Store({ bucket: t.bucket, prefix: t.prefix, region: t.region, ...(t.endpoint ? { endpoint: t.endpoint, forcePathStyle: true } : {}) });
}

/**
 * Opens the database (migrating it) and the object store a data directory is configured
 * for (command line > environment > server.json > embedded), checks that they and the
 * directory's server key belong to one installation, and gives the audit head's place.
 * Each failure is a BackendError naming the backend; nothing is left open after one.
 */
export async function openBackends(dir: DataDir, overrides: BackendOverrides = {}, opts: { wrapStore?: (s: ObjectStore) => ObjectStore } = {}): Promise<Backends> {
  const targets = resolveBackends(dir.paths, dir.settings, overrides);
  const where = { database: describeDatabase(targets.database), store: describeStore(targets.store), storeIdentity: storeIdentity(targets.store) };
  const keys = await loadServerKeys(dir.paths.secrets);

  let baseStore: ObjectStore;
  try {
    baseStore = await createStore(targets.store);
    await readInstallationMarker(baseStore); // reachable, bucket exists, credentials accepted
  } catch (err) {
    throw new BackendError('store', `cannot use the object store ${where.store}: ${firstLine(err)}`, { cause: err });
  }
  const store = opts.wrapStore ? opts.wrapStore(baseStore) : baseStore;

  let opened: { db: Database; migrations: MigrationReport };
  try {
    opened = await openDatabase(targets.database);
  } catch (err) {
    throw new BackendError('database', `cannot use the database ${where.database}: ${firstLine(err)}`, { cause: err });
  }
  const { db, migrations } = opened;
  try {
    const installationId = await checkInstallation(db, baseStore, keys, where);
    const audit = targets.database.kind === 'sqlite' ? fileAuditHead(dir.paths.auditHead) : storeAuditHead(baseStore, where.store);
    const lockDb = targets.database.kind === 'postgres' ? openPgLockHandle(targets.database.url) : null;
    const locks = sectionLocks(db, lockDb ?? db);
    const close = async (): Promise<void> => {
      await lockDb?.destroy();
      await db.destroy();
      destroyStore(baseStore);
    };
    return { db, store, targets, keys, audit, installationId, migrations, where, locks, close };
  } catch (err) {
    await db.destroy().catch(() => undefined);
    destroyStore(baseStore);
    if (err instanceof InstallationMismatchError) throw new BackendError(err.which, err.message, { cause: err });
    throw new BackendError('database', `cannot use the database ${where.database} with the store ${where.store}: ${firstLine(err)}`, { cause: err });
  }
}
