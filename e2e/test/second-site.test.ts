/**
 * The second site end to end (docs/CONTINUITY.md): real `coffre-server` and `coffre`
 * processes over HTTPS on loopback, each site with its own data directory, database and
 * store (embedded, or PostgreSQL and S3 with COFFRE_TEST_BACKEND=postgres-s3). The command
 * forms are the ones the operator's runbook uses. The disaster drill: back up to the
 * primary; replicate; lose the primary; restore from the replica with the same agent
 * configuration; promote; back up to the new primary; the old primary comes back, refuses
 * backups and re-joins as the replica; nothing lost at any step. And a replica killed in
 * the middle of a pull resumes without copying again what it holds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { prepareDataDir } from '../src/backends.js';
import { COFFRE_SERVER, TestAgent, TestServer, expectCode, run, tempDir, type RunResult } from '../src/kit.js';
import { serverObjects } from '../src/objects.js';
import { serverSql } from '../src/database.js';
import { describeTree, diffTrees } from '../src/tree.js';

const MARKER = 'DOSSIER-PATIENT-CONFIDENTIEL-7f3a';

function server(args: readonly string[]): Promise<RunResult> {
  return run(COFFRE_SERVER, args);
}

async function statusOf(dataDir: string): Promise<{ role: string; lagSeconds: number | null; epoch: number; auditDiverged: unknown; heldDeletions: number }> {
  const r = await server(['replication', 'status', '--data-dir', dataDir, '--json']);
  expectCode(r, 0, 'replication status');
  return JSON.parse(r.stdout) as { role: string; lagSeconds: number | null; epoch: number; auditDiverged: unknown; heldDeletions: number };
}

async function joinAsReplica(primary: { dataDir: string; url: string; fingerprint: string }, replicaDir: string): Promise<void> {
  const t = await server(['replication', 'token', 'create', '--data-dir', primary.dataDir]);
  expectCode(t, 0, 'replication token create');
  const token = t.stdout.trim();
  assert.match(token, /^cfj_[A-Za-z0-9_-]{43}$/, 'one token, alone on stdout');
  expectCode(await server(['replication', 'join', '--data-dir', replicaDir, '--primary', primary.url, '--fingerprint', primary.fingerprint, '--token', token]), 0, 'replication join');
}

/** Every pack object of a site's store, by key. */
async function packsOf(dataDir: string): Promise<Map<string, Buffer>> {
  const objects = serverObjects(dataDir);
  const out = new Map<string, Buffer>();
  for (const o of await objects.list('packs/')) out.set(o.key, await objects.get(o.key));
  return out;
}

function writeSource(dir: string, bigMiB: number): void {
  mkdirSync(join(dir, 'dossiers'), { recursive: true });
  writeFileSync(join(dir, 'dossiers', 'patient-dupont.txt'), `${MARKER}\n`.repeat(2000));
  writeFileSync(join(dir, 'dossiers', 'ordonnance.txt'), `Ordonnance ${MARKER} — amoxicilline\n`);
  writeFileSync(join(dir, 'imagerie.bin'), randomBytes(bigMiB * 1024 * 1024));
}

