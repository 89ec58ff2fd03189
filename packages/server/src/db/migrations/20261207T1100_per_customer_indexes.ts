import type { Kysely, Migration } from 'kysely';

/**
 * Per-customer work reads only that customer's rows, through an index whose first column
 * is the customer (so its cost follows one customer's data, not the platform's):
 * - the verify job picks a customer's packs verified longest ago;
 * - garbage collection finds a customer's tombstoned objects that are due for deletion;
 * - retention empties a customer's recycle bin.
 */
export const perCustomerIndexes: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('packs_verify_idx').on('packs').columns(['customer_id', 'verified_at', 'created_at']).execute();
    await db.schema.createIndex('pack_tombstones_customer_due_idx').on('pack_tombstones').columns(['customer_id', 'object_deleted_at', 'delete_after']).execute();
    await db.schema.createIndex('snapshots_customer_bin_idx').on('snapshots').columns(['customer_id', 'deleted_at']).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const i of ['snapshots_customer_bin_idx', 'pack_tombstones_customer_due_idx', 'packs_verify_idx']) await db.schema.dropIndex(i).execute();
  },
};
