import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { S3_BUCKET, S3_ENDPOINT, freshStoreUrl, s3Env } from '../src/backends.js';
import { tempDir } from '../src/kit.js';
import {
  Agent,
  ServerProcess,
  backendEnv,
  buildBinaryTree,
  dropDatabase,
  freshBackendEnv,
  freshDatabaseWithOwnRole,
  listStoreKeys,
  ok,
  pgQuery,
  pgTables,
  restoreDiff,
  startUntilExit,
  withHostPort,
  type Env,
  type SnapshotInfo,
} from '../src/scale-kit.js';
import { TcpProxy } from '../src/tcp-proxy.js';

/**
 * coffre-server on PostgreSQL + S3 (always, whatever COFFRE_TEST_BACKEND says), given bad
 * settings and hit by outages: a start that cannot use a backend stops at once with one
 * line naming it (never a secret); installations never mix (a bucket prefix, a server key);
 * a database or object store cut during a backup costs the agent at most a retry, and
 * leaves nothing half committed.
 */

const S3_SECRET = s3Env().AWS_SECRET_ACCESS_KEY!;
/** "Quickly": a refused start is a matter of seconds (Node's start-up on a busy machine included), not of a connect timeout. */
const QUICK_MS = 30_000;

interface Refusal {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Exit 3, quickly, with one line on stderr that names `which` and every `where`, and none of `secrets`. */
function assertRefused(r: Refusal, which: 'database' | 'object store', where: readonly string[], secrets: readonly string[]): string {
  const what = `stdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, 3, what);
  assert.ok(r.ms < QUICK_MS, `took ${r.ms} ms`);
  assert.ok(!r.stdout.includes('listening on'), what);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `one line on stderr:\n${r.stderr}`);
  const line = lines[0]!;
  assert.match(line, /^coffre-server: error: /);
  assert.ok(line.includes(which), `names the ${which}: ${line}`);
  const other = which === 'database' ? 'object store' : 'database';
  assert.ok(!line.includes(`use the ${other}`), `blames only the ${which}: ${line}`);
  for (const w of where) assert.ok(line.includes(w), `names ${w}: ${line}`);
  for (const s of secrets) {
    assert.ok(!r.stderr.includes(s) && !r.stdout.includes(s), `a secret is printed: ${what}`);
  }
  return line;
}

describe('scale-out: a start that cannot use its backends', () => {
  let db: Awaited<ReturnType<typeof freshDatabaseWithOwnRole>>;
  const dirs: string[] = [];
  const dir = (): string => {
    const d = tempDir('faults');
    dirs.push(d);
    return d;
  };

  before(async () => {
    db = await freshDatabaseWithOwnRole();
  });
  after(async () => {
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('an unreachable database (port 1): exit 3, one line naming the database and where, nothing written to the store', async () => {
    const store = await freshStoreUrl('faults');
    const url = withHostPort(db.url, '127.0.0.1:1');
    const r = await startUntilExit(dir(), backendEnv(url, store));
    assertRefused(r, 'database', ['127.0.0.1:1'], [db.password, S3_SECRET]);
    assert.deepEqual(await listStoreKeys(store), [], 'nothing was written to the object store');
  });

  test('a wrong database password: exit 3, one line naming the database, without the password', async () => {
    const store = await freshStoreUrl('faults');
    const u = new URL(db.url);
    u.password = 'Wrong-Pg-Password-41c9';
    const r = await startUntilExit(dir(), backendEnv(u.toString(), store));
    const line = assertRefused(r, 'database', [new URL(db.url).host, new URL(db.url).pathname.slice(1)], ['Wrong-Pg-Password-41c9', db.password, S3_SECRET]);
    assert.match(line, /password authentication failed|28P01/, line);
    assert.deepEqual(await listStoreKeys(store), []);
    assert.deepEqual(await pgTables(db.url), [], 'nothing was written to the database');
  });

  test('an unreachable S3 endpoint: exit 3, one line naming the object store, its bucket and endpoint', async () => {
    const store = await freshStoreUrl('faults');
    const r = await startUntilExit(dir(), backendEnv(db.url, store, { COFFRE_S3_ENDPOINT: 'http://127.0.0.1:1' }));
    assertRefused(r, 'object store', [store, '127.0.0.1:1'], [db.password, S3_SECRET]);
    assert.deepEqual(await pgTables(db.url), [], 'the database was not touched');
  });

  test('a missing bucket: exit 3, one line naming the object store and the bucket', async () => {
    const bucket = `coffre-missing-${Date.now().toString(36)}`;
    const r = await startUntilExit(dir(), backendEnv(db.url, `s3://${bucket}/p`));
    const line = assertRefused(r, 'object store', [bucket, new URL(S3_ENDPOINT).host], [db.password, S3_SECRET]);
    assert.match(line, /does not exist|NoSuchBucket/, line);
  });

  test('wrong S3 credentials: exit 3, one line naming the object store, without the secret key', async () => {
    const store = await freshStoreUrl('faults');
    const wrong = 'S3-Wrong-Secret-Key-7d2e0b';
    const r = await startUntilExit(dir(), backendEnv(db.url, store, { AWS_SECRET_ACCESS_KEY: wrong }));
    const line = assertRefused(r, 'object store', [S3_BUCKET, new URL(S3_ENDPOINT).host], [wrong, db.password, S3_SECRET]);
    assert.match(line, /denied|credentials|SignatureDoesNotMatch|InvalidAccessKeyId/i, line);
    assert.deepEqual(await pgTables(db.url), [], 'the database was not touched');
  });
});

