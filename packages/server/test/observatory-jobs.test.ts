import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminCreateCustomer } from '../src/admin/index.js';
import { ObservatoryJob } from '../src/jobs/observatory.js';
import { machineStates } from '../src/observatory/machine-states.js';
import { buildPack, commitTestSnapshot, enrollMachine, jobContext, snapshotRequest, testKeys, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * A machine driven by the daemon is judged job by job (R2, R5): an hourly job that keeps
 * succeeding must not hide the nightly database job that never ran or that failed.
 */
describe('the observatory judges each scheduled job on its own', () => {
  let ts: TestServer;
  let m: TestMachine;
  let customerId: string;
  const status = async () => (await machineStates(ts.admin.db, [customerId], ts.clock.now(), 180 * MINUTE))[0]!.status;
  const run = async (job: string | null, result: 'success' | 'failed') => {
    const now = ts.clock.now();
    const r = await m.request('POST', '/runs', {
      json: {
        startedAt: new Date(now.getTime() - MINUTE).toISOString(),
        finishedAt: now.toISOString(),
        result,
        files: 1,
        bytes: 1,
        addedBytes: 0,
        warnings: 0,
        ...(job ? { job, trigger: 'schedule' } : {}),
        ...(result === 'failed' ? { errorCode: 'PRE_COMMAND_FAILED' } : { snapshotId: await commitTestSnapshot(m) }),
      },
    });
    assert.equal(r.status, 201, r.body.toString());
  };
  const keys = testKeys();
  let pack: TestPack | undefined;
  /** The hourly documents job succeeds every hour for `hours` hours, each with a real snapshot. */
  const hourly = async (hours: number) => {
    for (let i = 0; i < hours; i++) {
      ts.clock.advance(HOUR);
      if (!pack) {
        pack = buildPack(keys);
        assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
      }
      const c = await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, pack.chunkIds) });
      assert.equal(c.status, 201, c.body.toString());
      await run('docs', 'success');
    }
  };

  before(async () => {
    ts = await testServer();
    customerId = (await adminCreateCustomer(ts.admin, 'Cabinet Deux Tâches')).id;
    m = await enrollMachine(ts, 'Cabinet Deux Tâches', 'serveur');
    const r = await m.request('PUT', '/jobs', {
      json: {
        jobs: [
          { name: 'base', schedule: '0 22 * * *', timezone: 'Europe/Paris' },
          { name: 'docs', schedule: '0 * * * *', timezone: 'Europe/Paris' },
        ],
      },
    });
    assert.equal(r.status, 200, r.body.toString());
  });
  after(() => ts.close());

  it('the nightly job never ran while the hourly one succeeds: late, and the observatory opens a missed-backup alert', async () => {
    // From 2026-03-02T09:00Z: the 22:00 Paris run is 21:00Z; 17 hours later it is 02:00Z, past the 3-hour grace.
    await hourly(17);
    const [st] = await machineStates(ts.admin.db, [customerId], ts.clock.now(), 180 * MINUTE);
    assert.ok(st!.lastSuccessAt !== null && st!.lastSuccessAt > '2026-03-03T00:00:00.000Z', 'the machine has fresh snapshots (of the hourly job)');
    const s = await status();
    assert.equal(s.overdue, true);
    assert.equal(s.missedAt?.toISOString(), '2026-03-02T21:00:00.000Z');
    assert.notEqual(s.status, 'ok');
    const r = await new ObservatoryJob().run(jobContext(ts));
    assert.equal(r.counts.opened, 1);
    assert.match(r.items.find((i) => i.outcome === 'changed')!.detail, /opened backup_missed for machine serveur/);
  });

  it('the nightly job failed: an hourly success afterwards does not hide it', async () => {
    await run('base', 'failed');
    await hourly(2);
    assert.equal((await status()).status, 'failed');
    const r = await new ObservatoryJob().run(jobContext(ts));
    assert.ok(r.items.some((i) => /opened backup_failed/.test(i.detail)), JSON.stringify(r.items));
  });

  it('once the nightly job succeeds, everything is back to normal', async () => {
    await run('base', 'success');
    const s = await status();
    assert.equal(s.status, 'ok');
    assert.equal(s.overdue, false);
    const r = await new ObservatoryJob().run(jobContext(ts));
    assert.equal(r.counts.closed, 2);
  });

  it('a manual backup that failed counts until each job runs again', async () => {
    ts.clock.advance(MINUTE);
    await run(null, 'failed');
    assert.equal((await status()).status, 'failed');
    await hourly(1);
    assert.equal((await status()).status, 'failed', 'the nightly job has not run since the failed manual backup');
  });
});
