import type { Kysely, Migration } from 'kysely';

/**
 * Garbage collection without a global lock (docs/GC.md):
 * - `chunks.touched_at`: when the chunk was last uploaded or answered "exists" to an agent
 *   (NULL for rows indexed before this migration: their pack's `created_at` stands in);
 * - `upload_sessions`: one open upload session per machine (first and last request of a
 *   backup that has not committed yet); GC keeps everything touched since the oldest one;
 * - `gc_epochs`: a counter per customer that GC bumps in every transaction that deletes
 *   chunk rows, so a snapshot commit that validated its chunks before knows to check again;
 * - `pack_tombstones`: packs removed from the index, whose object is deleted (now, or after
 *   a delay for repacked packs) and whose id may never be indexed again;
 * - `gc_orphans`: pack objects seen in the store without an index row, and since when;
 * - `gc_lease`: which GC run is going (one at a time; safety never depends on it).
 */
export const gc: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('chunks').addColumn('touched_at', 'text').execute();

    await db.schema
      .createTable('upload_sessions')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id'))
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('upload_sessions_pk', ['customer_id', 'machine_id'])
      .execute();

    await db.schema
      .createTable('gc_epochs')
      .addColumn('customer_id', 'text', (c) => c.primaryKey().references('customers.id'))
      .addColumn('epoch', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('pack_tombstones')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull()) // dead | repacked | orphan
      .addColumn('replaced_by', 'text') // repacked: the new pack
      .addColumn('deleted_at', 'text', (c) => c.notNull()) // removed from the index
      .addColumn('delete_after', 'text', (c) => c.notNull()) // the object may go from then on
      .addColumn('object_deleted_at', 'text')
      .addPrimaryKeyConstraint('pack_tombstones_pk', ['customer_id', 'id'])
      .execute();
    await db.schema.createIndex('pack_tombstones_due_idx').on('pack_tombstones').columns(['object_deleted_at', 'delete_after']).execute();

    await db.schema
      .createTable('gc_orphans')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('pack_id', 'text', (c) => c.notNull())
      .addColumn('first_seen_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('gc_orphans_pk', ['customer_id', 'pack_id'])
      .execute();

    await db.schema
      .createTable('gc_lease')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('acquired_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['gc_lease', 'gc_orphans', 'pack_tombstones', 'gc_epochs', 'upload_sessions']) await db.schema.dropTable(t).execute();
    await db.schema.alterTable('chunks').dropColumn('touched_at').execute();
  },
};
