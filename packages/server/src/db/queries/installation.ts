import type { Database } from '../database.js';

export interface InstallationRow {
  readonly installationId: string;
  readonly serverKeyCheck: string;
  readonly createdAt: string;
}

/** The installation's one row (platform-wide), or null before the first start. */
export async function getInstallation(db: Database): Promise<InstallationRow | null> {
  const r = await db.selectFrom('installation').select(['installation_id', 'server_key_check', 'created_at']).where('id', '=', 1).executeTakeFirst();
  return r ? { installationId: r.installation_id, serverKeyCheck: r.server_key_check, createdAt: r.created_at } : null;
}

/** Creates the row unless another process just did (the first one wins; read it back). */
export async function createInstallation(db: Database, r: InstallationRow): Promise<void> {
  await db
    .insertInto('installation')
    .values({ id: 1, installation_id: r.installationId, server_key_check: r.serverKeyCheck, created_at: r.createdAt })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}
