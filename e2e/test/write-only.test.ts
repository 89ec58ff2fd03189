import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { DEFAULT_CHUNKER, deriveAdminKey, deriveReadKey, ed25519Sign, makePassphraseSlot, makeRecoverySlot, newMasterKey, newRecoveryKey, repoUpgradeMessage } from '@coffre/core';
import { serverSql } from '../src/database.js';
import { AgentProcess, TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';

/**
 * Storage format 2 between real processes: what an enrolled machine keeps lets it back up and
 * nothing else; reading needs the passphrase (exit 11 without it); key slots change only with
 * the passphrase or the recovery key.
 */
const NO_PASS = { COFFRE_PASSPHRASE: undefined };
const PASS = 'une phrase secrète assez longue';

describe('write-only machines (storage format 2)', () => {
  let server: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let src: string;

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer('cabinet-durand');
    a = new TestAgent(server, PASS);
    b = new TestAgent(server, PASS);
    expectCode(await a.enroll('cabinet-durand', 'accueil'), 0, 'enroll a');
    expectCode(await b.enroll('cabinet-durand', 'secretariat'), 0, 'enroll b');
    src = join(tempDir('src'), 'dossiers');
    mkdirSync(join(src, 'patients'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(src, 'patients', `p${i}.txt`), `patient ${i}\n`.repeat(5000 + i));
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    a.cleanup();
    b.cleanup();
    rmSync(join(src, '..'), { recursive: true, force: true });
  });

  test('an enrolled machine keeps write keys only, never the master key', () => {
    for (const agent of [a, b]) {
      assert.ok(!existsSync(join(agent.configDir, 'key')), 'no master key file');
      const w = JSON.parse(readFileSync(join(agent.configDir, 'write-key'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(w).sort(), ['cacheKey', 'chunkId', 'customerId', 'gear', 'manifestMac', 'readPublic', 'v']);
    }
  });

  test('backup and snapshots work with no passphrase; the second backup is incremental', async () => {
    const first = await a.run(['backup', src, '--json'], NO_PASS);
    expectCode(first, 0, 'backup without passphrase');
    const again = JSON.parse((await a.run(['backup', src, '--json'], NO_PASS)).stdout) as { stats: { files: number; unchangedFiles: number; addedChunks: number } };
    assert.equal(again.stats.unchangedFiles, again.stats.files, 'unchanged files are not re-read (local cache of its own trees)');
    const list = await a.run(['snapshots', '--json'], NO_PASS);
    expectCode(list, 0, 'snapshots');
    const rows = JSON.parse(list.stdout) as { sealed: boolean; paths: string[] | null; machine: string }[];
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => r.sealed && r.paths?.[0] === src), 'own snapshots: paths from the local record, the rest sealed');
  });

  test('another machine deduplicates against the first without being able to read it', async () => {
    const r = JSON.parse((await b.run(['backup', src, '--json'], NO_PASS)).stdout) as { stats: { addedChunks: number; files: number } };
    assert.equal(r.stats.files, 20);
    // File chunks are already stored by "accueil": only this machine's trees (different ctime/inode?) may be new.
    assert.ok(r.stats.addedChunks <= 5, `added ${r.stats.addedChunks} chunks`);
  });

  test('restore, ls and verify --read-data without a passphrase exit 11; with it they work', async () => {
    const target = tempDir('restore');
    for (const args of [['restore', 'latest', '--target', target], ['ls', 'latest'], ['verify', '--read-data']]) {
      const r = await a.run(args, NO_PASS);
      expectCode(r, 11, args.join(' '));
      assert.match(r.stderr, /passphrase/);
    }
    assert.deepEqual(readdirSync(target), [], 'nothing restored');
    expectCode(await a.run(['verify'], NO_PASS), 0, 'verify (no data read) works write-only');
    expectCode(await a.run(['restore', 'latest', '--target', target]), 0, 'restore with the passphrase');
    assert.equal(readFileSync(join(target, src, 'patients', 'p3.txt'), 'utf8'), 'patient 3\n'.repeat(5003));
    const v = await a.run(['verify', '--read-data', '--json']);
    expectCode(v, 0, 'verify --read-data with the passphrase');
    assert.ok(!existsSync(join(a.configDir, 'key')), 'the passphrase opened the key for that command only');
    rmSync(target, { recursive: true, force: true });
  });

  test('restore latest takes this machine\'s snapshot; --machine another\'s, and says whose', async () => {
    writeFileSync(join(src, 'patients', 'only-b.txt'), 'b');
    expectCode(await b.run(['backup', src], NO_PASS), 0, 'backup b');
    const mine = tempDir('restore');
    const r = await a.run(['restore', 'latest', '--target', mine, '--json']);
    expectCode(r, 0, 'restore latest');
    assert.equal((JSON.parse(r.stdout) as { machine: string }).machine, 'accueil');
    assert.ok(!existsSync(join(mine, src, 'patients', 'only-b.txt')), "not the other machine's newer snapshot");
    const theirs = tempDir('restore');
    const r2 = await a.run(['restore', 'latest', '--machine', 'secretariat', '--target', theirs]);
    expectCode(r2, 0, 'restore --machine');
    assert.match(r2.stderr, /secretariat/);
    assert.ok(existsSync(join(theirs, src, 'patients', 'only-b.txt')));
    rmSync(mine, { recursive: true, force: true });
    rmSync(theirs, { recursive: true, force: true });
  });

  test('key list/add/passwd/recovery/remove need the current secret and leave no slot for a removed one', async () => {
    expectCode(await a.run(['key', 'list', '--json'], NO_PASS), 11, 'key list without a secret');
    const list = async (env: Record<string, string | undefined> = {}) => JSON.parse((await a.run(['key', 'list', '--json'], env)).stdout) as { format: number; slots: { id: string; kind: string; current: boolean }[] };
    const l0 = await list();
    assert.equal(l0.format, 2);
    assert.deepEqual(l0.slots.map((s) => s.kind).sort(), ['passphrase', 'recovery']);
    // A weak new passphrase is refused (exit 2), nothing changes.
    expectCode(await a.run(['key', 'add'], { COFFRE_NEW_PASSPHRASE: 'motdepasse123' }), 2, 'weak passphrase');
    assert.equal((await list()).slots.length, 2);
    const second = 'deuxième phrase pour le cabinet durand';
    expectCode(await a.run(['key', 'add'], { COFFRE_NEW_PASSPHRASE: second }), 0, 'key add');
    assert.equal((await list({ COFFRE_PASSPHRASE: second })).slots.length, 3);
    // passwd: the old passphrase stops opening anything.
    const third = 'troisième phrase bien plus longue encore';
    expectCode(await a.run(['key', 'passwd'], { COFFRE_NEW_PASSPHRASE: third }), 0, 'key passwd');
    expectCode(await a.run(['key', 'list'], { COFFRE_PASSPHRASE: PASS }), 11, 'the old passphrase is refused');
    expectCode(await a.run(['key', 'list'], { COFFRE_PASSPHRASE: third }), 0, 'the new one opens');
    // recovery: a new key, the old recovery slot gone.
    const rec = JSON.parse((await a.run(['key', 'recovery', '--json'], { COFFRE_PASSPHRASE: third })).stdout) as { recoveryKey: string; removed: string[] };
    assert.equal(rec.removed.length, 1);
    const byRecovery = await list({ COFFRE_PASSPHRASE: undefined, COFFRE_RECOVERY_KEY: rec.recoveryKey });
    assert.ok(byRecovery.slots.some((s) => s.kind === 'recovery' && s.current));
    // remove the second passphrase; it no longer opens.
    const secondSlot = (await list({ COFFRE_PASSPHRASE: second })).slots.find((s) => s.current)!;
    expectCode(await a.run(['key', 'remove', secondSlot.id], { COFFRE_PASSPHRASE: third }), 0, 'key remove');
    expectCode(await a.run(['key', 'list'], { COFFRE_PASSPHRASE: second }), 11, 'removed passphrase refused');
    // Restore still works with the current passphrase (same master key).
    const target = tempDir('restore');
    expectCode(await a.run(['restore', 'latest', '--target', target], { COFFRE_PASSPHRASE: third }), 0, 'restore after key changes');
    rmSync(target, { recursive: true, force: true });
  });

  test("a machine's credential alone cannot change key slots (the server wants the key-admin signature)", async () => {
    const repo = (await b.api('GET', '/repo')).body as { keySlots: { id: string }[]; keySlotsGeneration: number };
    const put = await b.api('PUT', '/repo/key-slots', { slots: repo.keySlots, expect: '0'.repeat(64), generation: repo.keySlotsGeneration, signature: 'A'.repeat(86) + '==' });
    assert.equal(put.status, 403);
    const add = await b.api('POST', '/repo/key-slots', { slot: { id: 'intruder', v: 1, kind: 'passphrase' } });
    assert.equal(add.status, 403);
    const after = (await b.api('GET', '/repo')).body as { keySlots: { id: string }[] };
    assert.deepEqual(after.keySlots.map((s) => s.id), repo.keySlots.map((s) => s.id));
  });

  test('the daemon backs up with no passphrase; its restore test is reported as not run (NO_KEY)', { timeout: 180_000 }, async () => {
    expectCode(await a.run(['job', 'add', 'dossiers', '--path', src, '--schedule', '* * * * *', '--timezone', 'UTC']), 0, 'job add');
    const d = AgentProcess.start(a, ['daemon', '--restore-test-schedule', '* * * * *'], { ...NO_PASS, COFFRE_HEARTBEAT_SECONDS: '1', TZ: 'UTC' });
    try {
      const run = await d.waitForEvent((e) => e.event === 'run-end', 150_000);
      assert.equal(run.result, 'success', JSON.stringify(run));
      const rt = await d.waitForEvent((e) => e.event === 'restore-test-end', 150_000);
      assert.equal(rt.result, 'failed');
      assert.equal(rt.errorCode, 'NO_KEY', JSON.stringify(rt));
    } finally {
      await d.stop('SIGTERM');
      expectCode(await a.run(['job', 'remove', 'dossiers']), 0, 'job remove');
    }
  });

  test('a server that offers its own read key gets nothing sealed to it (exit 12)', async () => {
    const { customerId } = JSON.parse(readFileSync(join(a.configDir, 'config.json'), 'utf8')) as { customerId: string };
    const [row] = await serverSql<{ config_json: string }>(server.dataDir, 'select config_json from repos where customer_id = ?', [customerId]);
    const real = row!.config_json;
    const theirs = generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
    await serverSql(server.dataDir, 'update repos set config_json = ? where customer_id = ?', [JSON.stringify({ ...JSON.parse(real), readKey: theirs }), customerId]);
    try {
      const r = await a.run(['backup', src], NO_PASS);
      expectCode(r, 12, 'backup to a substituted read key');
      assert.match(r.stderr, /read key differs/);
    } finally {
      await serverSql(server.dataDir, 'update repos set config_json = ? where customer_id = ?', [real, customerId]);
    }
    expectCode(await a.run(['backup', src], NO_PASS), 0, 'the real key back: backups again');
  });

  test('a server that claims format 1 again gets no master key written on the machine (exit 12)', async () => {
    const { customerId } = JSON.parse(readFileSync(join(a.configDir, 'config.json'), 'utf8')) as { customerId: string };
    const [row] = await serverSql<{ config_json: string }>(server.dataDir, 'select config_json from repos where customer_id = ?', [customerId]);
    const real = row!.config_json;
    const { readKey: _r, adminKey: _a, ...v1 } = JSON.parse(real) as Record<string, unknown>;
    await serverSql(server.dataDir, 'update repos set config_json = ? where customer_id = ?', [JSON.stringify({ ...v1, v: 1 }), customerId]);
    try {
      for (const [args, env] of [[['backup', src], NO_PASS], [['ls', 'latest'], {}]] as const) {
        const r = await a.run(args, env);
        expectCode(r, 12, `${args[0]} after a downgrade`);
        assert.match(r.stderr, /format 1/);
      }
      assert.ok(!existsSync(join(a.configDir, 'key')), 'no master key on disk');
    } finally {
      await serverSql(server.dataDir, 'update repos set config_json = ? where customer_id = ?', [real, customerId]);
    }
  });
});

