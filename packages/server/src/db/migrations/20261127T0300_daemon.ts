import type { Kysely, Migration } from 'kysely';

/**
 * The agent daemon's reports: heartbeats (the machine is up and its daemon running), the
 * job a run belongs to and what started it, and restore tests (R6: a sample of a snapshot
 * restored and compared with the source — the "last proven restore").
 */
export const daemon: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('machines').addColumn('last_heartbeat_at', 'text').execute();
    await db.schema.alterTable('backup_runs').addColumn('job_name', 'text').execute();
    await db.schema.alterTable('backup_runs').addColumn('trigger', 'text').execute(); // manual | schedule | retry
    await db.schema
      .createTable('restore_tests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id'))
      .addColumn('snapshot_id', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull()) // agent clock
      .addColumn('finished_at', 'text', (c) => c.notNull()) // agent clock
      .addColumn('received_at', 'text', (c) => c.notNull()) // server clock
      .addColumn('result', 'text', (c) => c.notNull()) // success | failed
      .addColumn('sampled_files', 'integer', (c) => c.notNull())
      .addColumn('compared_files', 'integer', (c) => c.notNull())
      .addColumn('bytes', 'bigint', (c) => c.notNull())
      .addColumn('mismatches', 'integer', (c) => c.notNull())
      .addColumn('error_code', 'text')
      .execute();
    await db.schema.createIndex('restore_tests_machine_idx').on('restore_tests').columns(['machine_id', 'received_at']).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('restore_tests').execute();
    await db.schema.alterTable('backup_runs').dropColumn('trigger').execute();
    await db.schema.alterTable('backup_runs').dropColumn('job_name').execute();
    await db.schema.alterTable('machines').dropColumn('last_heartbeat_at').execute();
  },
};
