import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { migrationProvider } from './migrations/index.js';
import type { DB } from './schema.js';

export type Database = Kysely<DB>;

export interface MigrationReport {
  /** Names of the migrations applied by this call, in order (empty when up to date). */
  readonly applied: readonly string[];
}

/**
 * Opens (creating if needed) the SQLite metadata database and brings it to the latest
 * schema. WAL lets the CLI work on the database while the server runs; busy_timeout
 * makes concurrent writers wait instead of failing; synchronous=FULL because a commit
 * the agent was told about must survive a power loss.
 */
export async function openDatabase(file: string): Promise<{ db: Database; migrations: MigrationReport }> {
  const sqlite = new SQLite(file);
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    sqlite.close();
    throw err;
  }
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const migrations = await migrate(db);
    return { db, migrations };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

export async function migrate(db: Kysely<DB>): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(`database migration failed: ${String(error)}`);
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
