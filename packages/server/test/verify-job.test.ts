/**
 * The verify job (R6, R22; docs/OPERATIONS.md "Verification of stored data"), in process with
 * a controllable clock: real packs uploaded by a real machine and referenced by committed
 * snapshots, then daily runs; damage made in the object store (a flipped byte, a truncated
 * object, a deleted object) must be reported, alerted once per pack and emailed to the operator and the reseller.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isCoffreError, packHeaderSize, verifyPack, type Subkeys } from '@coffre/core';
import { adminCreateOrg, adminUpdateOrg } from '../src/admin/index.js';
import { OPERATOR_ORG_NAME } from '../src/db/migrations/20261126T2000_control_plane.js';
import type { JobResult } from '../src/jobs/job.js';
import { VerifyJob } from '../src/jobs/verify.js';
import { packKey } from '../src/object-keys.js';
import type { CustomerId } from '../src/types.js';
import { buildPack, enrollMachine, snapshotRequest, testKeys, jobContext, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const DAY = 86_400_000;
const RESELLER = 'Revendeur Vérif';
const CUSTOMER = 'Cabinet Vérif';
const OPERATOR_EMAIL = 'exploitation@coffre.example';
const RESELLER_EMAIL = 'alertes@revendeur.example';
const CUSTOMER_EMAIL = 'cabinet@verif.example';

function runVerify(ts: TestServer): Promise<JobResult> {
  return new VerifyJob().run(jobContext(ts));
}

async function verifiedAt(ts: TestServer): Promise<Map<string, string | null>> {
  const rows = await ts.admin.db.selectFrom('packs').select(['id', 'verified_at']).execute();
  return new Map(rows.map((r) => [r.id, r.verified_at]));
}

describe('the verify job over real stored packs', () => {
  let ts: TestServer;
  let customerId: string;
  let m: TestMachine;
  const keys: Subkeys = testKeys();
  const packs = new Map<string, TestPack>();
  const period = (): number => ts.admin.dataDir.settings.verifyPeriodDays;
  /** The pack's object in the store the server uses (filesystem or S3). */
  const packObject = (id: string): string => packKey(customerId as CustomerId, id);

  /** Uploads `n` real packs and commits a snapshot that references every chunk in them. */
  async function backup(n: number): Promise<TestPack[]> {
    const made: TestPack[] = [];
    for (let i = 0; i < n; i++) {
      const p = buildPack(keys);
      const put = await m.request('PUT', `/packs/${p.id}`, { body: p.data });
      assert.equal(put.status, 200, put.body.toString());
      packs.set(p.id, p);
      made.push(p);
    }
    const res = await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, made.flatMap((p) => p.chunkIds)) });
    assert.equal(res.status, 201, res.body.toString());
    return made;
  }

  before(async () => {
    ts = await testServer();
    await adminCreateOrg(ts.admin, RESELLER, 'reseller');
    customerId = (await adminCreateOrg(ts.admin, CUSTOMER, 'customer', RESELLER)).id;
    await adminUpdateOrg(ts.admin, OPERATOR_ORG_NAME, { alert_email: OPERATOR_EMAIL });
    await adminUpdateOrg(ts.admin, RESELLER, { alert_email: RESELLER_EMAIL });
    await adminUpdateOrg(ts.admin, CUSTOMER, { alert_email: CUSTOMER_EMAIL });
    m = await enrollMachine(ts, CUSTOMER, 'poste');
    await backup(16);
    ts.clock.advance(3_600_000);
    await backup(15);
  });
  after(() => ts.close());

  it('the first run verifies every never-verified pack: verified_at set, every blob re-hashed, nothing failed', async () => {
    ts.clock.advance(DAY);
    const r = await runVerify(ts);
    const n = packs.size;
    assert.equal(r.job, 'verify');
    assert.deepEqual(r.items, []);
    assert.equal(r.counts.packs, n);
    assert.equal(r.counts.verified, n);
    assert.equal(r.counts.mismatches, 0);
    assert.equal(r.counts.blobs, [...packs.values()].reduce((s, p) => s + p.entries.length, 0));
    assert.equal(r.counts.bytes, [...packs.values()].reduce((s, p) => s + p.entries.reduce((t, e) => t + e.length, 0), 0));
    const v = await verifiedAt(ts);
    assert.equal(v.size, n);
    for (const [id, at] of v) assert.equal(at, ts.clock.now().toISOString(), `pack ${id} verified now`);
  });

  it('30 daily runs: at least ceil(N/30) packs a run, those verified longest ago first, and every pack verified within verifyPeriodDays', async () => {
    const everVerified = new Set<string>();
    for (let day = 1; day <= period(); day++) {
      ts.clock.advance(DAY);
      let fresh: string[] = [];
      if (day === 10) fresh = (await backup(3)).map((p) => p.id); // new packs arrive mid-period
      const prev = await verifiedAt(ts);
      const r = await runVerify(ts);
      const now = ts.clock.now().toISOString();
      const cur = await verifiedAt(ts);
      const done = [...cur].filter(([, at]) => at === now).map(([id]) => id);
      const notDone = [...cur.keys()].filter((id) => !done.includes(id));
      assert.deepEqual(r.items, [], `day ${day}`);
      assert.equal(r.counts.verified, done.length, `day ${day}`);
      assert.ok(done.length >= Math.ceil(cur.size / period()), `day ${day}: ${done.length} verified, at least ${Math.ceil(cur.size / period())} expected`);
      for (const id of fresh) assert.ok(done.includes(id), `day ${day}: never-verified pack ${id} comes first`);
      // Longest ago first (never = ''): nothing left behind was verified before something picked.
      const key = (id: string): string => prev.get(id) ?? '';
      const newestPicked = done.map(key).sort().at(-1)!;
      const oldestLeft = notDone.map(key).sort()[0];
      if (oldestLeft !== undefined) assert.ok(newestPicked <= oldestLeft, `day ${day}: picked one verified ${newestPicked} but left one verified ${oldestLeft}`);
      for (const [id, at] of cur) {
        assert.ok(at !== null, `day ${day}: ${id} never verified`);
        assert.ok(Date.parse(now) - Date.parse(at) < period() * DAY, `day ${day}: pack ${id} last verified ${at}, more than ${period()} days ago`);
      }
      done.forEach((id) => everVerified.add(id));
    }
    assert.deepEqual([...everVerified].sort(), [...packs.keys()].sort(), 'a full pass within the period');
  });

  it('after runs were missed, the next run verifies every pack that would otherwise pass the period', async () => {
    ts.clock.advance((period() - 5) * DAY); // the server was down for weeks
    const before = await verifiedAt(ts);
    const limit = ts.clock.now().getTime() - (period() - 1) * DAY;
    const overdue = [...before].filter(([, at]) => Date.parse(at!) < limit).map(([id]) => id);
    assert.ok(overdue.length > Math.ceil(before.size / period()), `the pause made ${overdue.length} packs overdue`);
    const r = await runVerify(ts);
    assert.deepEqual(r.items, []);
    const cur = await verifiedAt(ts);
    for (const id of overdue) assert.equal(cur.get(id), ts.clock.now().toISOString(), `overdue pack ${id} verified`);
    for (const [id, at] of cur) assert.ok(Date.parse(at!) >= limit, `pack ${id} left overdue (${at})`);
  });

  let corrupted: TestPack;
  let truncated: TestPack;
  let deleted: TestPack;

  it('a flipped byte, a truncated pack and a deleted pack object are reported; one verify_mismatch alert each, emailed to the operator and the reseller, not the customer', async () => {
    ts.clock.advance(DAY);
    let untouched: TestPack;
    [corrupted, truncated, deleted, untouched] = (await backup(4)) as [TestPack, TestPack, TestPack, TestPack];
    const bad = [corrupted.id, truncated.id, deleted.id];
    // One byte inside the first blob.
    const store = ts.admin.store;
    const data = await store.get(packObject(corrupted.id));
    data[corrupted.entries[0]!.offset + 7]! ^= 0x01;
    await store.put(packObject(corrupted.id), data);
    await store.put(packObject(truncated.id), (await store.get(packObject(truncated.id))).subarray(0, truncated.data.length - 10));
    await store.delete(packObject(deleted.id));
    const outboxBefore = await ts.admin.db.selectFrom('outbox').select('id').execute();

    const r = await runVerify(ts);
    const now = ts.clock.now().toISOString();
    const failed = r.items.filter((i) => i.outcome === 'failed');
    assert.deepEqual(failed.map((i) => i.id).sort(), [...bad].sort());
    assert.equal(r.items.length, failed.length);
    const detail = (id: string): string => failed.find((i) => i.id === id)!.detail;
    for (const id of bad) assert.ok(detail(id).includes(id), `the item names pack ${id}: ${detail(id)}`);
    assert.match(detail(corrupted.id), /1 of \d+ blob\(s\) do not match/);
    assert.match(detail(truncated.id), new RegExp(`${truncated.data.length - 10} bytes, ${truncated.data.length} were recorded`));
    assert.match(detail(deleted.id), /missing/);
    assert.deepEqual([r.counts.mismatches, r.counts.alerts, r.counts.emails], [3, 3, 6]);

    const alerts = await ts.admin.db.selectFrom('alerts').selectAll().where('customer_id', '=', customerId).execute();
    assert.deepEqual(alerts.map((a) => a.subject).sort(), bad.map((id) => `pack:${id}`).sort());
    for (const a of alerts) {
      assert.deepEqual([a.kind, a.machine_id, a.closed_at, a.opened_at, a.error_code], ['verify_mismatch', null, null, now, 'PACK_MISMATCH']);
    }

    const outbox = await ts.admin.db.selectFrom('outbox').selectAll().where('id', 'not in', outboxBefore.length ? outboxBefore.map((o) => o.id) : ['-']).execute();
    assert.equal(outbox.length, 6);
    for (const a of alerts) {
      const mine = outbox.filter((o) => o.dedup_key.startsWith(`alert:${a.id}:opened`));
      assert.deepEqual(mine.map((o) => o.to_address).sort(), [OPERATOR_EMAIL, RESELLER_EMAIL].sort(), `recipients of the alert on ${a.subject}`);
      for (const o of mine) assert.equal(o.kind, 'alert_opened');
    }
    assert.equal(outbox.filter((o) => o.to_address === CUSTOMER_EMAIL).length, 0, 'the customer is not emailed');

    // Damaged packs stay unverified; untouched ones checked in this run got verified_at.
    const cur = await verifiedAt(ts);
    for (const id of bad) assert.equal(cur.get(id), null, `${id} not marked verified`);
    const okNow = [...cur].filter(([, at]) => at === now).map(([id]) => id);
    assert.equal(okNow.length, r.counts.verified);
    assert.ok(okNow.includes(untouched.id), 'the untouched new pack was verified in the same run');
  });

  it('the next run reports the damaged packs again but opens no second alert and sends no second email', async () => {
    ts.clock.advance(DAY);
    const outboxBefore = (await ts.admin.db.selectFrom('outbox').select('id').execute()).length;
    const r = await runVerify(ts);
    assert.deepEqual(r.items.filter((i) => i.outcome === 'failed').map((i) => i.id).sort(), [corrupted.id, truncated.id, deleted.id].sort());
    assert.deepEqual([r.counts.mismatches, r.counts.alerts, r.counts.emails], [3, 0, 0]);
    const alerts = await ts.admin.db.selectFrom('alerts').select('subject').where('customer_id', '=', customerId).where('kind', '=', 'verify_mismatch').execute();
    assert.equal(alerts.length, 3);
    assert.equal((await ts.admin.db.selectFrom('outbox').select('id').execute()).length, outboxBefore);
  });

  it('a damaged pack header (the clear index restores rely on) is reported too', async () => {
    ts.clock.advance(DAY);
    const [p] = (await backup(1)) as [TestPack];
    const data = await ts.admin.store.get(packObject(p.id));
    // A byte of the first entry's chunk id, in the header: no blob byte changes.
    data[packHeaderSize(0) + 3]! ^= 0x80;
    await ts.admin.store.put(packObject(p.id), data);
    // What an agent would see: the header no longer hashes to the pack id (restore refuses the pack).
    assert.throws(() => verifyPack(data, p.id), (e) => isCoffreError(e, 'INTEGRITY'));

    const r = await runVerify(ts);
    const item = r.items.find((i) => i.id === p.id);
    const cur = await verifiedAt(ts);
    assert.deepEqual(
      { outcome: item?.outcome ?? 'no item', verifiedAt: cur.get(p.id) },
      { outcome: 'failed', verifiedAt: null },
      `pack ${p.id} with a damaged header: ${item?.detail ?? 'reported as verified'}`,
    );
  });
});
