import type { Kysely, Migration } from 'kysely';

/**
 * Retention on the server (R9): a policy per customer and per machine (JSON of
 * `RetentionPolicy`; null = the default), and the recycle bin: a removed snapshot keeps its
 * row (so garbage collection keeps its data) with when, by whom and why it was removed,
 * until the bin's delay has passed. Also when each pack was last verified (R6, R22).
 */
export const retention: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('orgs').addColumn('retention_json', 'text').execute();
    await db.schema.alterTable('machines').addColumn('retention_json', 'text').execute();
    await db.schema.alterTable('snapshots').addColumn('deleted_at', 'text').execute();
    await db.schema.alterTable('snapshots').addColumn('deleted_by', 'text').execute();
    await db.schema.alterTable('snapshots').addColumn('delete_reason', 'text').execute();
    await db.schema.createIndex('snapshots_bin_idx').on('snapshots').columns(['deleted_at']).execute();
    // Verification (R6, R22): when each pack was last re-hashed against its recorded checksums.
    await db.schema.alterTable('packs').addColumn('verified_at', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('packs').dropColumn('verified_at').execute();
    await db.schema.dropIndex('snapshots_bin_idx').execute();
    await db.schema.alterTable('snapshots').dropColumn('delete_reason').execute();
    await db.schema.alterTable('snapshots').dropColumn('deleted_by').execute();
    await db.schema.alterTable('snapshots').dropColumn('deleted_at').execute();
    await db.schema.alterTable('machines').dropColumn('retention_json').execute();
    await db.schema.alterTable('orgs').dropColumn('retention_json').execute();
  },
};
