import type { Kysely, Migration } from 'kysely';

/**
 * Volume tiers (R13): the operator's price list (upper limit of protected volume, monthly
 * price) and the tier each customer subscribes to.
 */
export const tiers: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('tiers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('limit_bytes', 'bigint', (c) => c.notNull())
      .addColumn('monthly_price_cents', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.alterTable('orgs').addColumn('tier_id', 'text', (c) => c.references('tiers.id')).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('orgs').dropColumn('tier_id').execute();
    await db.schema.dropTable('tiers').execute();
  },
};
