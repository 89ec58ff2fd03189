import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.js';
import { MIGRATIONS } from '../src/db/migrations/index.js';
import { tempDir } from './kit.js';

describe('metadata database', () => {
  it('runs every migration on a fresh file, then none on reopen, keeping the data', async () => {
    const tmp = await tempDir();
    try {
      const file = path.join(tmp.dir, 'coffre.db');
      const first = await openDatabase(file);
      assert.deepEqual(first.migrations.applied, MIGRATIONS.map(([name]) => name));
      const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%' order by name`.execute(first.db);
      assert.deepEqual(
        tables.rows.map((r) => r.name),
        ['chunks', 'customers', 'enroll_tokens', 'key_slots', 'machines', 'packs', 'repos', 'snapshots'],
      );
      await first.db.insertInto('customers').values({ id: 'c1', name: 'Cabinet A', created_at: '2026-01-01T00:00:00.000Z' }).execute();
      await first.db.destroy();

      const second = await openDatabase(file);
      assert.deepEqual(second.migrations.applied, []);
      const rows = await second.db.selectFrom('customers').select('name').execute();
      assert.deepEqual(rows, [{ name: 'Cabinet A' }]);
      await second.db.destroy();
    } finally {
      await tmp.cleanup();
    }
  });

  it('opens in WAL mode with foreign keys enforced', async () => {
    const tmp = await tempDir();
    try {
      const { db } = await openDatabase(path.join(tmp.dir, 'coffre.db'));
      try {
        const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db);
        assert.equal(mode.rows[0]?.journal_mode, 'wal');
        await assert.rejects(
          db.insertInto('machines')
            .values({ id: 'm1', customer_id: 'no-such-customer', name: 'x', hostname: 'h', os: 'o', agent_version: 'v', credential_hash: 'h1', created_at: 't', last_seen_at: null, revoked_at: null })
            .execute(),
          /FOREIGN KEY/,
        );
      } finally {
        await db.destroy();
      }
    } finally {
      await tmp.cleanup();
    }
  });

  it('enforces unique customer names and machine names per customer', async () => {
    const tmp = await tempDir();
    try {
      const { db } = await openDatabase(path.join(tmp.dir, 'coffre.db'));
      try {
        const t = '2026-01-01T00:00:00.000Z';
        await db.insertInto('customers').values([{ id: 'a', name: 'A', created_at: t }, { id: 'b', name: 'B', created_at: t }]).execute();
        await assert.rejects(db.insertInto('customers').values({ id: 'c', name: 'A', created_at: t }).execute(), /UNIQUE/);
        const machine = (id: string, customer: string, hash: string) => ({ id, customer_id: customer, name: 'poste', hostname: 'h', os: 'o', agent_version: 'v', credential_hash: hash, created_at: t, last_seen_at: null, revoked_at: null });
        await db.insertInto('machines').values(machine('m1', 'a', 'h1')).execute();
        await db.insertInto('machines').values(machine('m2', 'b', 'h2')).execute(); // same name, other customer: fine
        await assert.rejects(db.insertInto('machines').values(machine('m3', 'a', 'h3')).execute(), /UNIQUE/);
      } finally {
        await db.destroy();
      }
    } finally {
      await tmp.cleanup();
    }
  });
});
