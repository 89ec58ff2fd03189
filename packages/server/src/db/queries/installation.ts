import type { Database } from '../database.js';

export interface InstallationRow {
  readonly installationId: string;
  readonly serverKeyCheck: string;
  readonly storeIdentity: string;
  readonly markerWrittenAt: string | null;
  readonly createdAt: string;
}

/** The installation's one row (platform-wide), or null before the first start. */
export async function getInstallation(db: Database): Promise<InstallationRow | null> {
  const r = await db.selectFrom('installation').selectAll().where('id', '=', 1).executeTakeFirst();
  return r
    ? { installationId: r.installation_id, serverKeyCheck: r.server_key_check, storeIdentity: r.store_identity, markerWrittenAt: r.marker_written_at, createdAt: r.created_at }
    : null;
}

/** Creates the row unless another process just did (the first one wins; read it back). */
export async function createInstallation(db: Database, r: InstallationRow): Promise<void> {
  await db
    .insertInto('installation')
    .values({ id: 1, installation_id: r.installationId, server_key_check: r.serverKeyCheck, store_identity: r.storeIdentity, marker_written_at: r.markerWrittenAt, created_at: r.createdAt })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** The marker is in the installation's store since `at`. */
export async function markInstallationMarkerWritten(db: Database, at: string): Promise<void> {
  await db.updateTable('installation').set({ marker_written_at: at }).where('id', '=', 1).where('marker_written_at', 'is', null).execute();
}
