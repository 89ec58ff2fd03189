import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, type LogEvent, Migrator, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver, type SqliteDatabase, type SqliteDialectConfig } from 'kysely';
import { migrationProvider } from './migrations/index.js';
import { createPgPool, DatabaseUnavailableError, redactDatabaseUrl } from './postgres.js';
import type { DB } from './schema.js';

export type Database = Kysely<DB>;

export interface MigrationReport {
  /** Names of the migrations applied by this call, in order (empty when up to date). */
  readonly applied: readonly string[];
}

/** Where the metadata database is: an SQLite file (the embedded default) or a PostgreSQL server. */
export type DatabaseTarget = { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };

/** The target for messages and logs: the file, or the URL without its password. */
export function describeDatabase(t: DatabaseTarget): string {
  return t.kind === 'sqlite' ? t.file : redactDatabaseUrl(t.url);
}

/**
 * Opens the metadata database (a path is an SQLite file) and brings it to the latest
 * schema; two processes starting at once on one PostgreSQL database migrate it once
 * (Kysely's migrator holds an advisory lock).
 */
export async function openDatabase(target: string | DatabaseTarget, opts: OpenOptions = {}): Promise<{ db: Database; migrations: MigrationReport }> {
  const t: DatabaseTarget = typeof target === 'string' ? { kind: 'sqlite', file: target } : target;
  return t.kind === 'sqlite' ? openSqlite(t.file, opts) : openPostgres(t.url, opts);
}

export interface OpenOptions {
  /** Sees every query run (tests: query plans of per-customer work). */
  readonly log?: (e: LogEvent) => void;
}

async function openPostgres(url: string, opts: OpenOptions): Promise<{ db: Database; migrations: MigrationReport }> {
  const pool = createPgPool({ url });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), ...(opts.log ? { log: opts.log } : {}) });
  try {
    await sql`select 1`.execute(db);
    const migrations = await migrate(db);
    return { db, migrations };
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
}

export { DatabaseUnavailableError };

/** A second handle on a PostgreSQL database, on a pool of its own (section locks: db/engine.ts). No migration. */
export function openPgLockHandle(url: string, max = 50): Database {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: createPgPool({ url, max }) }) });
}

/**
 * Opens (creating if needed) the SQLite metadata database and brings it to the latest
 * schema. WAL lets the CLI work on the database while the server runs; busy_timeout
 * makes concurrent writers wait instead of failing; synchronous=FULL because a commit
 * the agent was told about must survive a power loss. temp_store=MEMORY keeps statement
 * journals in memory: a multi-row insert into a table with constraints needs one, and as
 * a file it costs a create/write/unlink in /var/tmp per transaction (~20 % of indexing a pack).
 * journal_size_limit truncates the WAL after checkpoints (it otherwise keeps its peak size).
 */
async function openSqlite(file: string, opts: OpenOptions): Promise<{ db: Database; migrations: MigrationReport }> {
  const sqlite = new SQLite(file);
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('temp_store = MEMORY');
    // The WAL file is reused, never shrunk, unless limited: keep it small after checkpoints.
    sqlite.pragma('journal_size_limit = 4194304');
    // The chunk index is keyed by random ids: every insert and lookup lands on a leaf page
    // of its own. A 64 MiB page cache keeps the interior pages of a 10-million-row index,
    // and reading through a memory map (up to 2 GiB, file-backed pages the kernel may drop)
    // turns leaf reads into page-cache hits instead of a read(2) each
    // (docs/BENCHMARKS.md, "the chunk index at scale"). Writes still go through the WAL.
    sqlite.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
    sqlite.pragma(`mmap_size = ${SQLITE_MMAP_BYTES}`);
  } catch (err) {
    sqlite.close();
    throw err;
  }
  const db = new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }), ...(opts.log ? { log: opts.log } : {}) });
  try {
    const migrations = await migrate(db);
    return { db, migrations };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/**
 * Transactions start with BEGIN IMMEDIATE: they take SQLite's write lock at once, waiting
 * up to busy_timeout for another process (the CLI next to the server, or two CLIs). A
 * plain BEGIN reads first and then fails at its first write with "database is locked",
 * without waiting, when another connection has written meanwhile (WAL snapshot rule).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly cfg: SqliteDialectConfig) {
    super(cfg);
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.cfg);
  }
}

/** SQLite page cache per connection, KiB. */
export const SQLITE_CACHE_KIB = 65_536;
/** SQLite memory-mapped reads, bytes (SQLite caps it at its compile-time maximum). */
export const SQLITE_MMAP_BYTES = 2 ** 31;

/** Prepared statements kept per connection; far more than the distinct queries the server runs. */
export const STATEMENT_CACHE_SIZE = 200;

/**
 * Kysely's SQLite driver prepares every query anew; preparing is a large part of the cost
 * of a small query, and of a many-row insert. This keeps the most recently used prepared
 * statements by SQL text (LRU). A cached statement still being iterated (a streamed select)
 * is not shared: a fresh one is prepared for the overlapping call.
 */
export function withStatementCache(sqlite: SQLite.Database, size = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare: (sql) => {
      const cached = cache.get(sql);
      if (cached !== undefined) {
        if (cached.busy) return sqlite.prepare(sql);
        cache.delete(sql); // re-insert: most recently used last
        cache.set(sql, cached);
        return cached;
      }
      const stmt = sqlite.prepare(sql);
      cache.set(sql, stmt);
      if (cache.size > size) cache.delete(cache.keys().next().value!);
      return stmt;
    },
  };
}

export async function migrate(db: Kysely<DB>): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(`database migration failed: ${String(error)}`);
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