describe('scale-out: installations do not mix', () => {
  let first: { database: string; store: string; env: Env };
  let dirX: string;
  let other: string | null = null;
  const dirs: string[] = [];

  before(async () => {
    first = await freshBackendEnv();
    dirX = tempDir('install-x');
    dirs.push(dirX);
    const x = await ServerProcess.start(dirX, first.env);
    await x.kill('SIGTERM');
  });
  after(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await dropDatabase(first.database);
    if (other) await dropDatabase(other);
  });

  test("a new installation on another installation's bucket prefix is refused (exit 3), its database left without an installation", async () => {
    const second = await freshBackendEnv();
    other = second.database;
    const dirY = tempDir('install-y');
    dirs.push(dirY);
    const before = await listStoreKeys(first.store);
    assert.ok(before.includes('coffre-installation.json'), `the first installation marked its store: ${before.join(', ')}`);
    const r = await startUntilExit(dirY, backendEnv(second.database, first.store));
    // The service's password is also the test bucket's name: look for it as it sits in a URL.
    const line = assertRefused(r, 'object store', [first.store], [S3_SECRET, `:${new URL(second.database).password}@`]);
    assert.match(line, /another installation/, line);
    assert.deepEqual(await pgQuery(second.database, 'select * from installation'), [], 'no installation was made in the new database');
    assert.deepEqual(await listStoreKeys(first.store), before, 'the store is unchanged');
    // The first installation is unharmed: it starts again.
    const again = await ServerProcess.start(dirX, first.env);
    await again.kill('SIGTERM');
  });

  test("a copy of the data directory with another server key is refused (exit 3), naming the key", async () => {
    const copy = `${tempDir('install-copy')}/data`;
    dirs.push(join(copy, '..'));
    cpSync(dirX, copy, { recursive: true, preserveTimestamps: true });
    rmSync(join(copy, 'secrets', 'server.key'));
    const r = await startUntilExit(copy, first.env);
    assert.equal(r.code, 3, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.ok(r.ms < QUICK_MS, `took ${r.ms} ms`);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /server key/);
    assert.match(lines[0]!, /secrets\/server\.key/);
    assert.ok(!r.stdout.includes('listening on'));
    // The refused copy made itself a key of its own: not the installation's.
    assert.ok(existsSync(join(copy, 'secrets', 'server.key')));
    assert.notEqual(readFileSync(join(copy, 'secrets', 'server.key'), 'utf8'), readFileSync(join(dirX, 'secrets', 'server.key'), 'utf8'));
  });
});

interface BackupJson {
  snapshot: string;
  incomplete: boolean;
}

