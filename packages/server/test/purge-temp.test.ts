/**
 * The purge-temp job (R8, docs/OPERATIONS.md "Temporary data"): what uploads left behind (temp
 * files, multipart uploads) goes once older than tempMaxAgeHours (by the job's clock),
 * committed objects never; a setting above 30 days is refused when the server starts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newSnapshotId, type Subkeys } from '@coffre/core';
import { adminCreateCustomer } from '../src/admin/index.js';
import { initDataDir, SettingsError, TEMP_MAX_AGE_CAP_HOURS } from '../src/datadir.js';
import type { JobContext, JobResult } from '../src/jobs/job.js';
import { PurgeTempJob } from '../src/jobs/purge-temp.js';
import { packKey } from '../src/object-keys.js';
import type { CustomerId } from '../src/types.js';
import { prepareDataDir } from './backends.js';
import {
  abandonUpload,
  buildPack,
  CLI_ENTRY,
  enrollMachine,
  jobContext,
  pendingUploads,
  snapshotRequest,
  tempDir,
  testKeys,
  testServer,
  type TestMachine,
  type TestPack,
  type TestServer,
} from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const HOUR = 3_600_000;

/** Runs the job as at `now` (its clock), with the test server's settings, optionally changed. */
function runPurge(ts: TestServer, now: Date, settings: Partial<JobContext['settings']> = {}): Promise<JobResult> {
  return new PurgeTempJob().run({ ...jobContext(ts, settings), clock: () => now });
}

/**
 * Waits until the wall clock is past the next whole second. The store gives what is written
 * its own times (S3 services to the second), so what is written after this is strictly
 * newer than what was written before, on every store.
 */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 50));
}

/**
 * Ages cannot be set on every store (S3 times are the service's), so they are made by
 * writing in order — oldest first, each group in a later second than the one before —
 * and each run's clock is placed against the times the store reports for what was written.
 */
