import type { Kysely, Migration } from 'kysely';

/**
 * Several server instances on one database and one object store (docs/DEPLOYMENT.md):
 * - `installation`: the installation's id (also written in the object store, so a store
 *   of another installation is refused), which store it uses, and a check value of the
 *   server key (instances started from data directories with different keys are refused);
 * - `job_leases`: the job scheduler's leader lease, with its fencing number;
 * - `job_ticks`: each scheduled job time claimed by the leader, so a job runs once per tick.
 */
export const scaleOut: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('installation')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('installation_id', 'text', (c) => c.notNull())
      .addColumn('server_key_check', 'text', (c) => c.notNull())
      // Which store holds its objects ("fs" or "s3://bucket/prefix"), and when its marker was written there.
      .addColumn('store_identity', 'text', (c) => c.notNull())
      .addColumn('marker_written_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('job_leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('fence', 'bigint', (c) => c.notNull())
      .addColumn('acquired_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('job_ticks')
      .addColumn('job', 'text', (c) => c.notNull())
      .addColumn('tick', 'text', (c) => c.notNull())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('fence', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .addColumn('outcome', 'text')
      .addPrimaryKeyConstraint('job_ticks_pk', ['job', 'tick'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['job_ticks', 'job_leases', 'installation']) await db.schema.dropTable(t).execute();
  },
};
