/**
 * Schema parity: the migrations give SQLite and PostgreSQL the same schema — the same
 * tables, the same columns with equivalent types and nullability, the same primary keys,
 * the same unique constraints and indexes (names, columns, unique and partial), the same
 * foreign keys and column defaults. Both engines always, whatever COFFRE_TEST_BACKEND says:
 * this file needs PostgreSQL (scripts/services/start-postgres.sh).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { Database } from '../src/db/database.js';
import { MIGRATIONS } from '../src/db/migrations/index.js';
import { testDatabase, type TestDatabase } from './kit.js';

/** A column type as both engines must agree on it. */
type TypeClass = 'text' | 'integer' | 'bigint' | 'bytes';

interface Column {
  readonly name: string;
  readonly type: TypeClass;
  readonly notNull: boolean;
  /** The default as written (normalised), or null. */
  readonly default: string | null;
}

interface Index {
  readonly table: string;
  /** Null for the index behind a UNIQUE constraint: engine-made (sqlite_autoindex_T_N, T_col_key…), not in the migrations. */
  readonly name: string | null;
  readonly columns: readonly string[];
  readonly unique: boolean;
  /** The WHERE of a partial index, normalised; null when the index is whole. */
  readonly where: string | null;
}

interface ForeignKey {
  readonly table: string;
  readonly columns: readonly string[];
  readonly references: string;
  readonly referencedColumns: readonly string[];
}

interface Schema {
  readonly tables: readonly string[];
  readonly columns: Readonly<Record<string, readonly Column[]>>;
  readonly primaryKeys: Readonly<Record<string, readonly string[]>>;
  readonly indexes: readonly Index[];
  readonly foreignKeys: readonly ForeignKey[];
}

/** SQLite's declared types, PostgreSQL's data types → the class both must agree on. */
function sqliteType(declared: string, where: string): TypeClass {
  const t = declared.toLowerCase();
  if (t === 'text') return 'text';
  if (t === 'integer') return 'integer';
  if (t === 'bigint') return 'bigint';
  if (t === 'blob') return 'bytes';
  assert.fail(`${where}: SQLite type ${declared} has no PostgreSQL equivalent in this test's map`);
}
function pgType(dataType: string, where: string): TypeClass {
  if (dataType === 'text') return 'text';
  if (dataType === 'integer') return 'integer';
  if (dataType === 'bigint') return 'bigint';
  if (dataType === 'bytea') return 'bytes';
  assert.fail(`${where}: PostgreSQL type ${dataType} has no SQLite equivalent in this test's map`);
}

/** `(closed_at IS NULL)` and `closed_at is null` alike. */
function normaliseExpr(e: string): string {
  return e.toLowerCase().replace(/[()]/g, '').replace(/\s+/g, ' ').trim();
}
/** Defaults: `0`, `'0'::integer`, `'x'::text` → 0, 0, 'x'. */
function normaliseDefault(d: string | null): string | null {
  if (d === null) return null;
  const m = /^'(.*)'::[a-z ]+$/.exec(d);
  if (m && /^-?\d+$/.test(m[1]!)) return m[1]!;
  return (m ? `'${m[1]}'` : d).trim();
}

const byTableThenName = (a: Index, b: Index): number => `${a.table} ${a.name ?? ''} ${a.columns.join(',')}`.localeCompare(`${b.table} ${b.name ?? ''} ${b.columns.join(',')}`);
const fkOrder = (a: ForeignKey, b: ForeignKey): number => `${a.table} ${a.columns.join(',')}`.localeCompare(`${b.table} ${b.columns.join(',')}`);