/**
 * A repository as format-1 agents made them: the machine enrolled without a passphrase (no
 * repository yet), then the repository initialised in format 1 and the master key cached.
 */
async function format1Repository(server: TestServer, agent: TestAgent, customer: string, machine: string): Promise<void> {
  expectCode(await agent.run(['enroll', '--server', server.url, '--token', await server.token(customer), '--fingerprint', server.fingerprint, '--machine', machine], NO_PASS), 11, 'enroll without passphrase');
  const master = newMasterKey();
  const slots = [await makePassphraseSlot(master, PASS, { m: 256, t: 1, p: 1 }), makeRecoverySlot(master, newRecoveryKey().raw)];
  const init = await agent.api('POST', '/repo/init', { config: { v: 1, chunker: DEFAULT_CHUNKER, compression: 'zstd' }, keySlots: slots });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  writeFileSync(join(agent.configDir, 'key'), master.toString('hex') + '\n', { mode: 0o600 });
}

describe('a format-1 repository keeps working and is upgraded', () => {
  let server: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let src: string;

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer('cabinet-ancien');
    a = new TestAgent(server, PASS);
    b = new TestAgent(server, PASS);
    await format1Repository(server, a, 'cabinet-ancien', 'vieux');
    src = join(tempDir('src'), 'ancien');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'dossier.txt'), 'avant la mise à niveau\n'.repeat(1000));
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    a.cleanup();
    b.cleanup();
    rmSync(join(src, '..'), { recursive: true, force: true });
  });

  test('format 1 as before (cached key), then "key upgrade": machines drop the master key, old snapshots stay readable', async () => {
    expectCode(await a.run(['backup', src], NO_PASS), 0, 'format-1 backup with the cached key');
    expectCode(await a.run(['ls', 'latest'], NO_PASS), 0, 'format 1: reads with the cached key, as before');
    // The upgrade needs the operator's approval (a format-1 server cannot tell who holds the key).
    const refused = await a.run(['key', 'upgrade']);
    expectCode(refused, 1, 'upgrade without approval');
    assert.match(refused.stderr, /allow-key-upgrade/);
    expectCode(await server.admin(['customer', 'allow-key-upgrade', 'cabinet-ancien', '--hours', '2']), 0, 'approval');
    const up = await a.run(['key', 'upgrade', '--json']);
    expectCode(up, 0, 'key upgrade');
    assert.deepEqual(JSON.parse(up.stdout), { from: 1, to: 2 });
    assert.ok(!existsSync(join(a.configDir, 'key')), 'the master key is gone');
    assert.ok(existsSync(join(a.configDir, 'write-key')));
    writeFileSync(join(src, 'apres.txt'), 'après\n');
    const after = JSON.parse((await a.run(['backup', src, '--json'], NO_PASS)).stdout) as { stats: { files: number; addedChunks: number } };
    assert.equal(after.stats.files, 2);
    // Chunk ids did not change: the format-1 data deduplicates the unchanged file (new: one chunk and the trees).
    assert.ok(after.stats.addedChunks <= 6, `added ${after.stats.addedChunks} chunks`);
    expectCode(await a.run(['ls', 'latest'], NO_PASS), 11, 'format 2: reading needs the passphrase');
    // A later machine enrolled after the upgrade is write-only too.
    expectCode(await b.enroll('cabinet-ancien', 'nouveau'), 0, 'enroll b');
    assert.ok(!existsSync(join(b.configDir, 'key')));
    // Both snapshots (format 1 and format 2) restore with the passphrase.
    const snaps = JSON.parse((await a.run(['snapshots', '--json'])).stdout) as { id: string }[];
    assert.equal(snaps.length, 2);
    for (const s of snaps) {
      const t = tempDir('restore');
      expectCode(await a.run(['restore', s.id, '--target', t]), 0, `restore ${s.id}`);
      assert.equal(readFileSync(join(t, src, 'dossier.txt'), 'utf8'), 'avant la mise à niveau\n'.repeat(1000));
      rmSync(t, { recursive: true, force: true });
    }
  });
});

