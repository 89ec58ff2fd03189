// Over 400 lines: measuring, checking, reporting and drawing one benchmark, in one script
// that runs alone (node bench/chunk-index.mjs) with no dependency beyond the built server.
// The server's chunk index at scale: inserts and look-ups through the server's own
// compiled query functions (packages/server/dist/src/db/queries/packs.js) on each engine
// (SQLite file, PostgreSQL) while the `chunks` table grows to 10 million rows.
//
//   node bench/chunk-index.mjs                        # 10,000,000 rows, both engines
//   node bench/chunk-index.mjs --rows 200000          # quick run (checkpoint every 20,000 rows)
//   node bench/chunk-index.mjs --engines sqlite       # one engine
//   node bench/chunk-index.mjs --render FILE.json [--svg F] [--md F]   # re-render a result
//
// Flags (environment in brackets):
//   --rows N          rows to reach (CHUNK_INDEX_ROWS, default 10000000)
//   --step N          rows between checkpoints (CHUNK_INDEX_STEP, default rows/10)
//   --engines LIST    sqlite,postgres (CHUNK_INDEX_ENGINES)
//   --customers N     customers the packs are spread over (default 20)
//   --pack-chunks N   mean chunks per pack (default 4000; each pack 0.75–1.25× that)
//   --batches N       look-up batches per checkpoint and kind (default 200)
//   --batch-ids N     ids per look-up batch (default 512 = the server's CHUNK_LOOKUP_BATCH), half known
//   --concurrency N   packs indexed at once (default 1, as one agent uploading)
//   --out DIR         results dir (default $BENCH_DIR/chunk-index, i.e. bench/work/chunk-index)
//   --svg FILE        where to draw the curve (default OUT/chunk-index.svg)
//   --keep            keep the SQLite file and the PostgreSQL database afterwards
//   --seed N          id generator seed
//   --sqlite-pragma "cache_size=-262144;mmap_size=…"   extra pragmas after the server's own
//                     (CHUNK_INDEX_SQLITE_PRAGMA): to try a setting, not what the server runs
// PostgreSQL: BENCH_PG_URL (default postgres://postgres:coffre-test@127.0.0.1:5433/postgres);
// a fresh database is created for the run and dropped at the end (unless --keep).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import console from 'node:console';
import { createCipheriv, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processCpuSeconds } from './backends.mjs';
import { machineBusySeconds } from './measure.mjs';
import { Rng } from './prng.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SERVER_DIST = path.join(ROOT, 'packages', 'server', 'dist', 'src');
export const DEFAULT_PG_URL = 'postgres://postgres:coffre-test@127.0.0.1:5433/postgres';
const MiB = 1048576;

// ------------------------------------------------------------------ options

function parseArgs(argv) {
  const env = process.env;
  const o = {
    rows: Number(env.CHUNK_INDEX_ROWS || 10_000_000),
    step: env.CHUNK_INDEX_STEP ? Number(env.CHUNK_INDEX_STEP) : null,
    engines: (env.CHUNK_INDEX_ENGINES || 'sqlite,postgres'),
    customers: 20,
    packChunks: 4000,
    batches: 200,
    batchIds: 512,
    concurrency: 1,
    out: null,
    svg: null,
    md: null,
    keep: false,
    seed: 0xc41c,
    render: null,
    statsWaitMs: Number(env.CHUNK_INDEX_PG_STATS_WAIT_MS || 10500),
    sqlitePragma: env.CHUNK_INDEX_SQLITE_PRAGMA || '',
  };
  const names = {
    '--rows': 'rows', '--step': 'step', '--engines': 'engines', '--customers': 'customers', '--pack-chunks': 'packChunks',
    '--batches': 'batches', '--batch-ids': 'batchIds', '--concurrency': 'concurrency', '--out': 'out', '--svg': 'svg',
    '--md': 'md', '--seed': 'seed', '--render': 'render', '--sqlite-pragma': 'sqlitePragma',
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    if (a.includes('=')) [a, v] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    if (a === '--keep') {
      o.keep = true;
      continue;
    }
    if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n'));
      process.exit(0);
    }
    const k = names[a];
    if (!k) throw new Error(`unknown argument ${a} (see --help)`);
    if (v === undefined) v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    o[k] = ['out', 'svg', 'md', 'render', 'engines', 'sqlitePragma'].includes(k) ? v : Number(v);
    if (typeof o[k] === 'number' && !(o[k] >= 0)) throw new Error(`${a} must be a non-negative number, got "${v}"`);
  }
  o.engines = o.engines.split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of o.engines) if (!['sqlite', 'postgres'].includes(e)) throw new Error(`unknown engine "${e}" (sqlite, postgres)`);
  if (!(o.rows >= 1)) throw new Error('--rows must be ≥ 1');
  o.step = o.step || Math.max(1, Math.round(o.rows / 10));
  o.out = path.resolve(o.out || path.join(process.env.BENCH_DIR || path.join(HERE, 'work'), 'chunk-index'));
  o.svg = path.resolve(o.svg || path.join(o.out, 'chunk-index.svg'));
  o.md = path.resolve(o.md || path.join(o.out, 'results.md'));
  o.pgUrl = process.env.BENCH_PG_URL || DEFAULT_PG_URL;
  return o;
}

// ------------------------------------------------------------------ deterministic data

/** 32-byte pseudo-random values indexed by row number: AES-128-ECB of (row, lane) blocks (a permutation, so distinct). */
function prf(key) {
  return (start, n, lane) => {
    const c = createCipheriv('aes-128-ecb', key, null);
    c.setAutoPadding(false);
    const input = Buffer.alloc(n * 32);
    for (let i = 0; i < n; i++) {
      const row = start + i;
      for (let half = 0; half < 2; half++) {
        const o = i * 32 + half * 16;
        input.writeUInt32LE(row >>> 0, o);
        input.writeUInt32LE(Math.floor(row / 4294967296), o + 4);
        input.writeUInt32LE(lane, o + 8);
        input.writeUInt32LE(half, o + 12);
      }
    }
    return Buffer.concat([c.update(input), c.final()]);
  };
}

