import { sql, type Kysely, type Migration } from 'kysely';
import { engineOf } from '../engine.js';

/**
 * Compact chunk rows (docs/BENCHMARKS.md, "The chunk index at scale"; ADR 0008). The chunk
 * index is the one table that grows with every stored file; at 10 million rows its 413 bytes
 * a row on SQLite (373 on PostgreSQL) outgrew the engines' caches and throughput fell. Every
 * row repeated its customer as 36-character text, its pack as 64-character hex text (twice
 * on SQLite: in the row and in the pack index) and its touch time as ISO text. Now:
 * - `customers.seq`, `packs.seq`: small integer surrogate keys, unique, never reused
 *   (allocated from `sequences`, a counter per name, so two instances never hand out the same);
 * - `chunks (customer_seq, id, pack_seq, offset, length, sha256, touched_ms)`: the customer
 *   and the pack by those keys, the touch as milliseconds since the epoch (null as before:
 *   the pack's creation counts);
 * - `chunks_pack_idx (pack_seq)`: a pack's rows (a pack belongs to one customer).
 * Columns are ordered so that PostgreSQL pads the row least (8-byte fields first).
 *
 * The chunks table is rebuilt (copied, the old one dropped). On SQLite, whose DDL Kysely
 * does not wrap in a transaction, the whole migration is one `BEGIN IMMEDIATE` transaction;
 * on PostgreSQL the migrator's own transaction holds it.
 */
export const compactChunks: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const postgres = engineOf(db) === 'postgres';
    if (!postgres) await sql`begin immediate`.execute(db);
    try {
      await compact(db, postgres);
      if (!postgres) await sql`commit`.execute(db);
    } catch (err) {
      if (!postgres) await sql`rollback`.execute(db);
      throw err;
    }
  },

  async down(): Promise<void> {
    throw new Error('the compact chunk rows cannot be migrated down (restore a backup of the database taken before)');
  },
};

async function compact(db: Kysely<unknown>, postgres: boolean): Promise<void> {
  const bytes = postgres ? 'bytea' : 'blob';
  await db.schema
    .createTable('sequences')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last', 'bigint', (c) => c.notNull())
    .execute();

  // Existing customers and packs are numbered in creation order, from 1.
  for (const table of ['customers', 'packs'] as const) {
    await db.schema.alterTable(table).addColumn('seq', table === 'customers' ? 'integer' : 'bigint', (c) => c.notNull().defaultTo(0)).execute();
    const key = table === 'customers' ? sql`t.id = ${sql.table(table)}.id` : sql`t.customer_id = packs.customer_id and t.id = packs.id`;
    const keyColumns = table === 'customers' ? sql`id` : sql`customer_id, id`;
    await sql`update ${sql.table(table)} set seq = t.n
      from (select ${keyColumns}, row_number() over (order by created_at, ${keyColumns}) as n from ${sql.table(table)}) as t
      where ${key}`.execute(db);
    await db.schema.createIndex(`${table}_seq_uq`).on(table).column('seq').unique().execute();
    await sql`insert into sequences (name, last) select ${sql.lit(table)}, coalesce(max(seq), 0) from ${sql.table(table)}`.execute(db);
  }

  const chunks = db.schema
    .createTable('chunks_compact')
    .addColumn('pack_seq', 'bigint', (c) => c.notNull())
    .addColumn('offset', 'bigint', (c) => c.notNull())
    .addColumn('touched_ms', 'bigint')
    .addColumn('customer_seq', 'integer', (c) => c.notNull())
    .addColumn('length', 'integer', (c) => c.notNull())
    .addColumn('id', bytes, (c) => c.notNull())
    .addColumn('sha256', bytes, (c) => c.notNull())
    // PostgreSQL names constraints' indexes in one namespace with the old table's: renamed below.
    .addPrimaryKeyConstraint(postgres ? 'chunks_compact_pk' : 'chunks_pk', ['customer_seq', 'id'])
    .addForeignKeyConstraint('chunks_pack_fk', ['pack_seq'], 'packs', ['seq']);
  await (postgres ? chunks : chunks.modifyEnd(sql`without rowid`)).execute();

  const touchedMs = postgres
    ? sql`(extract(epoch from c.touched_at::timestamptz) * 1000)::bigint`
    : sql`cast(round((julianday(c.touched_at) - 2440587.5) * 86400000.0) as integer)`;
  await sql`insert into chunks_compact (pack_seq, "offset", touched_ms, customer_seq, length, id, sha256)
    select p.seq, c."offset", case when c.touched_at is null then null else ${touchedMs} end, cu.seq, c.length, c.id, c.sha256
    from chunks c
    join packs p on p.customer_id = c.customer_id and p.id = c.pack_id
    join customers cu on cu.id = c.customer_id`.execute(db);
  const [{ before, after }] = (
    await sql<{ before: string | number; after: string | number }>`select (select count(*) from chunks) as before, (select count(*) from chunks_compact) as after`.execute(db)
  ).rows as [{ before: string | number; after: string | number }];
  if (Number(before) !== Number(after)) throw new Error(`compacting the chunk index copied ${after} of ${before} rows (a chunk row without its pack or customer?)`);

  await db.schema.dropTable('chunks').execute();
  await db.schema.alterTable('chunks_compact').renameTo('chunks').execute();
  if (postgres) await sql`alter table chunks rename constraint chunks_compact_pk to chunks_pk`.execute(db);
  // A pack's rows: verify, repack and GC walk packs; also serves the foreign key.
  await db.schema.createIndex('chunks_pack_idx').on('chunks').column('pack_seq').execute();
}
