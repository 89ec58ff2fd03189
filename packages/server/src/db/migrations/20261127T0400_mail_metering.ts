import type { Kysely, Migration } from 'kysely';

/**
 * Emails and metering (R4, R5, R13): the outbox every email goes through (retried until
 * the SMTP server takes it), what an alert is about when it has no machine (a stored pack
 * that failed verification), each customer's daily volumes, and the tier change a crossing
 * schedules for the next period.
 */
export const mailMetering: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('outbox')
      .addColumn('id', 'text', (c) => c.primaryKey())
      // Enqueuing the same email twice (a job run again) is a no-op.
      .addColumn('dedup_key', 'text', (c) => c.notNull().unique())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('to_address', 'text', (c) => c.notNull())
      .addColumn('locale', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('text_body', 'text', (c) => c.notNull())
      .addColumn('html_body', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull()) // pending | sent | failed
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'text', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('sent_at', 'text')
      .execute();
    await db.schema.createIndex('outbox_pending_idx').on('outbox').columns(['status', 'next_attempt_at']).execute();
    await db.schema.alterTable('alerts').addColumn('subject', 'text').execute();
    await db.schema
      .createTable('usage_daily')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('date', 'text', (c) => c.notNull()) // YYYY-MM-DD, Europe/Paris
      .addColumn('protected_bytes', 'bigint', (c) => c.notNull())
      .addColumn('stored_bytes', 'bigint', (c) => c.notNull())
      .addColumn('tier_id', 'text')
      .addColumn('limit_bytes', 'bigint')
      .addPrimaryKeyConstraint('usage_daily_pk', ['customer_id', 'date'])
      .execute();
    await db.schema.alterTable('orgs').addColumn('pending_tier_id', 'text').execute();
    await db.schema.alterTable('orgs').addColumn('pending_tier_from', 'text').execute(); // YYYY-MM-01
    await db.schema.alterTable('orgs').addColumn('tier_exceeded_period', 'text').execute(); // YYYY-MM last notified
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('orgs').dropColumn('tier_exceeded_period').execute();
    await db.schema.alterTable('orgs').dropColumn('pending_tier_from').execute();
    await db.schema.alterTable('orgs').dropColumn('pending_tier_id').execute();
    await db.schema.dropTable('usage_daily').execute();
    await db.schema.alterTable('alerts').dropColumn('subject').execute();
    await db.schema.dropTable('outbox').execute();
  },
};