describe('two sites: replicate, lose the primary, restore, promote, return', () => {
  let primary: TestServer;
  let replica: TestServer | null = null;
  let agent: TestAgent;
  let staleAgent: string | undefined;
  let src: string;
  const replicaDir = tempDir('replica');

  before(async () => {
    primary = await TestServer.start();
    await primary.createCustomer('cabinet-deux-sites');
    agent = new TestAgent(primary);
    expectCode(await agent.enroll('cabinet-deux-sites', 'poste-accueil'), 0, 'enroll');
    src = join(tempDir('src'), 'data');
    writeSource(src, 20);
    await prepareDataDir(replicaDir);
  });
  after(async () => {
    await primary.stop();
    await replica?.stop();
    primary.cleanup();
    replica?.cleanup();
    agent.cleanup();
    rmSync(join(src, '..'), { recursive: true, force: true });
    if (staleAgent) rmSync(staleAgent, { recursive: true, force: true });
  });

  test('a backup to the primary is replicated: byte-identical packs, no plaintext, status says how far', async () => {
    // The replica joins and starts (it tells the primary where it is), then the practice backs up as every night.
    await joinAsReplica(primary, replicaDir);
    replica = await TestServer.start(replicaDir);
    expectCode(await agent.run(['backup', src]), 0, 'backup to the primary');
    const pass = await server(['job', 'run', 'replicate', '--data-dir', replicaDir]);
    expectCode(pass, 0, 'job run replicate');
    const status = await statusOf(replicaDir);
    assert.equal(status.role, 'replica');
    assert.ok(status.lagSeconds !== null && status.lagSeconds < 300, `lag ${String(status.lagSeconds)}`);

    const mine = await packsOf(primary.dataDir);
    const theirs = await packsOf(replicaDir);
    assert.ok(mine.size >= 2);
    assert.deepEqual([...theirs.keys()].sort(), [...mine.keys()].sort());
    for (const [k, v] of mine) assert.ok(theirs.get(k)!.equals(v), `pack ${k} is byte-identical on the replica`);
    const objects = serverObjects(replicaDir);
    for (const o of await objects.list('')) assert.ok(!(await objects.get(o.key)).includes(MARKER), `no plaintext in ${o.key}`);
  });

  test('the agent learned the sites from its server while backing up', async () => {
    const config = JSON.parse(readFileSync(join(agent.configDir, 'config.json'), 'utf8')) as { sites: { name: string; url: string }[]; epoch: number };
    assert.deepEqual(config.sites.map((s) => s.url).sort(), [primary.url, replica!.url].sort());
    assert.equal(config.epoch, 1);
    staleAgent = tempDir('stale-agent');
    cpSync(agent.configDir, staleAgent, { recursive: true });
  });

  test('with the primary lost, the same agent configuration lists, restores and verifies from the replica', async () => {
    await primary.stop('SIGKILL');
    const list = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as { id: string }[];
    assert.equal(list.length, 1);
    const target = tempDir('restore');
    const r = await agent.run(['restore', 'latest', '--target', target]);
    expectCode(r, 0, 'restore from the replica');
    assert.match(r.stderr, /reading from site replica/);
    assert.deepEqual(diffTrees(describeTree(src), describeTree(join(target, src))), []);
    rmSync(target, { recursive: true, force: true });
    expectCode(await agent.run(['ls', 'latest']), 0, 'ls from the replica');
    expectCode(await agent.run(['verify', '--read-data']), 0, 'verify from the replica');
    const rt = await agent.run(['restore-test', '--sample', '100']);
    expectCode(rt, 0, 'restore test from the replica');
    assert.match(rt.stdout, /result: SUCCESS/);
    const config = JSON.parse(readFileSync(join(agent.configDir, 'config.json'), 'utf8')) as { server: string };
    assert.equal(config.server, primary.url, 'reading elsewhere does not move the configuration');
  });

  test('backups keep waiting for the primary until the replica is promoted', async () => {
    writeFileSync(join(src, 'dossiers', 'nouveau.txt'), 'compte rendu du jour\n');
    const refused = await agent.run(['backup', src]);
    assert.equal(refused.code, 13, `backup while the primary is lost: ${refused.stderr}`);
    const p = await server(['site', 'promote', '--data-dir', replicaDir]);
    expectCode(p, 0, 'site promote');
    assert.match(p.stdout, /now the primary \(epoch 2\)/);
    expectCode(await agent.run(['backup', src]), 0, 'backup to the promoted site');
    const config = JSON.parse(readFileSync(join(agent.configDir, 'config.json'), 'utf8')) as { server: string; epoch: number };
    assert.equal(config.server, replica!.url);
    assert.equal(config.epoch, 2);
    const list = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as { id: string }[];
    assert.equal(list.length, 2, 'both backups are on the new primary');
  });

  test('the old primary comes back, refuses backups, and re-joins as the replica with nothing lost', async () => {
    await primary.restart();
    // At start it asks the other site, which was promoted above it.
    const deadline = Date.now() + 30_000;
    while ((await statusOf(primary.dataDir)).role !== 'demoted') {
      assert.ok(Date.now() < deadline, 'the old primary demoted itself');
      await new Promise((r) => setTimeout(r, 200));
    }
    // A machine that never heard of the promotion is refused there too.
    const stale = new TestAgent(primary, undefined, staleAgent!);
    const write = await stale.api('POST', '/runs', { startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), result: 'success', files: 0, bytes: 0, addedBytes: 0, warnings: 0 });
    assert.equal(write.status, 409);
    assert.equal((write.body as { error: { code: string } }).error.code, 'SITE_DEMOTED');

    await primary.stop();
    await joinAsReplica({ dataDir: replicaDir, url: replica!.url, fingerprint: replica!.fingerprint }, primary.dataDir);
    await primary.restart();
    expectCode(await server(['job', 'run', 'replicate', '--data-dir', primary.dataDir]), 0, 'the old primary replicates from the new one');
    assert.equal((await statusOf(primary.dataDir)).role, 'replica');
    // Each site keeps its own name and address in the registry agents learn from.
    const listed = JSON.parse((await server(['site', 'list', '--data-dir', replicaDir, '--json'])).stdout) as { name: string; url: string }[];
    assert.deepEqual(listed.map((x) => `${x.name} ${x.url}`).sort(), [`primary ${primary.url}`, `replica ${replica!.url}`].sort());
    const mine = await packsOf(replicaDir);
    const theirs = await packsOf(primary.dataDir);
    for (const [k, v] of mine) assert.ok(theirs.get(k)?.equals(v), `pack ${k} of the new primary is on the old one`);
    // The agent works on, with the new primary.
    expectCode(await agent.run(['backup', src]), 0, 'backup after the return');
    const list = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as { id: string }[];
    assert.equal(list.length, 3);
  });

  test('replication routes take the replica credential only', async () => {
    const asMachine = await agent.api('GET', '/replication/state');
    assert.equal(asMachine.status, 401);
  });
});

