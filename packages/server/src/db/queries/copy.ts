import { sql, type Kysely } from 'kysely';
import { packKey, snapshotRefsKey } from '../../object-keys.js';
import type { CustomerId } from '../../types.js';
import type { Database } from '../database.js';

/**
 * Whole-table copies between two databases of the same schema (migrate-storage: an
 * embedded SQLite installation to PostgreSQL). Platform-wide on purpose: every row of every
 * customer moves. Table and column names come from the schema (the SQLite catalogue), never
 * from input.
 */

export interface TableShape {
  readonly table: string;
  readonly columns: readonly string[];
  /** Primary-key columns in key order. */
  readonly key: readonly string[];
}

// Kysely's typed builder knows table names statically; these helpers take them from the catalogue.
const anyDb = (db: Database): Kysely<Record<string, Record<string, unknown>>> => db as unknown as Kysely<Record<string, Record<string, unknown>>>;

/** Every user table of an SQLite database (migration bookkeeping excluded). */
export async function sqliteTables(db: Database): Promise<string[]> {
  const r = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%' order by name`.execute(db);
  return r.rows.map((x) => x.name);
}

/** Columns and primary key of a table, read from SQLite's catalogue. */
export async function sqliteTableShape(db: Database, table: string): Promise<TableShape> {
  const r = await sql<{ name: string; pk: number }>`select name, pk from pragma_table_info(${table}) order by cid`.execute(db);
  if (r.rows.length === 0) throw new Error(`no table ${table}`);
  const key = r.rows.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  if (key.length === 0) throw new Error(`table ${table} has no primary key`);
  return { table, columns: r.rows.map((c) => c.name), key };
}

/** Every row of a table in primary-key order, streamed (`orderFirst` puts some rows first, e.g. parents before children). */
export async function* streamRows(db: Database, s: TableShape, orderFirst?: string): AsyncGenerator<Record<string, unknown>> {
  let q = anyDb(db).selectFrom(s.table).selectAll();
  if (orderFirst) q = q.orderBy(sql.raw(orderFirst));
  for (const k of s.key) q = q.orderBy(k);
  yield* q.stream(500);
}

/** Inserts rows, replacing those with the same key (a resumed copy refreshes what changed). */
export async function upsertRows(db: Database, s: TableShape, rows: readonly Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const others = s.columns.filter((c) => !s.key.includes(c));
  await anyDb(db)
    .insertInto(s.table)
    .values(rows as Record<string, unknown>[])
    .onConflict((oc) => {
      const c = oc.columns(s.key as string[]);
      return others.length === 0 ? c.doNothing() : c.doUpdateSet(Object.fromEntries(others.map((col) => [col, sql.ref(`excluded.${col}`)])));
    })
    .execute();
}

export async function countRows(db: Database, table: string): Promise<number> {
  const r = await anyDb(db)
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Key values of every row, read in pages by key (keyset: no cursor needed on PostgreSQL), to find rows the source no longer has. */
export async function* pagedKeys(db: Database, s: TableShape, pageSize = 2000): AsyncGenerator<Record<string, unknown>> {
  let after: Record<string, unknown> | null = null;
  for (;;) {
    let q = anyDb(db).selectFrom(s.table).select(s.key as string[]);
    if (after !== null) {
      const last = after;
      // (k1, k2, …) > (v1, v2, …), written out.
      q = q.where((eb) => eb.or(s.key.map((k, i) => eb.and([...s.key.slice(0, i).map((p) => eb(p, '=', last[p])), eb(k, '>', last[k])]))));
    }
    for (const k of s.key) q = q.orderBy(k);
    const rows: Record<string, unknown>[] = await q.limit(pageSize).execute();
    yield* rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!;
  }
}

/** Object keys the index refers to: every pack row, every tombstoned pack whose object is not deleted yet, every snapshot's reference list. */
export async function* indexedObjectKeys(db: Database): AsyncGenerator<string> {
  for (const p of await db.selectFrom('packs').select(['customer_id', 'id']).execute()) yield packKey(p.customer_id as CustomerId, p.id);
  for (const t of await db.selectFrom('pack_tombstones').select(['customer_id', 'id']).where('object_deleted_at', 'is', null).execute()) yield packKey(t.customer_id as CustomerId, t.id);
  for (const s of await db.selectFrom('snapshots').select(['customer_id', 'id']).execute()) yield snapshotRefsKey(s.customer_id as CustomerId, s.id);
}

export async function rowExists(db: Database, s: TableShape, key: Record<string, unknown>): Promise<boolean> {
  let q = anyDb(db).selectFrom(s.table).select(sql<number>`1`.as('one'));
  for (const k of s.key) q = q.where(k, '=', key[k]);
  return (await q.executeTakeFirst()) !== undefined;
}

export async function deleteRow(db: Database, s: TableShape, key: Record<string, unknown>): Promise<void> {
  let q = anyDb(db).deleteFrom(s.table);
  for (const k of s.key) q = q.where(k, '=', key[k]);
  await q.execute();
}

/** The SHA-256 of every snapshot's reference list, from its manifest, by "customerId/snapshotId". */
export async function snapshotRefsChecksums(db: Database): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for await (const r of db.selectFrom('snapshots').select(['customer_id', 'id', 'manifest_json']).stream(1000)) {
    const sum = (JSON.parse(r.manifest_json) as { refsSha256?: unknown }).refsSha256;
    if (typeof sum === 'string') m.set(`${r.customer_id}/${r.id}`, sum);
  }
  return m;
}

/** The seed rows a fresh schema holds (the operator organisation the migrations create): removed before a copy brings the source's. */
export async function dropSeedRows(db: Database): Promise<void> {
  await db.deleteFrom('orgs').where('type', '=', 'operator').execute();
}
