import { randomUUID } from 'node:crypto';
import type { ServerKeys } from '../auth/server-key.js';
import type { Database } from '../db/database.js';
import { createInstallation, getInstallation, markInstallationMarkerWritten } from '../db/queries/installation.js';
import { isNotFound, type ObjectStore } from '../store/object-store.js';

/** The marker object at the root of the store: which installation the store's data belong to. */
export const INSTALLATION_MARKER_KEY = 'coffre-installation.json';

/** Present while `migrate-storage` copies into the store: no server may use it before the copy completes. */
export const MIGRATION_MARKER_KEY = 'coffre-migration-in-progress.json';

export interface InstallationMarker {
  readonly installationId: string;
  readonly createdAt: string;
}

/** The database, the store and the data directory do not belong together; nothing was changed. */
export class InstallationMismatchError extends Error {
  override readonly name = 'InstallationMismatchError';
  constructor(
    readonly which: 'database' | 'store' | 'secrets',
    message: string,
  ) {
    super(message);
  }
}

export async function readInstallationMarker(store: ObjectStore): Promise<InstallationMarker | null> {
  let raw: Buffer;
  try {
    raw = await store.get(INSTALLATION_MARKER_KEY);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  const v = JSON.parse(raw.toString('utf8')) as Partial<InstallationMarker>;
  if (typeof v.installationId !== 'string') throw new Error(`${INSTALLATION_MARKER_KEY} is damaged`);
  return { installationId: v.installationId, createdAt: String(v.createdAt ?? '') };
}

export async function writeInstallationMarker(store: ObjectStore, m: InstallationMarker): Promise<void> {
  await store.put(INSTALLATION_MARKER_KEY, Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
}

/**
 * Checks that the database, the object store and this data directory's server key belong
 * to one installation, and makes a new installation of an empty database and store. The
 * database decides: its `installation` row names the installation, the one store its
 * objects are in (`storeIdentity`: "fs", or "s3://bucket/prefix") and the server key's check
 * value; the store carries the id in a marker object. Refused, with what to check:
 * - a store holding another installation's marker (a bucket or prefix already in use);
 * - a store other than the installation's (a typo in the bucket or prefix, a missing store
 *   URL that falls back to the data directory's objects/);
 * - the installation's store without its marker once it was written (a store emptied or
 *   replaced by mistake);
 * - a server key other than the one the installation's other instances use;
 * - a store into which migrate-storage has not finished copying.
 * A database and store from before installation markers (an embedded data directory of an
 * earlier version) become an installation at their first start.
 */
export async function checkInstallation(
  db: Database,
  store: ObjectStore,
  keys: ServerKeys,
  where: { database: string; store: string; storeIdentity: string },
  now: Date = new Date(),
): Promise<string> {
  const marker = await readInstallationMarker(store);
  if ((await store.stat(MIGRATION_MARKER_KEY)) !== null) {
    throw new InstallationMismatchError('store', `a coffre-server migrate-storage into the object store ${where.store} has not completed: run it again until it succeeds (nothing was changed)`);
  }
  let row = await getInstallation(db);
  if (!row) {
    if (marker) {
      throw new InstallationMismatchError(
        'store',
        `the object store ${where.store} already holds the data of another installation (${marker.installationId}) and the database ${where.database} is new: use another bucket or prefix, or that installation's database`,
      );
    }
    await createInstallation(db, { installationId: randomUUID(), serverKeyCheck: keys.checkValue(), storeIdentity: where.storeIdentity, markerWrittenAt: null, createdAt: now.toISOString() });
    row = (await getInstallation(db))!;
  }
  if (row.serverKeyCheck !== keys.checkValue()) {
    throw new InstallationMismatchError(
      'secrets',
      `this data directory's server key (secrets/server.key) is not the one installation ${row.installationId} uses: copy the secrets directory of an existing instance (every instance needs the same key)`,
    );
  }
  if (row.storeIdentity !== where.storeIdentity) {
    throw new InstallationMismatchError(
      'store',
      `the database ${where.database} belongs to installation ${row.installationId}, whose objects are in ${describeIdentity(row.storeIdentity)}, not in ${where.store}: check the store URL (nothing was changed)`,
    );
  }
  if (marker !== null) {
    if (marker.installationId !== row.installationId) {
      throw new InstallationMismatchError(
        'store',
        `the object store ${where.store} holds the data of installation ${marker.installationId}, but the database ${where.database} belongs to installation ${row.installationId}: check the bucket and prefix (nothing was changed)`,
      );
    }
    if (row.markerWrittenAt === null) await markInstallationMarkerWritten(db, now.toISOString());
  } else {
    if (row.markerWrittenAt !== null) {
      throw new InstallationMismatchError(
        'store',
        `the object store ${where.store} of installation ${row.installationId} has lost its installation marker (written ${row.markerWrittenAt}): a store emptied or replaced by mistake? (nothing was changed)`,
      );
    }
    await writeInstallationMarker(store, { installationId: row.installationId, createdAt: row.createdAt });
    await markInstallationMarkerWritten(db, now.toISOString());
  }
  return row.installationId;
}

function describeIdentity(identity: string): string {
  return identity === 'fs' ? "the data directory's objects/" : identity;
}