describe('purge-temp over a real object store', () => {
  let ts: TestServer;
  let customerId: string;
  let m: TestMachine;
  const keys: Subkeys = testKeys();
  let pack: TestPack;
  const snapshots: string[] = [];
  let committed: string[] = [];
  /** Written in this order, a group per second (see nextSecond). */
  let oldTemps: string[] = [];
  let orphanOld = '';
  let orphanOtherCustomer = '';
  let notRefs = '';
  let unindexedPack = '';
  let boundary = '';
  let recent23h = '';
  let orphanNew = '';
  let young = '';
  let orphanYoung = '';
  let recent0h = '';
  /** The first run's clock: `boundary` is exactly tempMaxAgeHours old. */
  let clockA: Date;
  /** Between the last two groups (recent0h only is newer). */
  let cutoffB: Date;

  const pending = async (): Promise<string[]> => (await pendingUploads(ts)).map((p) => p.name);
  const tempExists = async (name: string): Promise<boolean> => (await pending()).includes(name);
  const objectExists = async (key: string): Promise<boolean> => (await ts.admin.store.stat(key)) !== null;
  const put = async (key: string, size: number): Promise<string> => {
    await ts.admin.store.put(key, randomBytes(size));
    return key;
  };
  /** When the store says `key` was last written (what the job compares with its cutoff). */
  const objectTime = async (key: string): Promise<number> => {
    for await (const o of ts.admin.store.list(key)) if (o.key === key) return o.modifiedAt.getTime();
    assert.fail(`${key} is not stored`);
  };
  const tempTime = async (name: string): Promise<number> => {
    const p = (await pendingUploads(ts)).find((u) => u.name === name);
    assert.ok(p, `${name} is pending`);
    return p.lastWrite.getTime();
  };

  before(async () => {
    ts = await testServer();
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
    for await (const o of ts.admin.store.list('')) committed.push(o.key);
    committed = committed.sort();
    assert.ok(committed.some((f) => f.startsWith('packs/')) && committed.filter((f) => f.startsWith('snapshots/')).length === 2, committed.join(', '));
    assert.deepEqual(await pendingUploads(ts), [], 'no pending upload left by the uploads');

    // Older than the first run's cutoff (the committed objects are older still: age never matters for them).
    await nextSecond();
    oldTemps = [
      await abandonUpload(ts, packKey(customerId as CustomerId, pack.id), 3000),
      await abandonUpload(ts, `snapshots/${customerId}/${newSnapshotId()}.refs`, 100),
      await abandonUpload(ts, 'orphan', 10),
    ];
    orphanOld = await put(`snapshots/${customerId}/${newSnapshotId()}.refs`, 64);
    orphanOtherCustomer = await put(`snapshots/00000000-0000-4000-8000-000000000000/${newSnapshotId()}.refs`, 32);
    // Not a reference list by name, and an unindexed pack: garbage collection's, not this job's.
    notRefs = await put(`snapshots/${customerId}/notes`, 10);
    const unindexed = buildPack(keys);
    unindexedPack = await put(packKey(customerId as CustomerId, unindexed.id), 500);
    // Exactly at the first run's cutoff: "older than" is strict.
    await nextSecond();
    boundary = await abandonUpload(ts, 'boundary', 20);
    // Newer than the first run's cutoff, older than the second's.
    await nextSecond();
    recent23h = await abandonUpload(ts, packKey(customerId as CustomerId, pack.id), 2000);
    orphanNew = await put(`snapshots/${customerId}/${newSnapshotId()}.refs`, 64);
    young = await abandonUpload(ts, 'young', 10);
    orphanYoung = await put(`snapshots/${customerId}/${newSnapshotId()}.refs`, 16);
    // Newer than every cutoff until the clock moves on.
    await nextSecond();
    recent0h = await abandonUpload(ts, `snapshots/${customerId}/recent`, 50);

    const oldest = [...(await Promise.all(oldTemps.map(tempTime))), ...(await Promise.all([orphanOld, orphanOtherCustomer, notRefs, unindexedPack].map(objectTime)))];
    const middle = [await tempTime(recent23h), await tempTime(young), await objectTime(orphanNew), await objectTime(orphanYoung)];
    const [tBoundary, tRecent] = [await tempTime(boundary), await tempTime(recent0h)];
    assert.ok(Math.max(...oldest) < tBoundary && tBoundary < Math.min(...middle) && Math.max(...middle) < tRecent, `written in order: ${JSON.stringify({ oldest, tBoundary, middle, tRecent })}`);
    clockA = new Date(tBoundary + ts.admin.dataDir.settings.tempMaxAgeHours * HOUR);
    cutoffB = new Date(Math.floor((Math.max(...middle) + tRecent) / 2));
  });
  after(() => ts.close());

  it('removes temp files and unindexed reference lists older than tempMaxAgeHours, keeps newer ones, committed objects and indexed refs', async () => {
    const maxAge = ts.admin.dataDir.settings.tempMaxAgeHours;
    assert.equal(maxAge, 24);
    const tempBytes = 3000 + 100 + 10;
    const orphanBytes = 64 + 32;

    const r = await runPurge(ts, clockA);
    assert.equal(r.job, 'purge-temp');
    assert.deepEqual(r.counts, { tempFiles: oldTemps.length, tempBytes, orphanRefs: 2, orphanBytes, abandonedSessions: 0 });
    assert.deepEqual(
      r.items.filter((i) => i.id !== 'temporary').map((i) => i.id).sort(),
      [orphanOld, orphanOtherCustomer].sort(),
    );
    assert.ok(r.items.some((i) => i.id === 'temporary' && i.outcome === 'changed' && i.detail.includes(String(oldTemps.length))));
    assert.ok(!r.items.some((i) => i.outcome === 'failed'));

    for (const t of oldTemps) assert.equal(await tempExists(t), false, `${t} removed`);
    for (const k of [orphanOld, orphanOtherCustomer]) assert.equal(await objectExists(k), false, `${k} removed`);
    for (const t of [boundary, recent23h, young, recent0h]) assert.ok(await tempExists(t), `${t} kept`);
    for (const k of [orphanNew, orphanYoung, notRefs, unindexedPack]) assert.ok(await objectExists(k), `${k} kept`);
    for (const k of committed) assert.ok(await objectExists(k), `committed ${k} kept`);

    // The committed snapshots are still whole: the agent reads them back.
    for (const id of snapshots) {
      const res = await m.request('GET', `/snapshots/${id}/refs`);
      assert.equal(res.status, 200, res.body.toString());
    }
    const got = await m.request('GET', `/packs/${pack.id}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(pack.data));

    const again = await runPurge(ts, clockA);
    assert.deepEqual(again.counts, { tempFiles: 0, tempBytes: 0, orphanRefs: 0, orphanBytes: 0, abandonedSessions: 0 }, 'idempotent');
    assert.deepEqual(again.items, []);
  });

  it("the cutoff follows the job's clock and the tempMaxAgeHours setting", async () => {
    assert.deepEqual((await runPurge(ts, clockA)).counts, { tempFiles: 0, tempBytes: 0, orphanRefs: 0, orphanBytes: 0, abandonedSessions: 0 }, 'nothing else older than 24 hours');

    // With 1 hour, everything older than an hour by the job's clock goes.
    const clockB = new Date(cutoffB.getTime() + HOUR);
    const r = await runPurge(ts, clockB, { tempMaxAgeHours: 1 });
    assert.deepEqual([r.counts.tempFiles, r.counts.orphanRefs], [3, 2]);
    for (const t of [young, recent23h, boundary]) assert.equal(await tempExists(t), false, `${t} removed`);
    for (const k of [orphanYoung, orphanNew]) assert.equal(await objectExists(k), false, `${k} removed`);
    assert.ok(await tempExists(recent0h), 'written after the cutoff: kept');

    // A day later by the job's clock (the store's times have not moved), it goes too.
    assert.equal((await runPurge(ts, clockB)).counts.tempFiles, 0);
    const dayLater = new Date(clockB.getTime() + ts.admin.dataDir.settings.tempMaxAgeHours * HOUR + 1000);
    assert.equal((await runPurge(ts, dayLater)).counts.tempFiles, 1, 'removed once the clock moved past tempMaxAgeHours');
    assert.equal(await tempExists(recent0h), false);
    assert.deepEqual(await pendingUploads(ts), []);
    for (const k of committed) assert.ok(await objectExists(k), `committed ${k} kept`);
    for (const id of snapshots) assert.equal((await m.request('GET', `/snapshots/${id}/refs`)).status, 200);
  });

  it('drops upload sessions abandoned longer than tempMaxAgeHours, keeps recent ones', async () => {
    const at = (hours: number) => new Date(ts.clock.now().getTime() - hours * HOUR).toISOString();
    await ts.admin.db.deleteFrom('upload_sessions').execute();
    await ts.admin.db.insertInto('upload_sessions').values({ customer_id: customerId, machine_id: m.machineId, started_at: at(30), last_seen_at: at(25) }).execute();
    const r = await runPurge(ts, ts.clock.now());
    assert.equal(r.counts.abandonedSessions, 1);
    assert.match(r.items.find((i) => i.detail.includes('abandoned upload session'))!.detail, /dropped 1 abandoned upload session/);
    assert.equal((await ts.admin.db.selectFrom('upload_sessions').selectAll().execute()).length, 0);
    await ts.admin.db.insertInto('upload_sessions').values({ customer_id: customerId, machine_id: m.machineId, started_at: at(2), last_seen_at: at(1) }).execute();
    assert.equal((await runPurge(ts, ts.clock.now())).counts.abandonedSessions, 0, 'a session active an hour ago stays');
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
      await prepareDataDir(dir);
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
