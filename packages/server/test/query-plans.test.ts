/**
 * Per-customer work (GC, verification, retention, metering) reads only that customer's
 * rows, through indexes: its cost follows one customer's data, not the platform's. Checked
 * on PostgreSQL (always, whatever COFFRE_TEST_BACKEND says) with one large customer in the
 * tables: every query the jobs run for a small customer is EXPLAINed, and none may scan a
 * large table sequentially.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openAdmin } from '../src/admin/index.js';
import { AuditLog } from '../src/audit/log.js';
import { fileAuditHead } from '../src/audit/head.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { runGc } from '../src/gc/gc.js';
import { findJob } from '../src/jobs/index.js';
import type { JobContext } from '../src/jobs/job.js';
import { startServer } from '../src/server.js';
import { prepareDataDir } from './backends.js';
import { buildCustomer, buildPack, enrollMachine, httpsRequest, snapshotRequest, tempDir, testKeys, TestClock, type TestServer } from './kit.js';

/** Tables that grow with the platform: a sequential scan of one of them is a cost that follows every customer's data. */
const LARGE = ['chunks', 'packs', 'snapshots', 'pack_tombstones', 'backup_runs'];
const BIG_PACKS = 20_000;
const BIG_CHUNKS = 400_000;
const BIG_SNAPSHOTS = 20_000;

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Index Cond'?: string;
  readonly 'Recheck Cond'?: string;
  readonly Plans?: readonly PlanNode[];
}

/**
 * Where a plan reads a large table other than through a condition on the customer (or one
 * of its machines or packs: each belongs to one customer): a sequential scan, or an index scan
 * whose condition names neither (a whole index read is the platform's cost too).
 */
function platformReads(node: PlanNode, out: string[] = []): string[] {
  const rel = node['Relation Name'];
  if (rel && LARGE.includes(rel) && node['Node Type'] !== 'ModifyTable') {
    const cond = node['Index Cond'] ?? node['Recheck Cond'] ?? '';
    if (!/customer_id|customer_seq|machine_id|pack_seq/.test(cond)) out.push(`${node['Node Type']} on ${rel}${cond ? ` (${cond})` : ''}`);
  }
  for (const child of node.Plans ?? []) platformReads(child, out);
  return out;
}

async function explain(client: pg.Client, query: string, params: readonly unknown[] = []): Promise<PlanNode> {
  const r = await client.query(`explain (format json) ${query}`, params as unknown[]);
  return (r.rows[0] as { 'QUERY PLAN': { Plan: PlanNode }[] })['QUERY PLAN'][0]!.Plan;
}