describe('a format-1 repository upgraded by someone without its master key', () => {
  let server: TestServer;
  let legit: TestAgent;
  let intruder: TestAgent;
  let src: string;

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer('cabinet-vise');
    legit = new TestAgent(server, PASS);
    intruder = new TestAgent(server, PASS);
    await format1Repository(server, legit, 'cabinet-vise', 'legit');
    // The intruder has a credential only (enrolled without the passphrase).
    expectCode(await intruder.run(['enroll', '--server', server.url, '--token', await server.token('cabinet-vise'), '--fingerprint', server.fingerprint, '--machine', 'intrus'], NO_PASS), 11, 'enroll intruder');
    src = tempDir('src');
    writeFileSync(join(src, 'f.txt'), 'dossier\n');
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    legit.cleanup();
    intruder.cleanup();
    rmSync(src, { recursive: true, force: true });
  });

  test('without approval the server refuses; with one, the machines holding the key refuse the foreign keys and keep theirs', async () => {
    const theirMaster = newMasterKey();
    const config = { v: 2, chunker: DEFAULT_CHUNKER, compression: 'zstd', readKey: deriveReadKey(theirMaster).publicKey.toString('base64'), adminKey: deriveAdminKey(theirMaster).publicKey.toString('base64') };
    const { customerId } = JSON.parse(readFileSync(join(intruder.configDir, 'config.json'), 'utf8')) as { customerId: string };
    const signature = ed25519Sign(deriveAdminKey(theirMaster).privateKey, repoUpgradeMessage(customerId, config.readKey, config.adminKey)).toString('base64');
    const refused = await intruder.api('POST', '/repo/upgrade', { config, signature });
    assert.equal(refused.status, 403);
    // An approval given for the practice, used by the intruder first:
    expectCode(await server.admin(['customer', 'allow-key-upgrade', 'cabinet-vise']), 0, 'approval');
    assert.equal((await intruder.api('POST', '/repo/upgrade', { config, signature })).status, 200);
    const r = await legit.run(['backup', src], NO_PASS);
    expectCode(r, 12, 'the legitimate machine refuses the foreign keys');
    assert.match(r.stderr, /not the ones the passphrase gives/);
    assert.ok(existsSync(join(legit.configDir, 'key')), 'its key is kept (nothing is lost)');
    assert.ok(!existsSync(join(legit.configDir, 'write-key')));
  });
});

