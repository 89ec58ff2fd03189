import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertError, commitTestSnapshot, enrollMachine, testServer, type TestMachine, type TestServer } from './kit.js';
import { org, person, type TestPerson } from './people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

interface Summary {
  name: string;
  backupStatus: string;
  lastSuccessAt: string | null;
  machines: number;
}

const run = (result: 'success' | 'partial' | 'failed', extra: Record<string, unknown> = {}) => ({
  startedAt: '2026-03-02T08:00:00.000Z',
  finishedAt: '2026-03-02T08:05:30.000Z',
  result,
  files: 120,
  bytes: 5_000_000,
  addedBytes: 1_000_000,
  warnings: 0,
  ...extra,
});

describe('dashboard, runs and customer data for people', () => {
  let ts: TestServer;
  let op: TestPerson;
  let resellerA: TestPerson;
  let m1: TestMachine;

  before(async () => {
    ts = await testServer();
    await org(ts, 'Revendeur A', 'reseller');
    await org(ts, 'Revendeur B', 'reseller');
    await org(ts, 'Cabinet A1', 'customer', 'Revendeur A');
    await org(ts, 'Cabinet A2', 'customer', 'Revendeur A');
    await org(ts, 'Cabinet B1', 'customer', 'Revendeur B');
    op = await person(ts, 'operator-admin', 'operator');
    resellerA = await person(ts, 'reseller-admin', 'Revendeur A');
    m1 = await enrollMachine(ts, 'Cabinet A1', 'accueil');
  });
  after(() => ts.close());

  it('a reseller sees only its customers; the operator sees all', async () => {
    const mine = (await resellerA.browser.request('GET', '/dashboard')).json<{ customers: Summary[] }>().customers;
    assert.deepEqual(mine.map((c) => c.name).sort(), ['Cabinet A1', 'Cabinet A2']);
    const all = (await op.browser.request('GET', '/dashboard')).json<{ customers: Summary[] }>().customers;
    assert.deepEqual(all.map((c) => c.name).sort(), ['Cabinet A1', 'Cabinet A2', 'Cabinet B1']);
    assert.ok(all.every((c) => c.lastSuccessAt === null));
    // A1's machine reported no schedule: nothing guarantees its next backup.
    assert.deepEqual(Object.fromEntries(all.map((c) => [c.name, c.backupStatus])), { 'Cabinet A1': 'no_schedule', 'Cabinet A2': 'never', 'Cabinet B1': 'never' });
  });

  it('machines report runs (append-only, validated); a failed latest run makes the customer failed', async () => {
    const snapshotId = await commitTestSnapshot(m1);
    assert.equal((await m1.request('POST', '/runs', { json: run('success', { snapshotId }) })).status, 201);
    assertError(await m1.request('POST', '/runs', { json: { ...run('success'), errorCode: 'ENOENT: /patients/dupont.pdf' } }), 400, 'BAD_REQUEST');
    assertError(await m1.request('POST', '/runs', { json: { ...run('success'), path: '/etc' } }), 400, 'BAD_REQUEST');
    assertError(await m1.request('DELETE', '/runs'), 404, 'NOT_FOUND');
    ts.clock.advance(1000);
    assert.equal((await m1.request('POST', '/runs', { json: run('failed', { errorCode: 'UNREACHABLE', files: 0 }) })).status, 201);
    const a1 = (await op.browser.request('GET', '/dashboard')).json<{ customers: Summary[] }>().customers.find((c) => c.name === 'Cabinet A1')!;
    assert.equal(a1.backupStatus, 'failed');
    ts.clock.advance(1000);
    assert.equal((await m1.request('POST', '/runs', { json: run('partial', { warnings: 2 }) })).status, 201);
    const again = (await op.browser.request('GET', '/dashboard')).json<{ customers: Summary[] }>().customers.find((c) => c.name === 'Cabinet A1')!;
    assert.equal(again.backupStatus, 'no_schedule', 'no longer failed; its agent reported no schedule');
  });

  it('shows the subscribed tier of each customer', async () => {
    const { adminCreateTier, adminCustomerSet } = await import('../src/admin/index.js');
    await adminCreateTier(ts.admin, 'Essentiel', 500e9, 4990);
    await adminCustomerSet(ts.admin, 'Cabinet A2', { tier: 'Essentiel' });
    const all = (await op.browser.request('GET', '/dashboard')).json<{ customers: (Summary & { tier: { id: string; name: string; limitBytes: number; monthlyPriceCents: number } | null })[] }>().customers;
    const { id, ...tier } = all.find((c) => c.name === 'Cabinet A2')!.tier!;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(tier, { name: 'Essentiel', limitBytes: 500e9, monthlyPriceCents: 4990 });
    assert.equal(all.find((c) => c.name === 'Cabinet A1')!.tier, null);
    const tiers = (await resellerA.browser.request('GET', '/tiers')).json<{ tiers: { name: string }[] }>().tiers;
    assert.deepEqual(tiers.map((t) => t.name), ['Essentiel']);
  });

  it('lists runs with their duration for people of the tenant only', async () => {
    const orgs = (await op.browser.request('GET', '/orgs')).json<{ orgs: { id: string; name: string }[] }>().orgs;
    const a1 = orgs.find((o) => o.name === 'Cabinet A1')!.id;
    const b1 = orgs.find((o) => o.name === 'Cabinet B1')!.id;
    const r = await resellerA.browser.request('GET', `/orgs/${a1}/runs`);
    assert.equal(r.status, 200, r.body.toString());
    const runs = r.json<{ runs: { result: string; durationMs: number; machineName: string; errorCode: string | null }[] }>().runs;
    assert.deepEqual(runs.map((x) => x.result), ['partial', 'failed', 'success']);
    assert.equal(runs[0]!.durationMs, 330_000);
    assert.equal(runs[1]!.errorCode, 'UNREACHABLE');
    assert.ok(runs.every((x) => x.machineName === 'accueil'));
    assertError(await resellerA.browser.request('GET', `/orgs/${b1}/runs`), 404, 'NOT_FOUND');
  });
});
