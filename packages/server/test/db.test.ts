import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ChunkId, PackEntry } from '@coffre/core';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { openDatabase, withStatementCache } from '../src/db/database.js';
import { createPgPool } from '../src/db/postgres.js';
import { CHUNK_INSERT_BATCH, CHUNK_LOOKUP_BATCH, existingChunks, indexPack, locateChunks } from '../src/db/queries/packs.js';
import { nextSequence } from '../src/db/queries/sequences.js';
import type { CustomerId } from '../src/types.js';
import { MIGRATIONS, migrationProvider } from '../src/db/migrations/index.js';
import type { DB } from '../src/db/schema.js';
import { testDatabase, testDatabaseTarget } from './kit.js';

describe('metadata database', () => {
  it('runs every migration on a fresh database, then none on reopen, keeping the data', async () => {
    const t = await testDatabase();
    try {
      assert.deepEqual(t.migrations.applied, MIGRATIONS.map(([name]) => name));
      const tables = (await t.db.introspection.getTables()).map((x) => x.name).filter((n) => !n.startsWith('kysely_')).sort();
      assert.deepEqual(tables, [
        'access_reviews',
        'alerts',
        'audit_anchor',
        'audit_checkpoints',
        'audit_log',
        'audit_signing_key',
        'auth_throttle',
        'backup_runs',
        'chunks',
        'customer_sites',
        'customers',
        'enroll_tokens',
        'gc_epochs',
        'gc_lease',
        'gc_orphans',
        'installation',
        'job_leases',
        'job_ticks',
        'key_slots',
        'machine_jobs',
        'machines',
        'orgs',
        'outbox',
        'pack_tombstones',
        'packs',
        'recovery_codes',
        'replica_holds',
        'replicated_audit',
        'replication_credentials',
        'replication_tokens',
        'repos',
        'restore_tests',
        'sequences',
        'sessions',
        'site_authorisations',
        'site_changes',
        'site_state',
        'sites',
        'snapshots',
        'tiers',
        'upload_sessions',
        'usage_daily',
        'users',
        'webauthn_credentials',
      ]);
      await t.db.insertInto('customers').values({ id: 'c1', seq: await nextSequence(t.db, 'customers'), name: 'Cabinet A', created_at: '2026-01-01T00:00:00.000Z' }).execute();
      await t.db.destroy();

      const second = await t.open();
      assert.deepEqual(second.migrations.applied, []);
      const rows = await second.db.selectFrom('customers').select('name').execute();
      assert.deepEqual(rows, [{ name: 'Cabinet A' }]);
    } finally {
      await t.close();
    }
  });

  it('compacting the chunk index keeps every row, its pack, place, hash and touch, and numbers customers and packs for good', async () => {
    const t = await testDatabaseTarget();
    try {
      const raw = new Kysely<DB>({
        dialect: t.target.kind === 'sqlite' ? new SqliteDialect({ database: new SQLite(t.target.file) }) : new PostgresDialect({ pool: createPgPool({ url: t.target.url }) }),
      });
      const before = MIGRATIONS.findIndex(([name]) => name === '20261207T1200_compact_chunks') - 1;
      const r = await new Migrator({ db: raw, provider: migrationProvider }).migrateTo(MIGRATIONS[before]![0]);
      assert.equal(r.error, undefined);
      // The schema as it was: text customer and pack keys, ISO touch times (null = the pack's creation).
      const blob = (hex: string): Buffer => Buffer.from(hex, 'hex');
      const rows: { customer: string; id: string; pack: string; offset: number; length: number; sha: string; touched: string | null }[] = [];
      for (const [ci, customer] of ['cust-b', 'cust-a'].entries()) {
        await sql`insert into customers (id, name, created_at) values (${customer}, ${`Cabinet ${customer}`}, ${`2026-01-0${ci + 1}T00:00:00.000Z`})`.execute(raw);
        for (let p = 0; p < 3; p++) {
          const pack = randomBytes(32).toString('hex');
          await sql`insert into packs (customer_id, id, size, chunk_count, created_at) values (${customer}, ${pack}, 5000, 4, ${`2026-02-0${p + 1}T00:00:00.000Z`})`.execute(raw);
          for (let i = 0; i < 4; i++) {
            const row = { customer, id: randomBytes(32).toString('hex'), pack, offset: 12 + i * 1000, length: 1000 + i, sha: randomBytes(32).toString('hex'), touched: i === 0 ? null : `2026-03-0${i}T10:11:12.${String(100 * p + i).padStart(3, '0')}Z` };
            rows.push(row);
            await sql`insert into chunks (customer_id, id, pack_id, "offset", length, sha256, touched_at)
              values (${row.customer}, ${blob(row.id)}, ${row.pack}, ${row.offset}, ${row.length}, ${blob(row.sha)}, ${row.touched})`.execute(raw);
          }
        }
      }
      await raw.destroy();

      const { db, migrations } = await openDatabase(t.target);
      try {
        assert.deepEqual(migrations.applied, MIGRATIONS.slice(MIGRATIONS.findIndex(([n]) => n === '20261207T1200_compact_chunks')).map(([n]) => n));
        const customers = await db.selectFrom('customers').select(['id', 'seq']).orderBy('seq').execute();
        assert.deepEqual(customers.map((c) => [c.id, Number(c.seq)]), [['cust-b', 1], ['cust-a', 2]], 'numbered in creation order');
        const got = await db
          .selectFrom('chunks')
          .innerJoin('packs', 'packs.seq', 'chunks.pack_seq')
          .innerJoin('customers', 'customers.seq', 'chunks.customer_seq')
          .select(['customers.id as customer', 'chunks.id', 'packs.id as pack', 'packs.customer_id as packCustomer', 'chunks.offset', 'chunks.length', 'chunks.sha256', 'chunks.touched_ms'])
          .execute();
        assert.equal(got.length, rows.length);
        const byId = new Map(got.map((g) => [g.id.toString('hex'), g]));
        for (const row of rows) {
          const g = byId.get(row.id)!;
          assert.deepEqual(
            { customer: g.customer, pack: g.pack, packCustomer: g.packCustomer, offset: Number(g.offset), length: Number(g.length), sha: g.sha256.toString('hex'), touched: g.touched_ms === null ? null : new Date(Number(g.touched_ms)).toISOString() },
            { customer: row.customer, pack: row.pack, packCustomer: row.customer, offset: row.offset, length: row.length, sha: row.sha, touched: row.touched },
          );
        }
        // The counters go on after the numbers the migration gave.
        assert.equal(await nextSequence(db, 'customers'), 3);
        assert.equal(await nextSequence(db, 'packs'), 7);
        // The server's own queries work on the migrated rows.
        const some = rows.filter((x) => x.customer === 'cust-a').map((x) => x.id);
        assert.equal((await existingChunks(db, 'cust-a' as CustomerId, some)).size, some.length);
        assert.equal((await existingChunks(db, 'cust-b' as CustomerId, some)).size, 0, "another customer's chunks are not found");
      } finally {
        await db.destroy();
      }
    } finally {
      await t.drop();
    }
  });

  it('the control-plane migration gives every existing customer an organisation under the operator', async () => {
    const t = await testDatabaseTarget();
    try {
      // The first migration alone, with a plain Kysely of the engine.
      const raw = new Kysely<DB>({
        dialect: t.target.kind === 'sqlite' ? new SqliteDialect({ database: new SQLite(t.target.file) }) : new PostgresDialect({ pool: createPgPool({ url: t.target.url }) }),
      });
      const migrator = new Migrator({ db: raw, provider: migrationProvider });
      const r = await migrator.migrateTo(MIGRATIONS[0]![0]);
      assert.equal(r.error, undefined);
      await sql`insert into customers (id, name, created_at) values ('c-old', 'Cabinet Ancien', '2026-01-01T00:00:00.000Z')`.execute(raw);
      await raw.destroy();

      const { db, migrations } = await openDatabase(t.target);
      try {
        assert.deepEqual(migrations.applied, MIGRATIONS.slice(1).map(([name]) => name));
        const orgs = await db.selectFrom('orgs').select(['id', 'name', 'type', 'parent_id', 'status']).orderBy('type').execute();
        assert.equal(orgs.length, 2);
        const op = orgs.find((o) => o.type === 'operator')!;
        assert.deepEqual(orgs.find((o) => o.type === 'customer'), { id: 'c-old', name: 'Cabinet Ancien', type: 'customer', parent_id: op.id, status: 'active' });
      } finally {
        await db.destroy();
      }
    } finally {
      await t.drop();
    }
  });

  it('SQLite opens in WAL mode with temp storage in memory', async () => {
    // SQLite only (its pragmas), whatever the selected backend.
    const t = await testDatabase('sqlite');
    try {
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(t.db);
      assert.equal(mode.rows[0]?.journal_mode, 'wal');
      const temp = await sql<{ temp_store: number }>`pragma temp_store`.execute(t.db);
      assert.equal(temp.rows[0]?.temp_store, 2, 'statement journals in memory');
    } finally {
      await t.close();
    }
  });

  it('enforces foreign keys', async () => {
    const t = await testDatabase();
    try {
      await assert.rejects(
        t.db
          .insertInto('machines')
          .values({ id: 'm1', customer_id: 'no-such-customer', name: 'x', hostname: 'h', os: 'o', agent_version: 'v', credential_hash: 'h1', created_at: 't', last_seen_at: null, revoked_at: null })
          .execute(),
        // SQLite: "FOREIGN KEY constraint failed"; PostgreSQL: "… violates foreign key constraint …".
        /FOREIGN KEY constraint|violates foreign key constraint/,
      );
    } finally {
      await t.close();
    }
  });

  it('enforces unique customer names and machine names per customer', async () => {
    const t = await testDatabase();
    try {
      const db = t.db;
      // SQLite: "UNIQUE constraint failed"; PostgreSQL: "duplicate key value violates unique constraint".
      const unique = /UNIQUE constraint|violates unique constraint/;
      const at = '2026-01-01T00:00:00.000Z';
      await db.insertInto('customers').values([{ id: 'a', seq: 1001, name: 'A', created_at: at }, { id: 'b', seq: 1002, name: 'B', created_at: at }]).execute();
      await assert.rejects(db.insertInto('customers').values({ id: 'c', seq: 1003, name: 'A', created_at: at }).execute(), unique);
      await assert.rejects(db.insertInto('customers').values({ id: 'd', seq: 1001, name: 'D', created_at: at }).execute(), unique, 'customer numbers are unique');
      const machine = (id: string, customer: string, hash: string) => ({ id, customer_id: customer, name: 'poste', hostname: 'h', os: 'o', agent_version: 'v', credential_hash: hash, created_at: at, last_seen_at: null, revoked_at: null });
      await db.insertInto('machines').values(machine('m1', 'a', 'h1')).execute();
      await db.insertInto('machines').values(machine('m2', 'b', 'h2')).execute(); // same name, other customer: fine
      await assert.rejects(db.insertInto('machines').values(machine('m3', 'a', 'h3')).execute(), unique);
    } finally {
      await t.close();
    }
  });

  it('indexes packs of every batch-boundary size exactly, and finds them again', async () => {
    const t = await testDatabase();
    try {
      const db = t.db;
      const customer = 'c1' as CustomerId;
      const now = '2026-01-01T00:00:00.000Z';
      await db.insertInto('customers').values({ id: customer, seq: await nextSequence(db, 'customers'), name: 'A', created_at: now }).execute();
      const all: PackEntry[] = [];
      const packOf = new Map<string, string>();
      for (const n of [1, 3, CHUNK_INSERT_BATCH - 1, CHUNK_INSERT_BATCH, CHUNK_INSERT_BATCH + 1, 2 * CHUNK_INSERT_BATCH + 77]) {
        const packId = randomBytes(32).toString('hex');
        let offset = 12 + 80 * n;
        const entries = Array.from({ length: n }, (_, i) => {
          const e = { id: randomBytes(32).toString('hex') as ChunkId, offset, length: 100 + i, sha256: randomBytes(32).toString('hex') };
          offset += e.length;
          return e;
        });
        assert.equal(await indexPack(db, { customerId: customer, packId, size: offset, entries, now }), n);
        assert.equal(await indexPack(db, { customerId: customer, packId, size: offset, entries, now }), 0, 'idempotent');
        for (const e of entries) packOf.set(e.id, packId);
        all.push(...entries);
      }
      const rows = await db
        .selectFrom('chunks')
        .innerJoin('packs', 'packs.seq', 'chunks.pack_seq')
        .innerJoin('customers', 'customers.seq', 'chunks.customer_seq')
        .select(['chunks.id', 'chunks.sha256', 'chunks.offset', 'chunks.length', 'packs.id as pack_id'])
        .where('customers.id', '=', customer)
        .execute();
      assert.equal(rows.length, all.length);
      // Ids and hashes are stored as raw 32-byte BLOBs.
      const byId = new Map(rows.map((r) => [r.id.toString('hex'), r]));
      for (const e of all) {
        const r = byId.get(e.id);
        assert.ok(r && r.id.length === 32 && r.sha256.length === 32);
        assert.deepEqual(r && { pack: r.pack_id, offset: Number(r.offset), length: Number(r.length), sha256: r.sha256.toString('hex') }, { pack: packOf.get(e.id), offset: e.offset, length: e.length, sha256: e.sha256 });
      }

      const unknown = Array.from({ length: CHUNK_LOOKUP_BATCH + 3 }, () => randomBytes(32).toString('hex'));
      const asked = [...all.map((e) => e.id), ...unknown, all[0]!.id];
      const present = await existingChunks(db, customer, asked);
      assert.deepEqual([...present].sort(), all.map((e) => e.id).sort());
      const located = await locateChunks(db, customer, asked);
      assert.equal(located.size, all.length);
      for (const e of all) assert.deepEqual(located.get(e.id), { pack: packOf.get(e.id), offset: e.offset, length: e.length });
      assert.equal((await existingChunks(db, 'other' as CustomerId, asked)).size, 0, 'scoped to the customer');
    } finally {
      await t.close();
    }
  });

  it('reuses prepared statements (LRU), but never one that is still being iterated', async () => {
    // The SQLite driver's statement cache, whatever the selected backend.
    const sqlite = new SQLite(':memory:');
    const cached = withStatementCache(sqlite, 2);
    try {
      const a = cached.prepare('select 1 as x');
      assert.equal(cached.prepare('select 1 as x'), a);
      const iter = a.iterate([]);
      iter.next();
      const b = cached.prepare('select 1 as x');
      assert.notEqual(b, a, 'a busy statement is not handed out again');
      assert.deepEqual(b.all([]), [{ x: 1 }]);
      iter.return?.();
      assert.equal(cached.prepare('select 1 as x'), a);
      cached.prepare('select 2');
      cached.prepare('select 3');
      assert.notEqual(cached.prepare('select 1 as x'), a, 'evicted after two other statements');
    } finally {
      cached.close();
    }
  });
});
