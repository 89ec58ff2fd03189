import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import pg from 'pg';

/**
 * The metadata database of a test server, reached the way someone with access to it would
 * (the SQLite file DIR/coffre.db, or the PostgreSQL database its server.json names): to
 * look at rows or tamper with them, never through the server. Statements use `?`
 * placeholders on both engines.
 */
export async function serverSql<T = Record<string, unknown>>(dataDir: string, statement: string, params: readonly unknown[] = []): Promise<T[]> {
  const settings = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { database?: string | null };
  if (settings.database) {
    const client = new pg.Client({ connectionString: settings.database });
    await client.connect();
    try {
      let n = 0;
      const r = await client.query(statement.replace(/\?/g, () => `$${++n}`), [...params]);
      return r.rows as T[];
    } finally {
      await client.end();
    }
  }
  const db = new Sqlite(join(dataDir, 'coffre.db'));
  try {
    const s = db.prepare(statement);
    if (s.reader) return s.all(...params) as T[];
    s.run(...params);
    return [];
  } finally {
    db.close();
  }
}