const LANE_ID = 1;
const LANE_SHA = 2;
const LANE_PACK = 3;

/** The packs of the run: sizes, owners and first row, the same for every engine. */
function planPacks(o) {
  const rng = new Rng(o.seed, 'packs');
  const packs = [];
  let rows = 0;
  const lo = Math.max(1, Math.round(o.packChunks * 0.75));
  const hi = Math.max(lo, Math.round(o.packChunks * 1.25));
  while (rows < o.rows) {
    // Packs end exactly on each checkpoint (the last pack before one may be smaller).
    const boundary = Math.min(o.rows, (Math.floor(rows / o.step) + 1) * o.step);
    const count = Math.min(rng.int(lo, hi), boundary - rows);
    packs.push({ index: packs.length, start: rows, count, customer: rng.int(0, o.customers - 1) });
    rows += count;
  }
  return packs;
}

function packEntries(gen, pack) {
  const ids = gen(pack.start, pack.count, LANE_ID);
  const shas = gen(pack.start, pack.count, LANE_SHA);
  const entries = new Array(pack.count);
  let offset = 12 + 80 * pack.count; // a header, roughly
  for (let i = 0; i < pack.count; i++) {
    const id = ids.subarray(i * 32, i * 32 + 32);
    // Encrypted chunk lengths of a small-files pack: ~1–8 KiB (a 4,000-chunk pack ≈ 16 MiB).
    const length = 1000 + (id.readUInt32LE(0) % 7200);
    entries[i] = { id: id.toString('hex'), offset, length, sha256: shas.subarray(i * 32, i * 32 + 32).toString('hex') };
    offset += length;
  }
  return { id: gen(pack.index, 1, LANE_PACK).toString('hex'), size: offset, entries };
}

// ------------------------------------------------------------------ process statistics

function procIo() {
  try {
    const o = {};
    for (const line of fs.readFileSync('/proc/self/io', 'utf8').trim().split('\n')) {
      const [k, v] = line.split(':');
      o[k.trim()] = Number(v);
    }
    return o;
  } catch {
    return null;
  }
}

/** CPU seconds of every process named `postgres` (incl. reaped children): PostgreSQL's own work, all sessions. */
const postgresCpuSeconds = () => processCpuSeconds((comm) => comm === 'postgres');

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function latencyStats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const r = (x) => (x == null ? null : Math.round(x * 100) / 100);
  return { p50_ms: r(quantile(s, 0.5)), p95_ms: r(quantile(s, 0.95)), p99_ms: r(quantile(s, 0.99)), max_ms: r(s[s.length - 1]) };
}

// ------------------------------------------------------------------ engines

async function loadServer() {
  const imp = (p) => import(pathToFileURL(path.join(SERVER_DIST, p)).href);
  const missing = ['db/database.js', 'db/queries/packs.js', 'db/queries/orgs.js'].filter((p) => !fs.existsSync(path.join(SERVER_DIST, p)));
  if (missing.length) throw new Error(`the server is not built (${missing.join(', ')} missing under ${SERVER_DIST}): npm run build`);
  const [database, packs, orgs] = await Promise.all([imp('db/database.js'), imp('db/queries/packs.js'), imp('db/queries/orgs.js')]);
  const { sql } = await import('kysely');
  const pg = (await import('pg')).default;
  return { ...database, ...packs, ...orgs, sql, pg };
}

class SqliteEngine {
  constructor(S, o) {
    this.S = S;
    this.name = 'sqlite';
    this.label = 'SQLite';
    this.dir = path.join(o.out, 'sqlite');
    this.file = path.join(this.dir, 'coffre.db');
    this.extraPragmas = o.sqlitePragma.split(';').map((x) => x.trim()).filter(Boolean);
  }