async function sqliteSchema(db: Database): Promise<Schema> {
  const tables = (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%' order by name`.execute(db)).rows.map((r) => r.name);
  const columns: Record<string, Column[]> = {};
  const primaryKeys: Record<string, string[]> = {};
  const indexes: Index[] = [];
  const foreignKeys: ForeignKey[] = [];
  for (const t of tables) {
    const cols = (await sql<{ name: string; type: string; notnull: number; dflt_value: string | null; pk: number }>`select name, type, "notnull", dflt_value, pk from pragma_table_info(${t}) order by cid`.execute(db)).rows;
    columns[t] = cols.map((c) => ({ name: c.name, type: sqliteType(c.type, `${t}.${c.name}`), notNull: c.notnull === 1, default: normaliseDefault(c.dflt_value) }));
    primaryKeys[t] = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    const list = (await sql<{ name: string; unique: number; origin: string; partial: number }>`select name, "unique", origin, partial from pragma_index_list(${t})`.execute(db)).rows;
    for (const ix of list) {
      if (ix.origin === 'pk') continue; // compared as the primary key
      const ixCols = (await sql<{ name: string }>`select name from pragma_index_info(${ix.name}) order by seqno`.execute(db)).rows.map((r) => r.name);
      let where: string | null = null;
      if (ix.partial === 1) {
        const def = (await sql<{ sql: string }>`select sql from sqlite_master where type = 'index' and name = ${ix.name}`.execute(db)).rows[0]!.sql;
        where = normaliseExpr(/\swhere\s+(.*)$/is.exec(def)![1]!);
      }
      indexes.push({ table: t, name: ix.origin === 'c' ? ix.name : null, columns: ixCols, unique: ix.unique === 1, where });
    }
    const fks = (await sql<{ id: number; seq: number; table: string; from: string; to: string | null }>`select id, seq, "table", "from", "to" from pragma_foreign_key_list(${t}) order by id, seq`.execute(db)).rows;
    for (const id of new Set(fks.map((f) => f.id))) {
      const parts = fks.filter((f) => f.id === id);
      const target = parts[0]!.table;
      // `references('t.c')` always names the column; a bare `references t` would mean its primary key.
      foreignKeys.push({ table: t, columns: parts.map((p) => p.from), references: target, referencedColumns: parts.map((p) => p.to ?? '(primary key)') });
    }
  }
  return { tables, columns, primaryKeys, indexes: indexes.sort(byTableThenName), foreignKeys: foreignKeys.sort(fkOrder) };
}

async function postgresSchema(db: Database): Promise<Schema> {
  const tables = (
    await sql<{ name: string }>`select table_name as name from information_schema.tables
      where table_schema = current_schema() and table_type = 'BASE TABLE' and table_name not like 'kysely_%' order by table_name`.execute(db)
  ).rows.map((r) => r.name);
  const columns: Record<string, Column[]> = {};
  const primaryKeys: Record<string, string[]> = {};
  for (const t of tables) {
    const cols = (
      await sql<{ name: string; data_type: string; is_nullable: string; column_default: string | null }>`select column_name as name, data_type, is_nullable, column_default
        from information_schema.columns where table_schema = current_schema() and table_name = ${t} order by ordinal_position`.execute(db)
    ).rows;
    columns[t] = cols.map((c) => ({ name: c.name, type: pgType(c.data_type, `${t}.${c.name}`), notNull: c.is_nullable === 'NO', default: normaliseDefault(c.column_default) }));
    primaryKeys[t] = [];
  }
  const keyCols = (rel: string, keys: string): string =>
    `array(select a.attname::text from unnest(${keys}) with ordinality k(attnum, ord) join pg_attribute a on a.attrelid = ${rel} and a.attnum = k.attnum order by k.ord)`;
  const ixRows = (
    await sql<{ table: string; name: string; unique: boolean; primary: boolean; predicate: string | null; constraint_type: string | null; columns: string[] }>`
      select t.relname as "table", i.relname as name, x.indisunique as "unique", x.indisprimary as "primary",
        pg_get_expr(x.indpred, x.indrelid) as predicate,
        (select c.contype::text from pg_constraint c where c.conindid = x.indexrelid and c.conrelid = x.indrelid limit 1) as constraint_type,
        ${sql.raw(keyCols('x.indrelid', 'x.indkey'))} as columns
      from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid join pg_namespace n on n.oid = t.relnamespace
      where n.nspname = current_schema() and t.relname not like 'kysely_%'`.execute(db)
  ).rows;
  const indexes: Index[] = [];
  for (const r of ixRows) {
    if (r.primary) {
      primaryKeys[r.table] = r.columns;
      continue;
    }
    indexes.push({ table: r.table, name: r.constraint_type === 'u' ? null : r.name, columns: r.columns, unique: r.unique, where: r.predicate === null ? null : normaliseExpr(r.predicate) });
  }
  const fkRows = (
    await sql<{ table: string; columns: string[]; references: string; referenced_columns: string[] }>`
      select t.relname as "table", ${sql.raw(keyCols('c.conrelid', 'c.conkey'))} as columns, r.relname as "references", ${sql.raw(keyCols('c.confrelid', 'c.confkey'))} as referenced_columns
      from pg_constraint c join pg_class t on t.oid = c.conrelid join pg_class r on r.oid = c.confrelid join pg_namespace n on n.oid = t.relnamespace
      where c.contype = 'f' and n.nspname = current_schema()`.execute(db)
  ).rows;
  const foreignKeys = fkRows.map((f) => ({ table: f.table, columns: f.columns, references: f.references, referencedColumns: f.referenced_columns }));
  return { tables, columns, primaryKeys, indexes: indexes.sort(byTableThenName), foreignKeys: foreignKeys.sort(fkOrder) };
}

describe('schema parity: the migrations give SQLite and PostgreSQL the same schema', () => {
  let lite: TestDatabase;
  let pg: TestDatabase;
  let a: Schema;
  let b: Schema;
  before(async () => {
    lite = await testDatabase('sqlite');
    pg = await testDatabase('postgres');
    a = await sqliteSchema(lite.db);
    b = await postgresSchema(pg.db);
  });
  after(async () => {
    await lite?.close();
    await pg?.close();
  });

  it('both ran every migration', () => {
    assert.deepEqual(lite.migrations.applied, MIGRATIONS.map(([name]) => name));
    assert.deepEqual(pg.migrations.applied, MIGRATIONS.map(([name]) => name));
  });

  it('the same tables', () => {
    assert.ok(a.tables.length >= 30, `SQLite has ${a.tables.length} tables`);
    assert.deepEqual(b.tables, a.tables);
  });

  it('the same columns, in the same order, with equivalent types, nullability and defaults', () => {
    // A primary-key column is NOT NULL on PostgreSQL whatever its declaration. SQLite lets a
    // rowid table's non-INTEGER primary key hold NULL unless declared NOT NULL (a documented
    // quirk kept for compatibility): the migrations do not declare it, so those columns are
    // compared as PostgreSQL makes them, and listed by the next test.
    const effective = (t: string, cols: readonly Column[] | undefined) => cols?.map((c) => (a.primaryKeys[t]?.includes(c.name) ? { ...c, notNull: true } : c));
    for (const t of a.tables) assert.deepEqual(effective(t, b.columns[t]), effective(t, a.columns[t]), `columns of ${t} (PostgreSQL, then SQLite)`);
    for (const t of a.tables) for (const c of b.columns[t] ?? []) if (b.primaryKeys[t]?.includes(c.name)) assert.equal(c.notNull, true, `${t}.${c.name} is NOT NULL on PostgreSQL`);
  });

  it('the same primary keys', () => {
    for (const t of a.tables) assert.deepEqual(b.primaryKeys[t], a.primaryKeys[t], `primary key of ${t} (PostgreSQL, then SQLite)`);
  });

  it('the same indexes and unique constraints: names, columns, unique and partial', () => {
    assert.ok(a.indexes.some((i) => i.where !== null), 'the partial index is seen');
    assert.ok(a.indexes.some((i) => i.name === null), 'unique constraints are seen');
    assert.deepEqual(b.indexes, a.indexes);
  });

  it('the same foreign keys', () => {
    assert.ok(a.foreignKeys.length > 0);
    assert.deepEqual(b.foreignKeys, a.foreignKeys);
  });
});
