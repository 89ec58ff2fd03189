import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The observatory's inputs and outputs (R5): each machine's scheduled jobs as its agent
 * reports them (name, cron expression, time zone; never the paths), and the alerts opened
 * when a scheduled backup is missed or fails, closed when things are back to normal.
 */
export const observatory: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('machine_jobs')
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('schedule', 'text', (c) => c.notNull())
      .addColumn('timezone', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('machine_jobs_pk', ['machine_id', 'name'])
      .execute();
    // When the agent last reported its jobs; since when a non-empty schedule has been owed.
    await db.schema.alterTable('machines').addColumn('schedule_reported_at', 'text').execute();
    await db.schema.alterTable('machines').addColumn('schedule_since', 'text').execute();
    await db.schema
      .createTable('alerts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('machine_id', 'text', (c) => c.references('machines.id'))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('opened_at', 'text', (c) => c.notNull())
      .addColumn('closed_at', 'text')
      .addColumn('since', 'text')
      .addColumn('error_code', 'text')
      .addColumn('last_notified_at', 'text')
      .addColumn('reminders_sent', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('alerts_customer_idx').on('alerts').columns(['customer_id', 'closed_at']).execute();
    // At most one open alert of a kind per machine.
    await db.schema.createIndex('alerts_open_uq').on('alerts').columns(['machine_id', 'kind']).unique().where(sql<boolean>`closed_at is null`).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('alerts').execute();
    await db.schema.alterTable('machines').dropColumn('schedule_since').execute();
    await db.schema.alterTable('machines').dropColumn('schedule_reported_at').execute();
    await db.schema.dropTable('machine_jobs').execute();
  },
};