/** A server behind two proxies (one to PostgreSQL, one to S3) on fresh backends, one enrolled agent, and a first small snapshot. */
interface OutageRig {
  readonly pgProxy: TcpProxy;
  readonly s3Proxy: TcpProxy;
  readonly backends: { database: string; store: string; env: Env };
  readonly server: ServerProcess;
  readonly agent: Agent;
  /** Backed-up path → its source tree, for every snapshot taken. */
  readonly trees: Map<string, string>;
  readonly scratch: string[];
  /** The first, small snapshot. */
  readonly firstSnapshot: string;
}

async function outageRig(name: string): Promise<OutageRig> {
  const backends = await freshBackendEnv();
  const pgUrl = new URL(backends.database);
  const pgProxy = await TcpProxy.start({ host: pgUrl.hostname, port: Number(pgUrl.port) });
  const s3Url = new URL(S3_ENDPOINT);
  const s3Proxy = await TcpProxy.start({ host: s3Url.hostname, port: Number(s3Url.port) });
  const dataDir = tempDir(name);
  const scratch = [dataDir];
  const env = backendEnv(withHostPort(backends.database, pgProxy.address), backends.store, { COFFRE_S3_ENDPOINT: `http://${s3Proxy.address}` });
  const server = await ServerProcess.start(dataDir, env);
  await ok(server.cli(['customer', 'create', 'cabinet-panne']), 'customer create');
  const token = (await ok(server.cli(['enroll-token', 'create', '--customer', 'cabinet-panne']), 'token')).trim();
  const agent = new Agent();
  await ok(agent.enroll(server, token, 'poste-panne'), 'enroll');
  const small = join(tempDir(`${name}-small`), 'petit');
  scratch.push(join(small, '..'));
  buildBinaryTree(small, { files: 5, smallMaxKiB: 8 });
  const first = JSON.parse(await ok(agent.run(['backup', small, '--json']), 'first backup')) as BackupJson;
  return { pgProxy, s3Proxy, backends, server, agent, trees: new Map([[small, small]]), scratch, firstSnapshot: first.snapshot };
}

async function closeRig(rig: OutageRig | undefined): Promise<void> {
  if (!rig) return;
  await rig.server.kill('SIGTERM');
  await rig.pgProxy.close();
  await rig.s3Proxy.close();
  rig.agent.cleanup();
  for (const d of rig.scratch) rmSync(d, { recursive: true, force: true });
  await dropDatabase(rig.backends.database);
}

/**
 * Backs up a new multi-MiB tree; once its first pack is on its way to S3, cuts `proxy` as
 * the server next sends something through it (a query or request in flight is lost), for
 * at least 2 s, during which `probe` must see 503 UNAVAILABLE with Retry-After; then checks
 * the outcome: the backup completed or exited 13 (server unreachable, retryable), a second
 * backup completes, every snapshot has its reference list and restores byte-identical, and
 * verify --read-data passes. A failure shows the server's output if it exited.
 */
