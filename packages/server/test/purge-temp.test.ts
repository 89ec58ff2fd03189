/**
 * The purge-temp job (R8, docs/OPERATIONS.md "Temporary data"): what uploads left behind goes
 * once older than tempMaxAgeHours (by the job's clock), committed objects never; a setting
 * above 30 days is refused when the server starts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newSnapshotId, type Subkeys } from '@coffre/core';
import { adminCreateCustomer } from '../src/admin/index.js';
import { initDataDir, SettingsError, TEMP_MAX_AGE_CAP_HOURS } from '../src/datadir.js';
import type { JobContext, JobResult } from '../src/jobs/job.js';
import { PurgeTempJob } from '../src/jobs/purge-temp.js';
import { buildPack, CLI_ENTRY, enrollMachine, filesUnder, snapshotRequest, tempDir, testKeys, jobContext, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const HOUR = 3_600_000;

function runPurge(ts: TestServer, settings: Partial<JobContext['settings']> = {}): Promise<JobResult> {
  return new PurgeTempJob().run(jobContext(ts, settings));
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

describe('purge-temp over a real object store', () => {
  let ts: TestServer;
  let customerId: string;
  let m: TestMachine;
  const keys: Subkeys = testKeys();
  let pack: TestPack;
  const snapshots: string[] = [];
  let objects: string;
  let committed: string[] = [];
  let newTemps: string[] = [];
  let orphanNew = '';
  /** Age relative to the job's clock (ts.clock), which is not the wall clock. */
  const aged = async (file: string, hours: number): Promise<void> => {
    const t = new Date(ts.clock.now().getTime() - hours * HOUR);
    await utimes(file, t, t);
  };
  const put = async (rel: string, size: number, ageHours: number): Promise<string> => {
    const file = path.join(objects, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, randomBytes(size));
    await aged(file, ageHours);
    return file;
  };

  before(async () => {
    ts = await testServer();
    objects = path.join(ts.dataDir, 'objects');
    customerId = (await adminCreateCustomer(ts.admin, 'Cabinet Temporaire')).id;
    m = await enrollMachine(ts, 'Cabinet Temporaire', 'poste');
    pack = buildPack(keys);
    const res = await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
    assert.equal(res.status, 200, res.body.toString());
    for (let i = 0; i < 2; i++) {
      const c = await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, pack.chunkIds) });
      assert.equal(c.status, 201, c.body.toString());
      snapshots.push(c.json<{ id: string }>().id);
    }
    committed = await filesUnder(objects);
    assert.ok(committed.some((f) => f.startsWith('packs/')) && committed.filter((f) => f.startsWith('snapshots/')).length === 2, committed.join(', '));
    assert.ok(!committed.some((f) => path.basename(f).startsWith('.')), 'no temp file left by the uploads');
  });
  after(() => ts.close());

  it('removes temp files and unindexed reference lists older than tempMaxAgeHours, keeps newer ones, committed objects and indexed refs', async () => {
    const maxAge = ts.admin.dataDir.settings.tempMaxAgeHours;
    assert.equal(maxAge, 24);
    // Every committed object looks ancient: age never matters for them.
    for (const f of committed) await aged(path.join(objects, f), 10 * maxAge);

    const xx = pack.id.slice(0, 2);
    const oldTemps = [
      await put(`packs/${customerId}/${xx}/.tmp-${pack.id}-0123456789ab`, 3000, maxAge + 1),
      await put(`snapshots/${customerId}/.tmp-${newSnapshotId()}.refs-a1b2c3d4e5f6`, 100, 10 * maxAge),
      await put(`.tmp-orphan-ffffffffffff`, 10, maxAge + 0.01),
    ];
    newTemps = [
      await put(`packs/${customerId}/${xx}/.tmp-${pack.id}-ba9876543210`, 2000, maxAge - 1),
      await put(`snapshots/${customerId}/.tmp-recent-000000000000`, 50, 0),
      // Exactly at the cutoff: "older than" is strict.
      await put(`.tmp-boundary-111111111111`, 20, maxAge),
    ];
    const orphanOld = await put(`snapshots/${customerId}/${newSnapshotId()}.refs`, 64, maxAge + 2);
    const orphanOtherCustomer = await put(`snapshots/00000000-0000-4000-8000-000000000000/${newSnapshotId()}.refs`, 32, 5 * maxAge);
    orphanNew = await put(`snapshots/${customerId}/${newSnapshotId()}.refs`, 64, maxAge - 2);
    // Not a reference list by name, and an unindexed pack: garbage collection's, not this job's.
    const notRefs = await put(`snapshots/${customerId}/notes`, 10, 10 * maxAge);
    const unindexedPack = buildPack(keys);
    const unindexedPackFile = await put(`packs/${customerId}/${unindexedPack.id.slice(0, 2)}/${unindexedPack.id}`, 500, 10 * maxAge);

    const sizes = async (files: string[]): Promise<number> => (await Promise.all(files.map(async (f) => (await stat(f)).size))).reduce((a, b) => a + b, 0);
    const tempBytes = await sizes(oldTemps);
    const orphanBytes = await sizes([orphanOld, orphanOtherCustomer]);

    const r = await runPurge(ts);
    assert.equal(r.job, 'purge-temp');
    assert.deepEqual(r.counts, { tempFiles: oldTemps.length, tempBytes, orphanRefs: 2, orphanBytes, abandonedSessions: 0 });
    const rel = (f: string): string => path.relative(objects, f).split(path.sep).join('/');
    assert.deepEqual(
      r.items.filter((i) => i.id !== 'temporary').map((i) => i.id).sort(),
      [rel(orphanOld), rel(orphanOtherCustomer)].sort(),
    );
    assert.ok(r.items.some((i) => i.id === 'temporary' && i.outcome === 'changed' && i.detail.includes(String(oldTemps.length))));
    assert.ok(!r.items.some((i) => i.outcome === 'failed'));

    for (const f of [...oldTemps, orphanOld, orphanOtherCustomer]) assert.equal(await exists(f), false, `${rel(f)} removed`);
    for (const f of [...newTemps, orphanNew, notRefs, unindexedPackFile]) assert.ok(await exists(f), `${rel(f)} kept`);
    for (const f of committed) assert.ok(await exists(path.join(objects, f)), `committed ${f} kept`);

    // The committed snapshots are still whole: the agent reads them back.
    for (const id of snapshots) {
      const res = await m.request('GET', `/snapshots/${id}/refs`);
      assert.equal(res.status, 200, res.body.toString());
    }
    const got = await m.request('GET', `/packs/${pack.id}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(pack.data));

    const again = await runPurge(ts);
    assert.deepEqual(again.counts, { tempFiles: 0, tempBytes: 0, orphanRefs: 0, orphanBytes: 0, abandonedSessions: 0 }, 'idempotent');
    assert.deepEqual(again.items, []);
  });

  it("the cutoff follows the job's clock and the tempMaxAgeHours setting", async () => {
    const [recent23h, recent0h, boundary24h] = newTemps as [string, string, string];
    const young = await put(`.tmp-young-222222222222`, 10, 2);
    const orphan = await put(`snapshots/${customerId}/${newSnapshotId()}.refs`, 16, 2);
    assert.deepEqual((await runPurge(ts)).counts, { tempFiles: 0, tempBytes: 0, orphanRefs: 0, orphanBytes: 0, abandonedSessions: 0 }, 'nothing older than 24 hours');

    // With 1 hour, everything older than an hour by the job's clock goes.
    const r = await runPurge(ts, { tempMaxAgeHours: 1 });
    assert.deepEqual([r.counts.tempFiles, r.counts.orphanRefs], [3, 2]);
    for (const f of [young, recent23h, boundary24h, orphan, orphanNew]) assert.equal(await exists(f), false, `${f} removed`);
    assert.ok(await exists(recent0h), 'written at the clock\'s now: kept');

    // A day later by the test clock (the files' times have not moved), it goes too.
    assert.equal((await runPurge(ts)).counts.tempFiles, 0);
    ts.clock.advance(ts.admin.dataDir.settings.tempMaxAgeHours * HOUR + 1000);
    assert.equal((await runPurge(ts)).counts.tempFiles, 1, 'removed once the clock moved past tempMaxAgeHours');
    assert.equal(await exists(recent0h), false);
    for (const f of committed) assert.ok(await exists(path.join(objects, f)), `committed ${f} kept`);
    for (const id of snapshots) assert.equal((await m.request('GET', `/snapshots/${id}/refs`)).status, 200);
  });

  it('drops upload sessions abandoned longer than tempMaxAgeHours, keeps recent ones', async () => {
    const at = (hours: number) => new Date(ts.clock.now().getTime() - hours * HOUR).toISOString();
    await ts.admin.db.deleteFrom('upload_sessions').execute();
    await ts.admin.db.insertInto('upload_sessions').values({ customer_id: customerId, machine_id: m.machineId, started_at: at(30), last_seen_at: at(25) }).execute();
    const r = await runPurge(ts);
    assert.equal(r.counts.abandonedSessions, 1);
    assert.match(r.items.find((i) => i.detail.includes('abandoned upload session'))!.detail, /dropped 1 abandoned upload session/);
    assert.equal((await ts.admin.db.selectFrom('upload_sessions').selectAll().execute()).length, 0);
    await ts.admin.db.insertInto('upload_sessions').values({ customer_id: customerId, machine_id: m.machineId, started_at: at(2), last_seen_at: at(1) }).execute();
    assert.equal((await runPurge(ts)).counts.abandonedSessions, 0, 'a session active an hour ago stays');
    assert.equal((await ts.admin.db.selectFrom('upload_sessions').selectAll().execute()).length, 1);
  });
});

describe('tempMaxAgeHours is capped at 696 hours (R8: with a daily purge, temporary data never live beyond 30 days)', () => {
  const settingsWith = (hours: number): string => `${JSON.stringify({ v: 1, tempMaxAgeHours: hours })}\n`;

  it('initDataDir refuses 697 with a clear message and accepts 696', async () => {
    const tmp = await tempDir('coffre-purge-settings-');
    try {
      const over = path.join(tmp.dir, 'over');
      await mkdir(over, { recursive: true });
      await writeFile(path.join(over, 'server.json'), settingsWith(TEMP_MAX_AGE_CAP_HOURS + 1));
      await assert.rejects(initDataDir(over), (err) => {
        assert.ok(err instanceof SettingsError, String(err));
        assert.match(err.message, /server\.json/);
        assert.match(err.message, /tempMaxAgeHours must be at most 696/);
        assert.match(err.message, /within 30 days/);
        return true;
      });
      const atCap = path.join(tmp.dir, 'cap');
      await mkdir(atCap, { recursive: true });
      await writeFile(path.join(atCap, 'server.json'), settingsWith(TEMP_MAX_AGE_CAP_HOURS));
      assert.equal((await initDataDir(atCap)).settings.tempMaxAgeHours, 696);
    } finally {
      await tmp.cleanup();
    }
  });

  it('coffre-server start refuses to start over the cap and says why', async () => {
    const tmp = await tempDir('coffre-purge-start-');
    try {
      const dir = path.join(tmp.dir, 'data');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'server.json'), settingsWith(TEMP_MAX_AGE_CAP_HOURS + 1));
      const child = spawn(process.execPath, [CLI_ENTRY, 'start', '--data-dir', dir, '--listen', '127.0.0.1:0'], { env: { ...process.env, COFFRE_DEBUG: '' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, 30_000);
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      clearTimeout(timer);
      assert.equal(timedOut, false, `the server started instead of refusing: ${stdout}`);
      assert.notEqual(code, 0);
      assert.doesNotMatch(stdout, /listening on/);
      assert.match(stderr, /tempMaxAgeHours must be at most 696/);
    } finally {
      await tmp.cleanup();
    }
  });
});
