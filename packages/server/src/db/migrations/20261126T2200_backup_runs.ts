import type { Kysely, Migration } from 'kysely';

/**
 * Backup runs as the agents report them (start, end, result, counts; never a file name):
 * the console's failed status and duration charts, and later the observatory, use them.
 */
export const backupRuns: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('backup_runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id'))
      .addColumn('started_at', 'text', (c) => c.notNull()) // agent clock
      .addColumn('finished_at', 'text', (c) => c.notNull()) // agent clock
      .addColumn('received_at', 'text', (c) => c.notNull()) // server clock
      .addColumn('result', 'text', (c) => c.notNull()) // success | partial | failed
      .addColumn('files', 'integer', (c) => c.notNull())
      .addColumn('bytes', 'bigint', (c) => c.notNull())
      .addColumn('added_bytes', 'bigint', (c) => c.notNull())
      .addColumn('warnings', 'integer', (c) => c.notNull())
      .addColumn('snapshot_id', 'text')
      .addColumn('error_code', 'text')
      .execute();
    await db.schema.createIndex('backup_runs_customer_idx').on('backup_runs').columns(['customer_id', 'received_at']).execute();
    await db.schema.createIndex('backup_runs_machine_idx').on('backup_runs').columns(['machine_id', 'received_at']).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('backup_runs').execute();
  },
};