async function backupThroughOutage(rig: OutageRig, proxy: TcpProxy, probe: () => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown }>): Promise<string> {
  const { agent, server, s3Proxy, trees } = rig;
  try {
    const src = join(tempDir('outage-src'), 'donnees');
    rig.scratch.push(join(src, '..'));
    buildBinaryTree(src, { files: 400, smallMaxKiB: 96, big: 2, bigMiB: 8 });
    trees.set(src, src);

    const startBytes = s3Proxy.bytesUp;
    let settled = false;
    const backup = agent.run(['backup', src, '--json']).finally(() => (settled = true));
    await s3Proxy.waitForBytesUp(startBytes + 1024 * 1024, 180_000);
    // The link goes down as the server sends its next query (or S3 request): one is in flight.
    await proxy.cutOnNextRequest(60_000);
    const t0 = Date.now();
    assert.equal(settled, false, 'the backup is still running when the outage begins');
    let answer: Awaited<ReturnType<typeof probe>>;
    try {
      answer = await probe();
      const wait = 2000 - (Date.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } finally {
      proxy.restore();
    }
    const outageMs = Date.now() - t0;
    assert.equal(answer.status, 503, `during the outage: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.equal((answer.body as { error: { code: string } }).error.code, 'UNAVAILABLE');
    const retryAfter = answer.headers['retry-after'];
    assert.ok(typeof retryAfter === 'string' && /^\d+$/.test(retryAfter) && Number(retryAfter) > 0, `Retry-After: ${String(retryAfter)}`);
    assert.ok(proxy.refused > 0, 'connections were refused during the outage');

    const first = await backup;
    assert.ok(first.code === 0 || first.code === 13, `the backup across a ${outageMs} ms outage exits 0 or 13 (retryable), not ${first.code}\nstdout: ${first.stdout}\nstderr: ${first.stderr}`);
    if (first.code === 0) assert.equal((JSON.parse(first.stdout) as BackupJson).incomplete, false, first.stdout);

    const second = await agent.run(['backup', src, '--json']);
    assert.equal(second.code, 0, `the next backup completes\nstdout: ${second.stdout}\nstderr: ${second.stderr}`);
    const latest = (JSON.parse(second.stdout) as BackupJson).snapshot;
    assert.deepEqual(await restoreDiff(agent, latest, src), [], 'the latest snapshot restores byte-identical');

    // Nothing half committed: every snapshot row has its reference list, and every snapshot listed restores whole.
    const list = await agent.json<SnapshotInfo[]>(['snapshots']);
    assert.ok(list.some((s) => s.id === latest));
    const rows = await pgQuery<{ customer_id: string; id: string }>(rig.backends.database, 'select customer_id, id from snapshots');
    assert.equal(rows.length, list.length, 'the agent lists every snapshot row');
    const keys = new Set(await listStoreKeys(rig.backends.store));
    for (const row of rows) assert.ok(keys.has(`snapshots/${row.customer_id}/${row.id}.refs`), `snapshot ${row.id} has its reference list`);
    for (const s of list) {
      const from = trees.get(s.paths[0]!);
      assert.ok(from, `snapshot ${s.id} of ${s.paths.join(', ')}`);
      assert.deepEqual(await restoreDiff(agent, s.id, from), [], `snapshot ${s.id} restores byte-identical`);
    }
    const verify = await agent.run(['verify', '--read-data']);
    assert.equal(verify.code, 0, `verify --read-data\nstdout: ${verify.stdout}\nstderr: ${verify.stderr}`);
    assert.ok(server.running, 'the server rode out the outage');
    const agent503 = server.events().filter((e) => e.msg === 'request' && e.status === 503 && typeof e.machineId === 'string').map((e) => `${String(e.method)} ${String(e.path).replace(/[0-9a-f]{64}/, '…')}`);
    return `outage ${outageMs} ms (${proxy.refused} connections refused); 503 answers to the machine: ${agent503.join(', ') || 'none'}; the backup during it exited ${first.code}; ${list.length} snapshots restored`;
  } catch (err) {
    // A server that crashed may take a moment to be reaped: give it that before telling.
    await Promise.race([server.exited, new Promise((r) => setTimeout(r, 3000))]);
    if (!server.running) (err as Error).message += `\n--- the server exited; its output ends with:\n${server.output.slice(-5000)}`;
    throw err;
  }
}

describe('scale-out: database and object store outages during a backup', () => {
  test('the database cut for ~2 s during a backup: 503 UNAVAILABLE + Retry-After meanwhile, then everything checks out', async (t) => {
    let rig: OutageRig | undefined;
    try {
      rig = await outageRig('outage-db');
      const r = rig;
      t.diagnostic(await backupThroughOutage(r, r.pgProxy, () => r.agent.api('GET', '/snapshots')));
    } finally {
      await closeRig(rig);
    }
  });

  test('the object store cut for ~2 s during a backup: 503 UNAVAILABLE + Retry-After meanwhile, then everything checks out', async (t) => {
    let rig: OutageRig | undefined;
    try {
      rig = await outageRig('outage-s3');
      const r = rig;
      t.diagnostic(await backupThroughOutage(r, r.s3Proxy, () => r.agent.api('GET', `/snapshots/${r.firstSnapshot}/refs`)));
    } finally {
      await closeRig(rig);
    }
  });
});