describe('a replica killed in the middle of a pull', () => {
  test('resumes without copying again what it holds, and ends byte-identical', async () => {
    const primary = await TestServer.start();
    const agent = new TestAgent(primary);
    const replicaDir = tempDir('replica-kill');
    const src = join(tempDir('src-kill'), 'data');
    try {
      await primary.createCustomer('cabinet-coupure');
      expectCode(await agent.enroll('cabinet-coupure', 'poste'), 0, 'enroll');
      writeSource(src, 120);
      expectCode(await agent.run(['backup', src]), 0, 'backup');
      await prepareDataDir(replicaDir);
      await joinAsReplica(primary, replicaDir);
      const total = (await packsOf(primary.dataDir)).size;
      assert.ok(total >= 5, `${total} packs to pull`);

      const child = spawn(COFFRE_SERVER, ['job', 'run', 'replicate', '--data-dir', replicaDir], { stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const objects = serverObjects(replicaDir);
      let held = 0;
      for (;;) {
        held = (await objects.list('packs/')).length;
        if (held >= 1) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill('SIGKILL');
      await exited;
      held = (await objects.list('packs/')).length;
      assert.ok(held < total, `killed mid-pull (${held} of ${total} packs were there)`);

      const resumed = await server(['job', 'run', 'replicate', '--data-dir', replicaDir, '--json']);
      expectCode(resumed, 0, 'the next pass');
      const report = JSON.parse(resumed.stdout) as { counts: { packsFetched: number; packsPresent: number } };
      assert.equal(report.counts.packsFetched, total - held, 'only what was missing is fetched');
      assert.equal(report.counts.packsPresent, held);
      const mine = await packsOf(primary.dataDir);
      const theirs = await packsOf(replicaDir);
      assert.equal(theirs.size, mine.size);
      for (const [k, v] of mine) assert.ok(theirs.get(k)?.equals(v), `pack ${k}`);
      expectCode(await server(['job', 'run', 'verify', '--data-dir', replicaDir]), 0, 'the replica verifies its packs');
    } finally {
      await primary.stop();
      primary.cleanup();
      agent.cleanup();
      rmSync(replicaDir, { recursive: true, force: true });
      rmSync(join(src, '..'), { recursive: true, force: true });
    }
  });
});

describe('the replica checks what it receives, with real processes', () => {
  let primary: TestServer;
  let replica: TestServer;
  let agent: TestAgent;
  let src: string;
  const replicaDir = tempDir('replica-checks');
  const replicate = () => server(['job', 'run', 'replicate', '--data-dir', replicaDir, '--json']);

  before(async () => {
    primary = await TestServer.start();
    await primary.createCustomer('cabinet-controle');
    agent = new TestAgent(primary);
    expectCode(await agent.enroll('cabinet-controle', 'poste'), 0, 'enroll');
    src = join(tempDir('src-checks'), 'data');
    writeSource(src, 4);
    expectCode(await agent.run(['backup', src]), 0, 'backup');
    await prepareDataDir(replicaDir);
    await joinAsReplica(primary, replicaDir);
    // Every pack checked at each verify run, and deletions held 10 seconds instead of 14 days.
    const file = join(replicaDir, 'server.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), verifyPeriodDays: 1, replicaDeleteDelayDays: 10 / 86_400 }, null, 2));
    replica = await TestServer.start(replicaDir);
    expectCode(await replicate(), 0, 'first pass');
  });
  after(async () => {
    await primary.stop();
    await replica.stop();
    primary.cleanup();
    replica.cleanup();
    agent.cleanup();
    rmSync(join(src, '..'), { recursive: true, force: true });
  });

  test('a flipped byte in a pack on the replica is found by its verify job and repaired from the primary', async () => {
    const objects = serverObjects(replicaDir);
    const key = (await objects.list('packs/'))[0]!.key;
    const bytes = await objects.get(key);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
    await objects.put(key, bytes);
    const r = await server(['job', 'run', 'verify', '--data-dir', replicaDir, '--json']);
    expectCode(r, 0, 'verify on the replica');
    const items = (JSON.parse(r.stdout) as { items: { outcome: string; detail: string }[] }).items;
    assert.ok(items.some((i) => i.outcome === 'changed' && /repaired from site primary's copy/.test(i.detail)), r.stdout);
    assert.ok((await objects.get(key)).equals(await serverObjects(primary.dataDir).get(key)), 'the pack is the primary’s again');
  });

  test('a deletion on the primary reaches the replica only after the delay', async () => {
    expectCode(await agent.run(['job', 'add', 'soir', '--path', src, '--schedule', '0 22 * * *', '--timezone', 'Europe/Paris']), 0, 'job add');
    expectCode(await replicate(), 0, 'pass');
    const jobs = () => serverSql(replicaDir, "select name from machine_jobs where name = 'soir'");
    assert.equal((await jobs()).length, 1, 'the schedule is on the replica');
    expectCode(await agent.run(['job', 'remove', 'soir']), 0, 'job remove');
    assert.equal((await serverSql(primary.dataDir, "select name from machine_jobs where name = 'soir'")).length, 0, 'gone from the primary');
    expectCode(await replicate(), 0, 'pass after the deletion');
    assert.equal((await jobs()).length, 1, 'still on the replica');
    assert.ok((await statusOf(replicaDir)).heldDeletions >= 1);
    await new Promise((r) => setTimeout(r, 11_000));
    expectCode(await replicate(), 0, 'pass after the delay');
    assert.equal((await jobs()).length, 0, 'deleted once the delay has passed');
  });

  test('a rewritten audit chain on the primary is detected and never copied over the replica’s', async () => {
    const [last] = await serverSql<{ seq: number; hash: string }>(replicaDir, 'select seq, hash from replicated_audit order by seq desc limit 1');
    assert.ok(last, 'the replica holds the primary’s audit entries');
    await serverSql(primary.dataDir, 'update audit_log set actor_label = ?, hash = ? where seq = ?', ['quelqu’un d’autre', 'e'.repeat(64), last.seq]);
    const r = await replicate();
    assert.equal(r.code, 1, `the pass fails: ${r.stdout}`);
    assert.match(r.stdout, /audit chain: entry \d+ has changed on the primary/);
    const status = await statusOf(replicaDir);
    assert.ok(status.auditDiverged, 'status says so');
    const [kept] = await serverSql<{ hash: string; actor_label: string | null }>(replicaDir, 'select hash, actor_label from replicated_audit where seq = ?', [last.seq]);
    assert.equal(kept!.hash, last.hash, 'the replica keeps its good copy');
    const own = await serverSql(replicaDir, "select seq from audit_log where action = 'replication.audit_diverged'");
    assert.equal(own.length, 1, 'recorded in the replica’s own audit trail');
  });
});