describe('per-customer jobs on PostgreSQL use indexes, whatever the size of other customers', () => {
  let ts: TestServer;
  let url: string;
  let cleanup: () => Promise<void>;
  const queries = new Map<string, readonly unknown[]>();
  let logged: Database;
  let small: string;

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    const dataDir = path.join(tmp.dir, 'data');
    await prepareDataDir(dataDir, 'postgres-s3');
    const clock = new TestClock();
    const server = await startServer({ dataDir, listen: '127.0.0.1:0', clock: clock.now, log: () => undefined, runJobs: false });
    const admin = await openAdmin(dataDir, clock.now);
    ts = {
      server,
      admin,
      clock,
      logs: [],
      dataDir,
      request: (method, urlPath, o) => httpsRequest(server.url, server.certPem, method, `/api/v1${urlPath}`, o),
      close: async () => {
        await server.close();
        await admin.close();
      },
    };
    url = admin.dataDir.settings.database!;

    // The large customer: rows written straight into the tables (no objects: its data are never read here).
    const big = await buildCustomer(ts, 'Grand cabinet');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query(`insert into machines (id, customer_id, name, hostname, os, agent_version, credential_hash, created_at)
        select 'bm' || i, $1, 'poste ' || i, 'h', 'linux', '0.1.0', md5('cred' || i), '2026-01-01T00:00:00.000Z' from generate_series(1, 50) i`, [big.id]);
      // Numbers for its packs, from the counter the server hands them out from.
      const base = Number((await db.query(`update sequences set last = last + ${BIG_PACKS} where name = 'packs' returning last`)).rows[0].last) - BIG_PACKS;
      await db.query(`insert into packs (customer_id, id, seq, size, chunk_count, created_at, verified_at)
        select $1, encode(sha256(('p' || i)::bytea), 'hex'), ${base} + i, 16000000, 20, '2026-01-01T00:00:00.000Z', case when i % 2 = 0 then null else '2026-02-01T00:00:00.000Z' end
        from generate_series(1, ${BIG_PACKS}) i`, [big.id]);
      await db.query(`insert into chunks (pack_seq, "offset", touched_ms, customer_seq, length, id, sha256)
        select ${base} + 1 + i % ${BIG_PACKS}, 12 + 80 * 20 + (i / ${BIG_PACKS}) * 1000, 1767225600000, (select seq from customers where id = $1), 1000, sha256(('c' || i)::bytea), sha256(('s' || i)::bytea)
        from generate_series(1, ${BIG_CHUNKS}) i`, [big.id]);
      await db.query(`insert into snapshots (customer_id, id, machine_id, parent, time, manifest_json, ref_count, logical_size, deleted_at)
        select $1, md5('snap' || i), 'bm' || (1 + i % 50), null, to_char(timestamp '2026-01-01' + i * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), '{}', 1000, 1000000,
          case when i % 10 = 0 then '2026-02-01T00:00:00.000Z' else null end
        from generate_series(1, ${BIG_SNAPSHOTS}) i`, [big.id]);
      await db.query(`insert into pack_tombstones (customer_id, id, size, reason, replaced_by, deleted_at, delete_after, object_deleted_at)
        select $1, encode(sha256(('t' || i)::bytea), 'hex'), 1000, 'dead', null, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'
        from generate_series(1, 20000) i`, [big.id]);
      await db.query('analyze');
    } finally {
      await db.end();
    }

    // The small customer: real data through the API (packs, snapshots, one in the bin).
    const c = await buildCustomer(ts, 'Petit cabinet');
    small = c.id;
    const m = await enrollMachine(ts, c.name);
    const keys = testKeys();
    const packs = [buildPack(keys), buildPack(keys)];
    for (const p of packs) assert.equal((await m.request('PUT', `/packs/${p.id}`, { body: p.data })).status, 200);
    for (const p of packs) assert.equal((await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, p.chunkIds) })).status, 201);

    logged = (
      await openDatabase(
        { kind: 'postgres', url },
        {
          log: (e) => {
            if (e.level === 'query') queries.set(e.query.sql, e.query.parameters);
          },
        },
      )
    ).db;
  });

  after(async () => {
    await logged?.destroy();
    await ts?.close();
    await cleanup?.();
  });

  it('GC, verify, retention and metering of the small customer never scan a large table', async () => {
    const ctx: JobContext = {
      db: logged,
      store: ts.admin.store,
      audit: new AuditLog(logged, fileAuditHead(path.join(ts.dataDir, 'plans-head.json')), ts.clock.now),
      clock: ts.clock.now,
      log: () => undefined,
      settings: ts.admin.dataDir.settings,
      mailer: null,
      onlyCustomers: [small],
    };
    const gc = await runGc({ db: logged, store: ts.admin.store, clock: ts.clock.now, log: () => undefined }, { customerIds: [small], graceMs: 0 });
    assert.equal(gc.counts.failed, 0, JSON.stringify(gc.items));
    for (const name of ['verify', 'retention', 'metering']) {
      const r = await findJob(name)!.run(ctx);
      assert.ok(!r.items.some((i) => i.outcome === 'failed'), `${name}: ${JSON.stringify(r.items)}`);
    }
    const verified = await logged.selectFrom('packs').select('verified_at').where('customer_id', '=', small).execute();
    assert.ok(verified.every((p) => p.verified_at !== null), 'the small customer was verified for real');

    const touching = [...queries].filter(([q]) => LARGE.some((t) => new RegExp(`"${t}"|\\b${t}\\b`).test(q)));
    assert.ok(touching.length >= 15, `the jobs ran their queries (${touching.length} seen)`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const scans: string[] = [];
    try {
      for (const [q, params] of touching) {
        const bad = platformReads(await explain(client, q, params));
        if (bad.length > 0) scans.push(`${bad.join('; ')}\n  in: ${q.trim()}`);
      }
    } finally {
      await client.end();
    }
    assert.deepEqual(scans, [], `sequential scans of large tables:\n${scans.join('\n\n')}`);
  });

  it('the check itself flags queries that ignore the customer, and passes one that names it', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const q of [sql`select count(*) from packs`, sql`select count(*) from packs where verified_at is null`, sql`select id from chunks where length = ${5}`]) {
        const c = q.compile(logged);
        assert.notDeepEqual(platformReads(await explain(client, c.sql, c.parameters)), [], c.sql);
      }
      const ok = sql`select count(*) from packs where customer_id = ${small}`.compile(logged);
      assert.deepEqual(platformReads(await explain(client, ok.sql, ok.parameters)), []);
    } finally {
      await client.end();
    }
  });
});