  async open() {
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true });
    ({ db: this.db } = await this.S.openDatabase({ kind: 'sqlite', file: this.file }));
    for (const p of this.extraPragmas) {
      if (!/^[a-z_]+\s*=\s*[-\w]+$/i.test(p)) throw new Error(`--sqlite-pragma: "${p}" is not NAME=VALUE`);
      await this.raw(`pragma ${p}`);
    }
    const p = async (name) => {
      const rows = await this.raw(`pragma ${name}`);
      return rows[0] ? Object.values(rows[0])[0] : null;
    };
    this.settings = {
      file: this.file,
      sqlite_version: (await this.raw('select sqlite_version() as v'))[0].v,
      journal_mode: await p('journal_mode'), synchronous: await p('synchronous'), cache_size: await p('cache_size'),
      page_size: await p('page_size'), mmap_size: await p('mmap_size'), wal_autocheckpoint: await p('wal_autocheckpoint'),
      journal_size_limit: await p('journal_size_limit'), temp_store: await p('temp_store'),
      extra_pragmas: this.extraPragmas.join('; ') || null,
      note: 'pragmas as set by the server\'s openDatabase (packages/server/src/db/database.ts); synchronous 2 = FULL; ' +
        'cache_size < 0 is KiB (the server sets -65536 = 64 MiB, and mmap_size 2 GiB, since the run of 2026-12-07 19:05; before, better-sqlite3\'s default -16000 = 16 MB)',
    };
  }

  async raw(text) {
    return (await this.S.sql.raw(text).execute(this.db)).rows;
  }

  async sizes() {
    const st = (f) => {
      try {
        return fs.statSync(f).size;
      } catch {
        return 0;
      }
    };
    const before = { file: st(this.file), wal: st(`${this.file}-wal`) };
    const t = performance.now();
    const ck = (await this.raw('pragma wal_checkpoint(TRUNCATE)'))[0];
    const checkpointMs = performance.now() - t;
    const pageCount = Number((await this.raw('pragma page_count'))[0].page_count);
    const free = Number((await this.raw('pragma freelist_count'))[0].freelist_count);
    const file = st(this.file);
    const wal = st(`${this.file}-wal`);
    return {
      total_bytes: file + wal, file_bytes: file, wal_bytes: wal, before_checkpoint: before,
      checkpoint_ms: Math.round(checkpointMs), checkpoint: ck, page_count: pageCount, freelist_count: free,
    };
  }

  /** Per-table and per-index bytes (dbstat: reads every page; run once at the end). */
  async breakdown() {
    const rows = await this.raw('select name, sum(pgsize) as bytes, count(*) as pages from dbstat group by name order by bytes desc');
    const plan = await this.raw('explain query plan select id from chunks where customer_seq = (select seq from customers where id = \'x\') and id in (x\'00\', x\'01\')');
    return { objects: rows.map((r) => ({ name: r.name, bytes: Number(r.bytes), pages: Number(r.pages) })), lookup_plan: plan.map((r) => r.detail) };
  }

  async statsSnapshot() {
    return { io: procIo() };
  }

  diffStats(a, b) {
    if (!a.io || !b.io) return {};
    const d = (k) => b.io[k] - a.io[k];
    return {
      read_syscall_bytes: d('rchar'), write_syscall_bytes: d('wchar'), read_storage_bytes: d('read_bytes'),
      write_storage_bytes: d('write_bytes'),
      note: '/proc/self/io of this process (SQLite runs in it): read_syscall_bytes are pages SQLite had to read ' +
        'from the OS (its own page cache missed; most come from the OS page cache), write_* are WAL + checkpoint writes',
    };
  }

  async close(keep) {
    await this.db?.destroy();
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

class PostgresEngine {
  constructor(S, o) {
    this.S = S;
    this.name = 'postgres';
    this.label = 'PostgreSQL';
    this.adminUrl = o.pgUrl;
    const stamp = new Date().toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
    this.dbName = `bench_chunks_${stamp}_${randomBytes(3).toString('hex')}`;
    const u = new URL(o.pgUrl);
    u.pathname = `/${this.dbName}`;
    this.url = u.toString();
    this.statsWaitMs = o.statsWaitMs;
  }

  async open() {
    const admin = new this.S.pg.Client({ connectionString: this.adminUrl });
    await admin.connect();
    try {
      await admin.query(`create database ${this.dbName}`);
    } finally {
      await admin.end();
    }
    this.created = true;
    ({ db: this.db } = await this.S.openDatabase({ kind: 'postgres', url: this.url }));
    this.client = new this.S.pg.Client({ connectionString: this.url, application_name: 'coffre-bench-stats' });
    await this.client.connect();
    const names = ['server_version', 'shared_buffers', 'effective_cache_size', 'work_mem', 'maintenance_work_mem', 'fsync',
      'synchronous_commit', 'full_page_writes', 'wal_level', 'max_wal_size', 'checkpoint_timeout', 'autovacuum',
      'random_page_cost', 'data_directory'];
    const { rows } = await this.client.query('select name, setting, unit from pg_settings where name = any($1)', [names]);
    this.settings = { database: this.dbName, url: this.url.replace(/:[^:@/]*@/, '@') };
    for (const r of rows) this.settings[r.name] = r.unit ? `${r.setting} × ${r.unit}` : r.setting;
    this.settings.shared_buffers_pretty = (await this.client.query('show shared_buffers')).rows[0].shared_buffers;
  }

  async sizes() {
    const { rows } = await this.client.query(`select
      pg_total_relation_size('chunks') as chunks_total, pg_relation_size('chunks') as chunks_heap,
      pg_indexes_size('chunks') as chunks_indexes, pg_total_relation_size('packs') as packs_total,
      pg_database_size(current_database()) as database`);
    const r = rows[0];
    const idx = await this.client.query(`select indexrelname as name, pg_relation_size(indexrelid) as bytes
      from pg_stat_user_indexes where relname in ('chunks', 'packs') order by 2 desc`);
    const tup = await this.client.query(`select relname, n_live_tup, n_dead_tup, last_autovacuum, last_autoanalyze,
      autovacuum_count from pg_stat_user_tables where relname in ('chunks', 'packs')`);
    const n = (x) => Number(x);
    return {
      total_bytes: n(r.chunks_total) + n(r.packs_total), chunks_total_bytes: n(r.chunks_total), chunks_heap_bytes: n(r.chunks_heap),
      chunks_indexes_bytes: n(r.chunks_indexes), packs_total_bytes: n(r.packs_total), database_bytes: n(r.database),
      indexes: idx.rows.map((x) => ({ name: x.name, bytes: n(x.bytes) })),
      tables: tup.rows,
    };
  }

  /**
   * The server's look-up SQL (as existingChunks sends it) for a few sample batches, explained
   * with buffers: how it runs on this table now (plan shape, blocks from shared_buffers or not).
   */
  async explainLookup(samples) {
    const out = { node: null, shared_hit: 0, shared_read: 0, heap_fetches: null, execution_ms: 0, batches: 0 };
    for (const { customerId, ids } of samples) {
      const ph = ids.map((_, i) => `$${i + 2}`).join(', ');
      const q = `explain (analyze, buffers, format json) select "id" from "chunks" where "customer_seq" = (select "seq" from "customers" where "id" = $1) and "id" in (${ph})`;
      const { rows } = await this.client.query(q, [customerId, ...ids.map((h) => Buffer.from(h, 'hex'))]);
      const plan = rows[0]['QUERY PLAN'][0];
      const names = [];
      for (let n = plan.Plan; n; n = n.Plans && n.Plans[0]) {
        names.push(`${n['Node Type']}${n['Index Name'] ? ` on ${n['Index Name']}` : ''}`);
        if (n['Heap Fetches'] != null) out.heap_fetches = (out.heap_fetches ?? 0) + n['Heap Fetches'];
      }
      out.node = names.join(' ← ');
      out.shared_hit += plan.Plan['Shared Hit Blocks'];
      out.shared_read += plan.Plan['Shared Read Blocks'];
      out.execution_ms += plan['Execution Time'];
      out.batches++;
    }
    out.execution_ms = Math.round(out.execution_ms * 100) / 100;
    return out;
  }

  /**
   * Sessions publish their table/index statistics when idle, at most once a second, else
   * within 10 s (PGSTAT_IDLE_INTERVAL). The server's pool runs this bench's queries one at a
   * time, so it holds one connection: ask it to flush now. With more connections open, wait.
   */
  async flushStats() {
    await this.S.sql`select pg_stat_force_next_flush()`.execute(this.db);
    const { rows } = await this.client.query(`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid()`);
    await sleep(rows[0].n <= 1 ? 200 : this.statsWaitMs);
  }

  async statsSnapshot() {
    await this.flushStats();
    const io = await this.client.query(`select
      (select coalesce(sum(heap_blks_read),0) from pg_statio_user_tables where relname='chunks') as heap_read,
      (select coalesce(sum(heap_blks_hit),0) from pg_statio_user_tables where relname='chunks') as heap_hit,
      (select coalesce(sum(idx_blks_read),0) from pg_statio_user_indexes where relname='chunks') as idx_read,
      (select coalesce(sum(idx_blks_hit),0) from pg_statio_user_indexes where relname='chunks') as idx_hit,
      (select wal_bytes from pg_stat_wal) as wal_bytes,
      (select checkpoints_timed + checkpoints_req from pg_stat_bgwriter) as checkpoints,
      (select buffers_backend from pg_stat_bgwriter) as buffers_backend`);
    return { ...Object.fromEntries(Object.entries(io.rows[0]).map(([k, v]) => [k, Number(v)])), cpu_s: postgresCpuSeconds() };
  }

  diffStats(a, b) {
    const d = (k) => b[k] - a[k];
    const hitRatio = (hit, read) => (hit + read > 0 ? Math.round((hit / (hit + read)) * 10000) / 10000 : null);
    return {
      chunks_heap_blks_read: d('heap_read'), chunks_heap_blks_hit: d('heap_hit'), chunks_idx_blks_read: d('idx_read'),
      chunks_idx_blks_hit: d('idx_hit'),
      chunks_idx_hit_ratio: hitRatio(d('idx_hit'), d('idx_read')), chunks_heap_hit_ratio: hitRatio(d('heap_hit'), d('heap_read')),
      wal_bytes_cluster: d('wal_bytes'), checkpoints_cluster: d('checkpoints'), buffers_backend_cluster: d('buffers_backend'),
      postgres_cpu_s: Math.round(d('cpu_s') * 100) / 100,
      note: 'blks_read = 8 KiB blocks not in shared_buffers (read from the OS, mostly its page cache); *_cluster and ' +
        'postgres_cpu_s cover the whole PostgreSQL server (other databases too)',
    };
  }

  async breakdown() {
    return { sizes: await this.sizes() };
  }

  async close(keep) {
    await this.client?.end().catch(() => undefined);
    await this.db?.destroy().catch(() => undefined);
    if (this.created && !keep) {
      const admin = new this.S.pg.Client({ connectionString: this.adminUrl });
      await admin.connect();
      try {
        await admin.query(`drop database if exists ${this.dbName} with (force)`);
      } finally {
        await admin.end();
      }
    }
  }
}

// ------------------------------------------------------------------ the run

async function setupCustomers(S, engine, o, now) {
  const op = await S.operatorOrg(engine.db);
  const ids = [];
  for (let i = 0; i < o.customers; i++) {
    const row = await S.createOrg(engine.db, { name: `Cabinet bench ${String(i + 1).padStart(3, '0')}`, type: 'customer', parentId: op.id }, now);
    ids.push(row.id);
  }
  return ids;
}

/** Index packs until `target` rows; returns the interval's insert measurements. */
async function insertUntil(S, st, o, gen, plan, target, now) {
  const lat = [];
  let rows = 0;
  let insertMs = 0;
  let newRows = 0;
  const wall0 = performance.now();
  while (st.nextPack < plan.length && st.rows < target) {
    const group = [];
    while (group.length < o.concurrency && st.nextPack < plan.length && st.rows < target) {
      const p = plan[st.nextPack++];
      const { id, size, entries } = packEntries(gen, p);
      group.push({ p, id, size, entries });
      st.rows += p.count;
    }
    const t = performance.now();
    const res = await Promise.all(group.map(async (g) => {
      const t1 = performance.now();
      const n = await S.indexPack(st.engine.db, { customerId: st.customers[g.p.customer], packId: g.id, size: g.size, entries: g.entries, now });
      lat.push(performance.now() - t1);
      return n;
    }));
    insertMs += performance.now() - t;
    for (let i = 0; i < group.length; i++) {
      const g = group[i];
      rows += g.p.count;
      newRows += res[i];
      if (res[i] !== g.p.count) st.errors.push(`pack ${g.p.index}: indexPack reported ${res[i]} new rows of ${g.p.count}`);
      st.byCustomer[g.p.customer].push(g.p);
    }
  }
  return { rows, newRows, insertMs, wallMs: performance.now() - wall0, packs: lat.length, lat };
}

/** `batches` look-ups of `batchIds` ids of one customer each, half indexed (uniform over its rows so far), half unknown. */
async function lookups(S, st, o, gen, rng, fn) {
  const lat = [];
  let ids = 0;
  let wrong = 0;
  const withPacks = st.byCustomer.map((l, c) => (l.length ? c : -1)).filter((c) => c >= 0);
  const samples = [];
  for (let b = 0; b < o.batches; b++) {
    const c = rng.pick(withPacks);
    const packs = st.byCustomer[c];
    const known = new Set();
    const wantKnown = Math.floor(o.batchIds / 2);
    for (let tries = 0; known.size < wantKnown && tries < wantKnown * 4; tries++) {
      const p = rng.pick(packs);
      known.add(gen(p.start + rng.int(0, p.count - 1), 1, LANE_ID).toString('hex'));
    }
    const unknown = randomBytes(32 * (o.batchIds - known.size));
    const batch = [...known];
    for (let i = 0; i < unknown.length; i += 32) batch.push(unknown.subarray(i, i + 32).toString('hex'));
    rng.shuffle(batch);
    const t = performance.now();
    const found = await fn(st.engine.db, st.customers[c], batch);
    lat.push(performance.now() - t);
    ids += batch.length;
    if (found.size !== known.size || [...known].some((id) => !found.has(id))) wrong++;
    if (samples.length < 5) samples.push({ customerId: st.customers[c], ids: batch });
  }
  const ms = lat.reduce((a, b) => a + b, 0);
  return { ids, batches: lat.length, ms: Math.round(ms), ids_per_s: Math.round(ids / (ms / 1000)), wrong_answers: wrong, ...latencyStats(lat), samples };
}

async function checkpoint(S, st, o, gen, plan, target, now, results) {
  const e = st.engine;
  const s0 = await e.statsSnapshot();
  const busy0 = machineBusySeconds();
  const cpu0 = process.cpuUsage();
  const ins = await insertUntil(S, st, o, gen, plan, target, now);
  const cpu = process.cpuUsage(cpu0);
  const busy = machineBusySeconds() - busy0;
  const s1 = await e.statsSnapshot();
  const size = await e.sizes();
  const rng = new Rng(o.seed ^ st.rows, `lookup-${st.rows}`); // the same look-ups for every engine at this row count
  const l0 = await e.statsSnapshot();
  const look = await lookups(S, st, o, gen, rng, (db, c, ids) => S.existingChunks(db, c, ids));
  const l1 = await e.statsSnapshot();
  const touchedNow = new Date(now);
  const lookT = await lookups(S, st, o, gen, new Rng(o.seed ^ st.rows, `lookup-t-${st.rows}`),
    (db, c, ids) => S.existingChunksTouched(db, c, ids, touchedNow));
  let explain = null;
  if (e.explainLookup) explain = await e.explainLookup(look.samples).catch((err) => ({ error: err.message }));
  delete look.samples;
  delete lookT.samples;
  const wallS = ins.wallMs / 1000;
  const nodeCpu = (cpu.user + cpu.system) / 1e6;
  const rec = {
    engine: e.name, rows: st.rows, packs: st.nextPack, at: new Date().toISOString(),
    insert: {
      rows: ins.rows, new_rows: ins.newRows, packs: ins.packs, ms: Math.round(ins.insertMs), wall_ms: Math.round(ins.wallMs),
      rows_per_s: Math.round(ins.rows / (ins.insertMs / 1000)), pack: latencyStats(ins.lat),
      node_cpu_s: Math.round(nodeCpu * 100) / 100,
      machine_busy_share: Math.round((busy / (wallS * os.cpus().length)) * 1000) / 1000,
      stats: e.diffStats(s0, s1),
    },
    lookup: { ...look, stats: e.diffStats(l0, l1) },
    lookup_touched: lookT,
    size,
    explain,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  results.checkpoints.push(rec);
  const mib = (b) => (b / MiB).toFixed(1);
  console.log(`${e.label.padEnd(10)} ${String(st.rows).padStart(10)} rows: insert ${String(rec.insert.rows_per_s).padStart(7)} rows/s ` +
    `(pack p95 ${rec.insert.pack.p95_ms} ms, max ${rec.insert.pack.max_ms} ms), lookup ${String(look.ids_per_s).padStart(7)} ids/s ` +
    `(batch p95 ${look.p95_ms} ms), touched-lookup ${lookT.ids_per_s} ids/s, size ${mib(size.total_bytes)} MiB` +
    `${size.database_bytes ? ` (database ${mib(size.database_bytes)} MiB)` : ''}, machine busy ${Math.round(rec.insert.machine_busy_share * 100)} %` +
    `${look.wrong_answers || lookT.wrong_answers ? `  !!! ${look.wrong_answers + lookT.wrong_answers} WRONG look-up answers` : ''}`);
  return rec;
}

async function runBench(o) {
  const S = await loadServer();
  fs.mkdirSync(o.out, { recursive: true });
  const plan = planPacks(o);
  const gen = prf(new Rng(o.seed, 'ids').bytes(16));
  const now = new Date().toISOString();
  const results = {
    schema: 1, kind: 'chunk-index', started_at: now,
    config: {
      rows: o.rows, step: o.step, engines: o.engines, customers: o.customers, pack_chunks_mean: o.packChunks,
      packs: plan.length, lookup_batches: o.batches, lookup_batch_ids: o.batchIds, lookup_known_share: 0.5,
      concurrency: o.concurrency, seed: o.seed,
      code_path: 'indexPack / existingChunks / existingChunksTouched from packages/server/dist/src/db/queries/packs.js, ' +
        'databases opened by openDatabase (db/database.js), customers created by createOrg (db/queries/orgs.js)',
    },
    machine: {
      nproc: os.cpus().length, cpu_model: os.cpus()[0]?.model, ram_mib: Math.round(os.totalmem() / MiB), kernel: `${os.type()} ${os.release()}`,
      node: process.version, niceness: os.getPriority(),
    },
    engines: {},
    checkpoints: [],
    errors: [],
    notes: [],
  };
  const engines = o.engines.map((n) => (n === 'sqlite' ? new SqliteEngine(S, o) : new PostgresEngine(S, o)));
  const states = [];
  const save = () => {
    fs.writeFileSync(path.join(o.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  };
  const cleanup = async () => {
    for (const e of engines) await e.close(o.keep).catch((err) => console.error(`closing ${e.label}: ${err.message}`));
  };
  let stopping = false;
  const onSignal = async (sig) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: closing the databases (partial results in ${o.out}/results.json)`);
    results.interrupted = sig;
    save();
    await cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const e of engines) {
      await e.open();
      const customers = await setupCustomers(S, e, o, now);
      results.engines[e.name] = { label: e.label, settings: e.settings, empty: await e.sizes() };
      states.push({ engine: e, customers, rows: 0, nextPack: 0, byCustomer: customers.map(() => []), errors: [] });
    }
    console.log(`chunk index: ${o.rows} rows in ${plan.length} packs over ${o.customers} customers, checkpoint every ${o.step} rows, ` +
      `engines ${o.engines.join(', ')}; ${o.batches} look-up batches of ${o.batchIds} ids per checkpoint`);
    for (const e of engines) console.log(`  ${e.label}: ${JSON.stringify(e.settings)}`);
    // Engines take turns, one checkpoint interval each, so that both see the same machine load over the run.
    for (let target = o.step; ; target += o.step) {
      const t = Math.min(target, o.rows);
      for (const st of states) {
        if (st.failed) continue;
        try {
          await checkpoint(S, st, o, gen, plan, t, now, results);
        } catch (err) {
          st.failed = true;
          const msg = `${st.engine.label} failed at ${st.rows} rows: ${err.stack || err.message}`;
          results.errors.push(msg);
          console.error(`!!! ${msg}`);
        }
        results.errors.push(...st.errors.splice(0).map((m) => `${st.engine.label}: ${m}`));
        save();
      }
      if (t >= o.rows || states.every((s) => s.failed)) break;
    }
    for (const st of states) {
      if (st.failed) continue;
      console.log(`${st.engine.label}: final breakdown…`);
      results.engines[st.engine.name].final = await st.engine.breakdown();
    }
  } finally {
    results.finished_at = new Date().toISOString();
    save();
    await cleanup();
  }
  return results;
}

// ------------------------------------------------------------------ report

const fmtInt = (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US'));
const fmtMiB = (b) => (b == null ? '–' : (b / MiB).toFixed(0));
const fmtRows = (n) => (n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n >= 1_000_000 ? `${(n / 1_000_000).toFixed(2)}M` : `${(n / 1000).toFixed(0)}k`);

/** Bytes per million chunk rows: least-squares slope of size over rows, from the checkpoints. */
function slopePerMillion(points) {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx > 0 ? (sxy / sxx) * 1e6 : null;
}

export function summarize(results) {
  const by = (e) => results.checkpoints.filter((c) => c.engine === e);
  const out = {};
  for (const e of Object.keys(results.engines)) {
    const cps = by(e);
    if (!cps.length) continue;
    const last = cps[cps.length - 1];
    const first = cps[0];
    const ins = cps.map((c) => c.insert.rows_per_s);
    const look = cps.map((c) => c.lookup.ids_per_s);
    const s = {
      rows: last.rows,
      insert_first: first.insert.rows_per_s, insert_last: last.insert.rows_per_s, insert_min: Math.min(...ins), insert_max: Math.max(...ins),
      lookup_first: first.lookup.ids_per_s, lookup_last: last.lookup.ids_per_s, lookup_min: Math.min(...look), lookup_max: Math.max(...look),
      bytes_per_million_total: slopePerMillion(cps.map((c) => [c.rows, c.size.total_bytes])),
      bytes_at_end: last.size.total_bytes,
      wrong_answers: cps.reduce((a, c) => a + c.lookup.wrong_answers + c.lookup_touched.wrong_answers, 0),
    };
    if (e === 'postgres') {
      s.bytes_per_million_database = slopePerMillion(cps.map((c) => [c.rows, c.size.database_bytes]));
      s.bytes_per_million_chunks = slopePerMillion(cps.map((c) => [c.rows, c.size.chunks_total_bytes]));
      s.database_at_end = last.size.database_bytes;
    }
    out[e] = s;
  }
  return out;
}

/** Share of the machine's CPU during an insert interval used by neither this process nor (PostgreSQL run) PostgreSQL. */
function othersShare(x, results) {
  const wallS = (x.insert.wall_ms ?? x.insert.ms) / 1000;
  const cpus = (results.machine && results.machine.nproc) || 1;
  const own = x.insert.node_cpu_s + (x.engine === 'postgres' ? (x.insert.stats.postgres_cpu_s || 0) : 0);
  return Math.max(0, x.insert.machine_busy_share - own / (wallS * cpus));
}

export function renderMarkdown(results) {
  const L = [];
  const c = results.config;
  const engines = Object.keys(results.engines);
  const rowsList = [...new Set(results.checkpoints.map((x) => x.rows))].sort((a, b) => a - b);
  const get = (e, rows) => results.checkpoints.find((x) => x.engine === e && x.rows === rows);
  L.push(`### Chunk index at scale (${fmtInt(c.rows)} rows, ${c.customers} customers, packs of ~${fmtInt(c.pack_chunks_mean)} chunks)`);
  L.push('');
  const hdr = ['Rows'];
  const al = ['---:'];
  for (const e of engines) {
    const lb = results.engines[e].label;
    hdr.push(`${lb} insert rows/s`, `${lb} lookup ids/s`);
    al.push('---:', '---:');
    if (e === 'sqlite') {
      hdr.push('SQLite file MiB');
      al.push('---:');
    } else {
      hdr.push('PG chunks+packs MiB', 'PG database MiB');
      al.push('---:', '---:');
    }
  }
  L.push(`| ${hdr.join(' | ')} |`);
  L.push(`|${al.join('|')}|`);
  for (const r of rowsList) {
    const cells = [fmtRows(r)];
    for (const e of engines) {
      const x = get(e, r);
      cells.push(x ? fmtInt(x.insert.rows_per_s) : '–', x ? fmtInt(x.lookup.ids_per_s) : '–');
      if (e === 'sqlite') cells.push(x ? fmtMiB(x.size.total_bytes) : '–');
      else cells.push(x ? fmtMiB(x.size.total_bytes) : '–', x ? fmtMiB(x.size.database_bytes) : '–');
    }
    L.push(`| ${cells.join(' | ')} |`);
  }
  L.push('');
  L.push('Latencies and cache behaviour per checkpoint (pack = one `indexPack` of ~4,000 rows; batch = one `existingChunks` of 512 ids; ' +
    '"touched" = `existingChunksTouched`, what `POST /chunks/exists` runs, on ids touched within the last 30 s, so read-only):');
  L.push('');
  L.push('| Engine | Rows | pack p50 / p95 / max ms | batch p50 / p95 / max ms | touched ids/s | reads from OS per checkpoint | machine busy (others) |');
  L.push('|---|---:|---|---|---:|---|---:|');
  for (const e of engines) {
    for (const r of rowsList) {
      const x = get(e, r);
      if (!x) continue;
      let reads = '–';
      const st = x.insert.stats || {};
      if (e === 'sqlite' && st.read_syscall_bytes != null) {
        reads = `insert ${fmtMiB(st.read_syscall_bytes)} MiB read, ${fmtMiB(st.write_syscall_bytes)} MiB written; lookup ${fmtMiB(x.lookup.stats.read_syscall_bytes)} MiB read`;
      } else if (e === 'postgres' && st.chunks_idx_blks_read != null) {
        reads = `insert idx hit ${(st.chunks_idx_hit_ratio * 100).toFixed(1)} % (${fmtInt(st.chunks_idx_blks_read)} blocks read); ` +
          `lookup idx hit ${x.lookup.stats.chunks_idx_hit_ratio == null ? '–' : (x.lookup.stats.chunks_idx_hit_ratio * 100).toFixed(1)} %` +
          `${x.explain && x.explain.node ? `; plan ${x.explain.node}, ${x.explain.batches} batches explained: ` +
            `${fmtInt(x.explain.shared_hit)} blocks hit, ${fmtInt(x.explain.shared_read)} read` : ''}`;
      }
      L.push(`| ${results.engines[e].label} | ${fmtRows(r)} | ${x.insert.pack.p50_ms} / ${x.insert.pack.p95_ms} / ${x.insert.pack.max_ms} | ` +
        `${x.lookup.p50_ms} / ${x.lookup.p95_ms} / ${x.lookup.max_ms} | ${fmtInt(x.lookup_touched.ids_per_s)} | ${reads} | ` +
        `${Math.round(x.insert.machine_busy_share * 100)} % (${Math.round(othersShare(x, results) * 100)} %) |`);
    }
  }
  L.push('');
  const sum = summarize(results);
  for (const [e, s] of Object.entries(sum)) {
    const lb = results.engines[e].label;
    let line = `- ${lb}: insert ${fmtInt(s.insert_first)} → ${fmtInt(s.insert_last)} rows/s (min ${fmtInt(s.insert_min)}, max ${fmtInt(s.insert_max)}), ` +
      `lookup ${fmtInt(s.lookup_first)} → ${fmtInt(s.lookup_last)} ids/s (min ${fmtInt(s.lookup_min)}, max ${fmtInt(s.lookup_max)}); `;
    if (e === 'sqlite') line += `${fmtInt(s.bytes_per_million_total / MiB)} MiB per million chunk rows (file after a checkpoint, slope), ${fmtMiB(s.bytes_at_end)} MiB at ${fmtRows(s.rows)}`;
    else {
      line += `${fmtInt(s.bytes_per_million_total / MiB)} MiB per million chunk rows in chunks+packs with their indexes ` +
        `(${fmtInt(s.bytes_per_million_database / MiB)} MiB per million of pg_database_size), ${fmtMiB(s.bytes_at_end)} MiB ` +
        `(database ${fmtMiB(s.database_at_end)} MiB) at ${fmtRows(s.rows)}`;
    }
    if (s.wrong_answers) line += `; **${s.wrong_answers} look-up batches answered wrongly**`;
    L.push(line);
  }
  for (const [e, x] of Object.entries(results.engines)) {
    const st = x.settings || {};
    if (e === 'sqlite') {
      L.push(`- SQLite ${st.sqlite_version}: journal_mode ${st.journal_mode}, synchronous ${st.synchronous} (FULL), cache_size ${st.cache_size}, ` +
        `page_size ${st.page_size}, mmap_size ${st.mmap_size}, wal_autocheckpoint ${st.wal_autocheckpoint} pages ` +
        `${st.extra_pragmas ? `(**not the server's settings**: the bench set ${st.extra_pragmas})` : '(the server\'s settings)'}`);
      const objs = x.final && x.final.objects;
      if (objs) L.push(`  - at the end: ${objs.filter((b) => /^(chunks|packs|sqlite_autoindex_packs)/.test(b.name)).map((b) => `${b.name} ${fmtMiB(b.bytes)} MiB`).join(', ')}`);
    } else {
      L.push(`- PostgreSQL ${st.server_version}: shared_buffers ${st.shared_buffers_pretty}, fsync ${st.fsync}, synchronous_commit ${st.synchronous_commit}, ` +
        `full_page_writes ${st.full_page_writes}, max_wal_size ${st.max_wal_size}, autovacuum ${st.autovacuum}`);
      const sz = x.final && x.final.sizes;
      if (sz) {
        L.push(`  - at the end: chunks heap ${fmtMiB(sz.chunks_heap_bytes)} MiB, ${sz.indexes.map((i) => `${i.name} ${fmtMiB(i.bytes)} MiB`).join(', ')}`);
      }
    }
  }
  if (results.errors.length) {
    L.push('');
    L.push('Errors:');
    for (const er of results.errors) L.push(`- ${er.split('\n')[0]}`);
  }
  L.push('');
  return L.join('\n');
}

/** The curve as a plain SVG: insert rows/s, lookup ids/s and size against rows, one line per engine. */
export function renderSvg(results) {
  const W = 900;
  const PH0 = 230;
  const M = { l: 78, r: 200, t: 44, b: 36 };
  const gap = 30;
  const panels = [
    { title: 'Insert throughput (indexPack, rows/s over each interval)', unit: 'rows/s', series: [] },
    { title: 'Lookup throughput (512 ids per batch, half known; dashed: existingChunksTouched)', unit: 'ids/s', series: [] },
    { title: 'Size on disk', unit: 'MiB', series: [] },
    { title: 'Other work on the machine during each insert interval (not this benchmark)', unit: '% of CPUs', series: [], height: 110 },
  ];
  const colors = { sqlite: '#1f77b4', postgres: '#d62728' };
  for (const [e, x] of Object.entries(results.engines)) {
    const cps = results.checkpoints.filter((c) => c.engine === e);
    if (!cps.length) continue;
    const col = colors[e] || '#333';
    const pts = (f) => cps.map((c) => [c.rows, f(c)]);
    panels[0].series.push({ label: x.label, color: col, pts: pts((c) => c.insert.rows_per_s) });
    panels[1].series.push({ label: `${x.label}`, color: col, pts: pts((c) => c.lookup.ids_per_s) });
    panels[1].series.push({ label: `${x.label}, touched`, color: col, dash: '5 4', pts: pts((c) => c.lookup_touched.ids_per_s) });
    if (e === 'sqlite') panels[2].series.push({ label: 'SQLite file', color: col, pts: pts((c) => c.size.total_bytes / MiB) });
    else {
      panels[2].series.push({ label: 'PG chunks + packs', color: col, pts: pts((c) => c.size.total_bytes / MiB) });
      panels[2].series.push({ label: 'PG database', color: col, dash: '5 4', pts: pts((c) => c.size.database_bytes / MiB) });
    }
    panels[3].series.push({ label: `during ${x.label}`, color: col, pts: pts((c) => Math.round(othersShare(c, results) * 100)) });
  }
  const tops = [];
  let yTop = M.t + 16;
  for (const pn of panels) {
    tops.push(yTop);
    yTop += (pn.height || PH0) + M.b + gap;
  }
  const H = yTop + 14;
  const maxRows = Math.max(1, ...results.checkpoints.map((c) => c.rows));
  const niceStep = (max, n) => {
    const raw = max / n;
    const p = 10 ** Math.floor(Math.log10(raw || 1));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
  };
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const num = (v) => (v >= 1e6 ? `${+(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${+(v / 1e3).toFixed(1)}k` : `${+v.toFixed(1)}`);
  const S = [];
  S.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  S.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  const c = results.config;
  S.push(`<text x="${M.l}" y="22" font-size="15" font-weight="bold">${esc(`coffre chunk index: ${fmtInt(c.rows)} rows, ${c.customers} customers, packs of ~${fmtInt(c.pack_chunks_mean)} chunks`)}</text>`);
  const xw = W - M.l - M.r;
  const xs = niceStep(maxRows, 10);
  panels.forEach((pn, i) => {
    const top = tops[i];
    const PH = pn.height || PH0;
    const maxY = pn.unit === '% of CPUs' ? 100 : Math.max(1, ...pn.series.flatMap((s) => s.pts.map((p) => p[1] || 0)));
    const ys = niceStep(maxY * (pn.unit === '% of CPUs' ? 1 : 1.05), pn.height ? 2 : 5);
    const yMax = Math.ceil((maxY * (pn.unit === '% of CPUs' ? 1 : 1.05)) / ys) * ys;
    const X = (v) => M.l + (v / maxRows) * xw;
    const Y = (v) => top + PH - (v / yMax) * PH;
    S.push(`<text x="${M.l}" y="${top - 8}" font-weight="bold">${esc(pn.title)}</text>`);
    for (let y = 0; y <= yMax + 1e-9; y += ys) {
      S.push(`<line x1="${M.l}" x2="${M.l + xw}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#e5e5e5"/>`);
      S.push(`<text x="${M.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end">${num(y)}</text>`);
    }
    for (let x = 0; x <= maxRows + 1e-9; x += xs) {
      S.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${top}" y2="${top + PH}" stroke="#f0f0f0"/>`);
      S.push(`<text x="${X(x).toFixed(1)}" y="${top + PH + 16}" text-anchor="middle">${num(x)}</text>`);
    }
    S.push(`<rect x="${M.l}" y="${top}" width="${xw}" height="${PH}" fill="none" stroke="#888"/>`);
    S.push(`<text x="${M.l + xw / 2}" y="${top + PH + 31}" text-anchor="middle" fill="#555">chunk rows in the table</text>`);
    S.push(`<text transform="translate(16 ${top + PH / 2}) rotate(-90)" text-anchor="middle" fill="#555">${esc(pn.unit)}</text>`);
    pn.series.forEach((s, k) => {
      const d = s.pts.filter((p) => p[1] != null).map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
      S.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      for (const p of s.pts) if (p[1] != null) S.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
      const ly = top + 14 + k * 18;
      S.push(`<line x1="${M.l + xw + 12}" x2="${M.l + xw + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      S.push(`<text x="${M.l + xw + 40}" y="${ly}">${esc(s.label)}</text>`);
    });
  });
  const foot = [];
  for (const [e, x] of Object.entries(results.engines)) {
    const st = x.settings || {};
    if (e === 'sqlite') foot.push(`SQLite ${st.sqlite_version} (WAL, synchronous=FULL, cache_size ${st.cache_size}${st.extra_pragmas ? `, ${st.extra_pragmas}` : ''})`);
    else foot.push(`PostgreSQL ${String(st.server_version || '').split(' ')[0]} (shared_buffers ${st.shared_buffers_pretty}, fsync ${st.fsync}, synchronous_commit ${st.synchronous_commit})`);
  }
  const m = results.machine || {};
  foot.push(`${m.nproc} CPU, ${m.ram_mib} MiB RAM, ${String(results.started_at || '').slice(0, 10)}`);
  S.push(`<text x="${M.l}" y="${H - 24}" font-size="11" fill="#555">${esc(foot.slice(0, -1).join('; '))}</text>`);
  S.push(`<text x="${M.l}" y="${H - 9}" font-size="11" fill="#555">${esc(foot[foot.length - 1])}</text>`);
  S.push('</svg>');
  return `${S.join('\n')}\n`;
}

function writeReports(results, o) {
  const md = renderMarkdown(results);
  fs.mkdirSync(path.dirname(o.md), { recursive: true });
  fs.writeFileSync(o.md, md);
  fs.mkdirSync(path.dirname(o.svg), { recursive: true });
  fs.writeFileSync(o.svg, renderSvg(results));
  return md;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.render) {
    const results = JSON.parse(fs.readFileSync(o.render, 'utf8'));
    if (!process.argv.some((a) => a.startsWith('--md'))) o.md = path.join(path.dirname(path.resolve(o.render)), 'results.md');
    if (!process.argv.some((a) => a.startsWith('--svg'))) o.svg = path.join(path.dirname(path.resolve(o.render)), 'chunk-index.svg');
    console.log(writeReports(results, o));
    console.log(`written: ${o.md}, ${o.svg}`);
    return;
  }
  const t0 = performance.now();
  const results = await runBench(o);
  results.total_s = Math.round(performance.now() - t0) / 1000;
  fs.writeFileSync(path.join(o.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const md = writeReports(results, o);
  console.log(`\n${md}`);
  console.log(`results: ${path.join(o.out, 'results.json')}, ${o.md}, ${o.svg} (total ${results.total_s.toFixed(0)} s)`);
  if (results.errors.length || Object.values(summarize(results)).some((s) => s.wrong_answers)) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(`chunk-index failed: ${e.stack || e.message}`);
    process.exitCode = 1;
  });
}
