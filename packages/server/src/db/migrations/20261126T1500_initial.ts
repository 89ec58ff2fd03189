import { sql, type Kysely, type Migration } from 'kysely';
import { engineOf } from '../engine.js';

/**
 * Initial schema. Portable DDL only (SQLite and PostgreSQL): TEXT ids and ISO times,
 * BIGINT sizes, composite keys per customer so that no id chosen by one tenant can ever
 * collide with, or reveal, another tenant's row.
 */
export const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('customers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('machines')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('os', 'text', (c) => c.notNull())
      .addColumn('agent_version', 'text', (c) => c.notNull())
      .addColumn('credential_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text')
      .addColumn('revoked_at', 'text')
      .addUniqueConstraint('machines_customer_name_uq', ['customer_id', 'name'])
      .execute();

    await db.schema
      .createTable('enroll_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('used_at', 'text')
      .addColumn('machine_id', 'text', (c) => c.references('machines.id'))
      .execute();
    await db.schema.createIndex('enroll_tokens_customer_idx').on('enroll_tokens').column('customer_id').execute();

    await db.schema
      .createTable('repos')
      .addColumn('customer_id', 'text', (c) => c.primaryKey().references('customers.id'))
      .addColumn('config_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('key_slots')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('repos.customer_id'))
      .addColumn('id', 'text', (c) => c.notNull())
      // Position in the repository's slot list: 0, 1, 2… (slots are append-only, never removed).
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('slot_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by_machine', 'text', (c) => c.notNull().references('machines.id'))
      .addPrimaryKeyConstraint('key_slots_pk', ['customer_id', 'id'])
      // Also the index that lists a repository's slots in order.
      .addUniqueConstraint('key_slots_seq_uq', ['customer_id', 'seq'])
      .execute();

    await db.schema
      .createTable('packs')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('chunk_count', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('packs_pk', ['customer_id', 'id'])
      .execute();

    // Raw 32-byte ids and hashes, clustered on the primary key (WITHOUT ROWID): 40 % of
    // the size of hex text with a rowid (docs/BENCHMARKS.md). PostgreSQL: bytea, and no
    // WITHOUT ROWID clause (its tables are heaps; the primary key is a separate b-tree).
    // The SQL this produces on SQLite is unchanged since the migration was released.
    const postgres = engineOf(db) === 'postgres';
    const chunks = db.schema
      .createTable('chunks')
      .addColumn('customer_id', 'text', (c) => c.notNull())
      .addColumn('id', postgres ? 'bytea' : 'blob', (c) => c.notNull())
      .addColumn('pack_id', 'text', (c) => c.notNull())
      .addColumn('offset', 'bigint', (c) => c.notNull())
      .addColumn('length', 'integer', (c) => c.notNull())
      .addColumn('sha256', postgres ? 'bytea' : 'blob', (c) => c.notNull())
      .addPrimaryKeyConstraint('chunks_pk', ['customer_id', 'id'])
      .addForeignKeyConstraint('chunks_pack_fk', ['customer_id', 'pack_id'], 'packs', ['customer_id', 'id']);
    await (postgres ? chunks : chunks.modifyEnd(sql`without rowid`)).execute();
    // Chunks of a pack: verify, repack and GC walk packs; also serves the foreign key.
    await db.schema.createIndex('chunks_pack_idx').on('chunks').columns(['customer_id', 'pack_id']).execute();

    await db.schema
      .createTable('snapshots')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id'))
      .addColumn('parent', 'text')
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('manifest_json', 'text', (c) => c.notNull())
      .addColumn('ref_count', 'bigint', (c) => c.notNull())
      .addColumn('logical_size', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('snapshots_pk', ['customer_id', 'id'])
      .execute();
    // Listing a customer's snapshots in time order, optionally for one machine.
    await db.schema.createIndex('snapshots_customer_time_idx').on('snapshots').columns(['customer_id', 'time']).execute();
    await db.schema.createIndex('snapshots_machine_time_idx').on('snapshots').columns(['machine_id', 'time']).execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['snapshots', 'chunks', 'packs', 'key_slots', 'repos', 'enroll_tokens', 'machines', 'customers']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
