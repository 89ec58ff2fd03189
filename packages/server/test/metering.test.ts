import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Subkeys } from '@coffre/core';
import { adminCreateOrg, adminCreateTier, adminCustomerSet, adminUpdateOrg } from '../src/admin/index.js';
import { usageCsv, usageReport } from '../src/admin/usage.js';
import { MeteringJob } from '../src/jobs/metering.js';
import { buildPack, enrollMachine, jobContext, snapshotRequest, testKeys, testServer, type TestMachine, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const DAY = 86_400_000;

/**
 * Daily metering and tier crossings (issue 5, point 8), with the controllable clock: the
 * protected volume is the newest snapshot's logical size; over the limit, the customer and
 * its reseller are emailed once a month and the smallest tier that holds the volume applies
 * from the first day of the next month — and only then.
 */
describe('metering and tier crossings', () => {
  let ts: TestServer;
  let m: TestMachine;
  let customerId: string;
  const keys: Subkeys = testKeys();
  const run = () => new MeteringJob().run(jobContext(ts));
  const org = () => ts.admin.db.selectFrom('orgs').selectAll().where('id', '=', customerId).executeTakeFirstOrThrow();
  const tierName = async (id: string | null) => (id ? (await ts.admin.db.selectFrom('tiers').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name : null);
  const commit = async (logicalSize: number) => {
    const p = buildPack(keys);
    assert.equal((await m.request('PUT', `/packs/${p.id}`, { body: p.data })).status, 200);
    const r = await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, p.chunkIds, { logicalSize }) });
    assert.equal(r.status, 201, r.body.toString());
  };
  const outbox = (kind: string) => ts.admin.db.selectFrom('outbox').selectAll().where('kind', '=', kind).orderBy('to_address').execute();

  before(async () => {
    ts = await testServer();
    ts.clock.set(new Date('2026-03-20T10:00:00.000Z'));
    await adminCreateOrg(ts.admin, 'Revendeur Est', 'reseller');
    await adminUpdateOrg(ts.admin, 'Revendeur Est', { alert_email: 'revendeur@est.example', locale: 'en' });
    customerId = (await adminCreateOrg(ts.admin, 'Cabinet Volume', 'customer', 'Revendeur Est')).id;
    await adminCreateTier(ts.admin, 'S', 1_000_000, 990);
    await adminCreateTier(ts.admin, 'M', 5_000_000, 1990);
    await adminCreateTier(ts.admin, 'L', 50_000_000, 4990);
    await adminCustomerSet(ts.admin, 'Cabinet Volume', { tier: 'S', alertEmail: 'cabinet@volume.example' });
    m = await enrollMachine(ts, 'Cabinet Volume', 'serveur');
  });
  after(() => ts.close());

  it('records the day under the limit: nothing else happens', async () => {
    await commit(800_000);
    const r = await run();
    assert.equal(r.counts.crossings, 0);
    const day = await ts.admin.db.selectFrom('usage_daily').selectAll().where('customer_id', '=', customerId).execute();
    assert.equal(day.length, 1);
    assert.deepEqual([day[0]!.date, Number(day[0]!.protected_bytes), Number(day[0]!.limit_bytes), await tierName(day[0]!.tier_id)], ['2026-03-20', 800_000, 1_000_000, 'S']);
    assert.ok(Number(day[0]!.stored_bytes) > 0);
    assert.deepEqual(await outbox('tier_exceeded'), []);
  });

  it('over the limit: both told once (each in its language), the smallest tier that holds the volume from next month', async () => {
    ts.clock.advance(DAY);
    await commit(7_000_000); // over S and over M: L is the one that holds it
    const r = await run();
    assert.equal(r.counts.crossings, 1);
    const o = await org();
    assert.deepEqual([await tierName(o.tier_id), await tierName(o.pending_tier_id), o.pending_tier_from, o.tier_exceeded_period], ['S', 'L', '2026-04-01', '2026-03']);
    const mails = await outbox('tier_exceeded');
    assert.deepEqual(
      mails.map((x) => [x.to_address, x.locale]),
      [
        ['cabinet@volume.example', 'fr'],
        ['revendeur@est.example', 'en'],
      ],
    );
    assert.match(mails[0]!.text_body, /l'offre « L » \(jusqu'à 50\u00a0Mo/);
    assert.match(mails[1]!.subject, /Your S plan is exceeded/);
    ts.clock.advance(DAY);
    assert.equal((await run()).counts.crossings, 0, 'once a month');
    assert.equal((await outbox('tier_exceeded')).length, 2);
    assert.equal(await tierName((await org()).tier_id), 'S', 'the current month keeps its tier');
  });

  it('the next month starts on the new tier; a new crossing that month is told again', async () => {
    ts.clock.set(new Date('2026-04-01T06:00:00.000Z')); // 08:00 in Paris, 1 April
    const r = await run();
    assert.equal(r.counts.tierChanges, 1);
    assert.match(r.items.find((i) => i.detail.includes('moves to tier'))!.detail, /Cabinet Volume moves to tier L from 2026-04-01/);
    const o = await org();
    assert.deepEqual([await tierName(o.tier_id), o.pending_tier_id, o.pending_tier_from], ['L', null, null]);
    assert.equal(r.counts.crossings, 0, '7 MB is within L');
    const day = await ts.admin.db.selectFrom('usage_daily').selectAll().where('customer_id', '=', customerId).where('date', '=', '2026-04-01').executeTakeFirstOrThrow();
    assert.equal(await tierName(day.tier_id), 'L');
    await commit(60_000_000); // over the largest tier
    ts.clock.advance(DAY);
    const over = await run();
    assert.equal(over.counts.crossings, 1);
    assert.match(over.items.at(-1)!.detail, /no larger tier exists/);
    assert.equal((await org()).pending_tier_id, null);
  });

  it('the monthly usage CSV for invoicing', async () => {
    const march = await usageReport(ts.admin.db, '2026-03', 'Revendeur Est');
    assert.equal(march.length, 1);
    assert.deepEqual(
      { ...march[0]! },
      { reseller: 'Revendeur Est', customer: 'Cabinet Volume', tier: 'S', monthlyPriceEuros: '9.90', limitBytes: 1_000_000, maxProtectedBytes: 7_000_000, avgProtectedBytes: Math.round((800_000 + 7_000_000 * 2) / 3), maxStoredBytes: march[0]!.maxStoredBytes, daysMetered: 3, daysOverLimit: 2 },
    );
    const csv = usageCsv(march).split('\r\n');
    assert.equal(csv[1], `Revendeur Est,Cabinet Volume,S,9.90,1000000,7000000,${Math.round((800_000 + 7_000_000 * 2) / 3)},${march[0]!.maxStoredBytes},3,2`);
    assert.equal((await usageReport(ts.admin.db, '2026-04'))[0]!.tier, 'L');
    await assert.rejects(usageReport(ts.admin.db, '2026-13'), /malformed|month/i);
    await assert.rejects(usageReport(ts.admin.db, '2026-03', 'Inconnu'), /not found/i);
  });
});
