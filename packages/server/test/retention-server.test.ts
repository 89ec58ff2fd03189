/**
 * Retention on the server (R9, docs/OPERATIONS.md "Retention and the recycle bin"), in process
 * with a controllable clock: real machines commit real snapshots over HTTPS over simulated
 * days (the snapshot time is the server clock), then the retention job, the dry run, the
 * policies, the recycle bin and its purge are checked against the pure planRetention of
 * @coffre/core and against what agents can still see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_RETENTION, parseRetentionPolicy, planRetention, retentionPolicyArgs, type RetentionPolicy, type SnapshotListResponse, type Subkeys } from '@coffre/core';
import { adminCreateCustomer } from '../src/admin/index.js';
import { adminBinList, adminBinRestore, adminRetentionPlan, adminRetentionSet, adminRetentionShow, adminSnapshotDelete } from '../src/admin/retention.js';
import { isApiError } from '../src/errors.js';
import type { JobResult } from '../src/jobs/job.js';
import { RetentionJob } from '../src/jobs/retention.js';
import { snapshotRefsKey } from '../src/object-keys.js';
import type { CustomerId } from '../src/types.js';
import { assertError, buildPack, enrollMachine, snapshotRequest, testKeys, jobContext, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Moves the test clock forward to `iso` (never back). */
function clockTo(ts: TestServer, iso: string | number): void {
  const delta = (typeof iso === 'number' ? iso : Date.parse(iso)) - ts.clock.now().getTime();
  assert.ok(delta >= 0, `the clock only moves forward: now ${ts.clock.now().toISOString()}, asked ${new Date(iso).toISOString()}`);
  ts.clock.advance(delta);
}

/** A machine that commits real snapshots (one pack uploaded once, referenced by each snapshot). */
class Backups {
  private readonly keys: Subkeys = testKeys();
  private pack: TestPack | null = null;
  constructor(
    private readonly ts: TestServer,
    readonly m: TestMachine,
  ) {}

  async snapshot(): Promise<{ id: string; time: string }> {
    if (!this.pack) {
      this.pack = buildPack(this.keys);
      const put = await this.m.request('PUT', `/packs/${this.pack.id}`, { body: this.pack.data });
      assert.equal(put.status, 200, put.body.toString());
    }
    const res = await this.m.request('POST', '/snapshots', { json: snapshotRequest(this.keys, this.m.machineId, this.pack.chunkIds) });
    assert.equal(res.status, 201, res.body.toString());
    const body = res.json<{ id: string; time: string }>();
    assert.equal(body.time, this.ts.clock.now().toISOString(), 'the snapshot time is the server clock');
    return body;
  }
}

function runRetention(ts: TestServer): Promise<JobResult> {
  return new RetentionJob().run(jobContext(ts));
}

interface SnapRow {
  id: string;
  time: string;
  machine_id: string;
  deleted_at: string | null;
  deleted_by: string | null;
  delete_reason: string | null;
}

async function rowsOf(ts: TestServer, customerId: string): Promise<SnapRow[]> {
  return ts.admin.db.selectFrom('snapshots').select(['id', 'time', 'machine_id', 'deleted_at', 'deleted_by', 'delete_reason']).where('customer_id', '=', customerId).orderBy('time').orderBy('id').execute();
}

async function auditSince(ts: TestServer, seq: number, action: string) {
  const rows = await ts.admin.db.selectFrom('audit_log').selectAll().where('seq', '>', seq).where('action', '=', action).orderBy('seq').execute();
  return rows.map((r) => ({ ...r, details: r.details_json === null ? null : (JSON.parse(r.details_json) as Record<string, unknown>) }));
}

async function lastSeq(ts: TestServer): Promise<number> {
  const r = await ts.admin.db.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return r ? Number(r.seq) : 0;
}

/** Whether the snapshot's reference list is in the object store the server uses. */
async function refsExist(ts: TestServer, customerId: string, id: string): Promise<boolean> {
  return (await ts.admin.store.stat(snapshotRefsKey(customerId as CustomerId, id))) !== null;
}

/** What planRetention of @coffre/core removes, machine by machine, for the given policies. */
function expectedRemovals(rows: readonly SnapRow[], policyOf: (machineId: string) => RetentionPolicy, ts: TestServer): Set<string> {
  const s = ts.admin.dataDir.settings;
  const live = rows.filter((r) => r.deleted_at === null);
  const out = new Set<string>();
  for (const machineId of new Set(live.map((r) => r.machine_id))) {
    const mine = live.filter((r) => r.machine_id === machineId).map((r) => ({ id: r.id, time: r.time, machineId: r.machine_id }));
    const plan = planRetention(mine, policyOf(machineId), { now: ts.clock.now(), timeZone: s.retentionTimeZone, protectDays: s.protectDays });
    for (const id of plan.remove) out.add(id);
  }
  return out;
}

function sorted(ids: Iterable<string>): string[] {
  return [...ids].sort();
}

async function agentIds(m: TestMachine, query = ''): Promise<string[]> {
  const res = await m.request('GET', `/snapshots${query}`);
  assert.equal(res.status, 200, res.body.toString());
  return sorted(res.json<SnapshotListResponse>().snapshots.map((s) => s.id));
}

// ---------------------------------------------------------------------------------------------

describe('retention job with the default policy, the dry run, the recycle bin and its purge', () => {
  const CUSTOMER = 'Cabinet Rétention';
  let ts: TestServer;
  let customerId: string;
  let a: Backups; // two snapshots a day
  let b: Backups; // one snapshot every other day
  let c: TestMachine; // never backs up
  /** A's first snapshot of each day (the second one of the same local day keeps the day). */
  const aMorning: { id: string; time: string }[] = [];
  const bSnaps: { id: string; time: string }[] = [];
  let all: string[] = [];
  let binned: string[] = [];
  let binnedAt = 0;

  before(async () => {
    ts = await testServer();
    // Far from any daylight-saving change in Europe/Paris for the whole test (May–June).
    clockTo(ts, '2026-05-04T06:00:00.000Z');
    customerId = (await adminCreateCustomer(ts.admin, CUSTOMER)).id;
    a = new Backups(ts, await enrollMachine(ts, CUSTOMER, 'accueil'));
    b = new Backups(ts, await enrollMachine(ts, CUSTOMER, 'cabinet'));
    c = await enrollMachine(ts, CUSTOMER, 'secretariat');
    await adminCreateCustomer(ts.admin, 'Cabinet Vide'); // a customer without any machine
    const start = ts.clock.now().getTime();
    for (let d = 0; d < 20; d++) {
      // 08:00, 10:00 and 12:00 in Paris: one local day.
      clockTo(ts, start + d * DAY);
      aMorning.push(await a.snapshot());
      if (d % 2 === 0) {
        clockTo(ts, start + d * DAY + 2 * HOUR);
        bSnaps.push(await b.snapshot());
      }
      clockTo(ts, start + d * DAY + 4 * HOUR);
      await a.snapshot();
    }
    clockTo(ts, start + 20 * DAY);
    all = (await rowsOf(ts, customerId)).map((r) => r.id);
    assert.equal(all.length, 20 * 2 + 10);
  });
  after(() => ts.close());

  it('the dry run (adminRetentionPlan) lists what planRetention decides, removes only unprotected same-day duplicates, and changes nothing', async () => {
    const seq = await lastSeq(ts);
    const rowsBefore = await rowsOf(ts, customerId);
    const plan = await adminRetentionPlan(ts.admin, CUSTOMER);
    assert.equal(plan.customerId, customerId);
    assert.deepEqual(
      plan.machines.map((m) => [m.machineName, m.policy.source, retentionPolicyArgs(m.policy.policy)]),
      ['accueil', 'cabinet', 'secretariat'].map((n) => [n, 'default', retentionPolicyArgs(DEFAULT_RETENTION)]),
    );
    assert.equal(plan.decisions.length, all.length, 'one decision per live snapshot');
    assert.ok(!plan.decisions.some((d) => d.machineName === 'secretariat'), 'a machine without snapshots has no decision');

    // Same decisions, with the same reasons, as the pure planner.
    const s = ts.admin.dataDir.settings;
    for (const [machineId, name] of [[a.m.machineId, 'accueil'], [b.m.machineId, 'cabinet']] as const) {
      const mine = rowsBefore.filter((r) => r.machine_id === machineId).map((r) => ({ id: r.id, time: r.time, machineId: r.machine_id }));
      const core = planRetention(mine, DEFAULT_RETENTION, { now: ts.clock.now(), timeZone: s.retentionTimeZone, protectDays: s.protectDays });
      const server = plan.decisions.filter((d) => d.machineName === name);
      assert.deepEqual(
        server.map(({ machineName: _m, ...d }) => d),
        core.decisions.map((d) => ({ ...d })),
      );
    }

    // Independently of the planner: the default keeps the newest snapshot of each day, so what
    // goes is exactly A's morning snapshots at least 7 days old (B has one a day).
    const protectedAfter = ts.clock.now().getTime() - s.protectDays * DAY;
    const removed = sorted(plan.decisions.filter((d) => d.action === 'remove').map((d) => d.id));
    assert.deepEqual(removed, sorted(aMorning.filter((x) => Date.parse(x.time) <= protectedAfter).map((x) => x.id)));
    assert.ok(removed.length > 0 && removed.length < aMorning.length, `a meaningful plan: ${removed.length} of ${aMorning.length} mornings`);
    for (const d of plan.decisions) {
      if (Date.parse(d.time) > protectedAfter) {
        assert.equal(d.action, 'keep', `${d.id} is inside the protection window`);
        assert.ok(d.action === 'keep' && d.reasons.some((r) => r.rule === 'protected' && r.text === `protected (younger than ${s.protectDays} days)`));
      }
    }

    assert.deepEqual(await rowsOf(ts, customerId), rowsBefore, 'the dry run changes no snapshot');
    assert.equal(await lastSeq(ts), seq, 'the dry run writes nothing to the audit trail');
  });

  it('the job moves to the bin exactly what the plan removes, nothing inside the protection window, and audits it', async () => {
    const seq = await lastSeq(ts);
    const plan = await adminRetentionPlan(ts.admin, CUSTOMER);
    const planned = sorted(plan.decisions.filter((d) => d.action === 'remove').map((d) => d.id));
    const expected = sorted(expectedRemovals(await rowsOf(ts, customerId), () => DEFAULT_RETENTION, ts));
    assert.deepEqual(planned, expected);

    const r = await runRetention(ts);
    binnedAt = ts.clock.now().getTime();
    assert.equal(r.job, 'retention');
    assert.equal(r.counts.failed, 0, JSON.stringify(r.items));
    assert.equal(r.counts.customers, 2, 'both customers, the one without machines too');
    assert.equal(r.counts.binned, planned.length);
    assert.equal(r.counts.kept, all.length - planned.length);
    assert.equal(r.counts.purged, 0);
    assert.deepEqual(sorted(r.items.filter((i) => i.outcome === 'changed').map((i) => i.id)), planned);
    assert.ok(!r.items.some((i) => i.outcome === 'failed'));

    const rows = await rowsOf(ts, customerId);
    binned = sorted(rows.filter((x) => x.deleted_at !== null).map((x) => x.id));
    assert.deepEqual(binned, planned);
    const protectedAfter = binnedAt - ts.admin.dataDir.settings.protectDays * DAY;
    for (const x of rows.filter((y) => y.deleted_at !== null)) {
      assert.ok(Date.parse(x.time) <= protectedAfter, `${x.id} of ${x.time} was inside the protection window`);
      assert.equal(x.deleted_at, new Date(binnedAt).toISOString());
      assert.equal(x.deleted_by, 'retention');
      assert.match(x.delete_reason ?? '', /retention policy/);
    }

    const audits = await auditSince(ts, seq, 'snapshot.bin');
    assert.equal(audits.length, 1, 'one audit entry for the customer');
    assert.equal(audits[0]!.org_id, customerId);
    assert.equal(audits[0]!.actor_type, 'system');
    assert.equal(audits[0]!.details?.count, planned.length);
    assert.deepEqual(sorted((audits[0]!.details?.snapshots as { id: string }[]).map((x) => x.id)), planned);
  });

  it('binned snapshots vanish from the agent (GET /snapshots, GET /snapshots/:id → 404); their rows and refs objects remain', async () => {
    assert.ok(binned.length > 0);
    const live = sorted(all.filter((id) => !binned.includes(id)));
    assert.deepEqual(await agentIds(a.m), live);
    assert.deepEqual(await agentIds(c, '?machine=accueil'), sorted(live.filter((id) => !bSnaps.some((x) => x.id === id))));
    assert.deepEqual(await agentIds(c, '?machine=secretariat'), [], 'the machine without snapshots lists nothing');
    for (const id of binned) assertError(await a.m.request('GET', `/snapshots/${id}`), 404, 'NOT_FOUND');
    const keep = live[0]!;
    assert.equal((await a.m.request('GET', `/snapshots/${keep}`)).status, 200, 'a live one is still there');

    const rows = await rowsOf(ts, customerId);
    for (const id of binned) {
      assert.ok(rows.some((x) => x.id === id && x.deleted_at !== null), `row of ${id} kept in the bin`);
      assert.ok(await refsExist(ts, customerId, id), `refs object of ${id} kept`);
    }
  });

  it('a binned snapshot is invisible to agents through GET /snapshots/:id/refs too', async () => {
    const id = binned[0]!;
    const res = await a.m.request('GET', `/snapshots/${id}/refs`);
    assert.equal(res.status, 404, `GET /snapshots/${id}/refs of a snapshot in the recycle bin answered ${res.status} (${res.body.length} bytes)`);
  });

  it('the job is idempotent: a second run bins and purges nothing and audits nothing', async () => {
    const seq = await lastSeq(ts);
    const rowsBefore = await rowsOf(ts, customerId);
    const r = await runRetention(ts);
    assert.deepEqual([r.counts.binned, r.counts.purged, r.counts.failed], [0, 0, 0]);
    assert.deepEqual(r.items, []);
    assert.deepEqual(await rowsOf(ts, customerId), rowsBefore);
    assert.equal((await auditSince(ts, seq, 'snapshot.bin')).length + (await auditSince(ts, seq, 'snapshot.purge')).length, 0);
  });

  it('agents have no route that deletes: DELETE and the like are 404/405 and change nothing', async () => {
    const rowsBefore = await rowsOf(ts, customerId);
    const live = all.filter((id) => !binned.includes(id));
    const target = live[live.length - 1]!;
    const attempts: [string, string][] = [
      ['DELETE', `/snapshots/${target}`],
      ['DELETE', `/snapshots/${binned[0]}`],
      ['DELETE', '/snapshots'],
      ['DELETE', `/snapshots/${target}/refs`],
      ['POST', `/snapshots/${target}/delete`],
      ['POST', `/snapshots/${target}/forget`],
      ['PUT', `/snapshots/${target}`],
    ];
    for (const [method, p] of attempts) {
      const res = await a.m.request(method, p);
      assert.ok(res.status === 404 || res.status === 405, `${method} ${p} answered ${res.status}: ${res.body.toString().slice(0, 200)}`);
    }
    assert.deepEqual(await rowsOf(ts, customerId), rowsBefore);
    assert.deepEqual(await agentIds(a.m), sorted(live));
  });

  it('adminSnapshotDelete refuses a snapshot younger than protectDays (CONFLICT) and accepts an older one (audited snapshot.bin)', async () => {
    const seq = await lastSeq(ts);
    const now = ts.clock.now().getTime();
    const protectDays = ts.admin.dataDir.settings.protectDays;
    const young = bSnaps.filter((x) => Date.parse(x.time) > now - protectDays * DAY).at(-1)!;
    const old = bSnaps.find((x) => Date.parse(x.time) < now - protectDays * DAY)!;
    assert.ok(young && old);

    const rowsBefore = await rowsOf(ts, customerId);
    await assert.rejects(adminSnapshotDelete(ts.admin, CUSTOMER, young.id.slice(0, 8)), (err) => {
      assert.ok(isApiError(err, 'CONFLICT'), String(err));
      assert.equal(err.reason, 'snapshotProtected');
      assert.equal(err.status, 409);
      return true;
    });
    await assert.rejects(adminSnapshotDelete(ts.admin, CUSTOMER, binned[0]!), (err) => isApiError(err, 'NOT_FOUND') && err.reason === 'snapshotNotFound', 'already in the bin');
    await assert.rejects(adminSnapshotDelete(ts.admin, CUSTOMER, 'zz'), (err) => isApiError(err, 'BAD_REQUEST'));
    await assert.rejects(adminSnapshotDelete(ts.admin, 'Cabinet Inconnu', old.id), (err) => isApiError(err, 'NOT_FOUND') && err.reason === 'customerNotFound');
    assert.deepEqual(await rowsOf(ts, customerId), rowsBefore, 'refusals change nothing');
    assert.equal((await auditSince(ts, seq, 'snapshot.bin')).length, 0);

    assert.equal(await adminSnapshotDelete(ts.admin, CUSTOMER, old.id.slice(0, 8)), old.id);
    const row = (await rowsOf(ts, customerId)).find((x) => x.id === old.id)!;
    assert.equal(row.deleted_at, ts.clock.now().toISOString());
    assert.equal(row.deleted_by, ts.admin.actor);
    const audits = await auditSince(ts, seq, 'snapshot.bin');
    assert.equal(audits.length, 1);
    assert.deepEqual([audits[0]!.actor_type, audits[0]!.org_id, audits[0]!.target], ['cli', customerId, `snapshot:${old.id}`]);
    assertError(await a.m.request('GET', `/snapshots/${old.id}`), 404, 'NOT_FOUND');
    assert.ok(!(await agentIds(a.m)).includes(old.id));

    const bin = await adminBinList(ts.admin, CUSTOMER);
    assert.deepEqual(sorted(bin.map((e) => e.id)), sorted([...binned, old.id]));
    const entry = bin.find((e) => e.id === old.id)!;
    assert.equal(entry.machineName, 'cabinet');
    assert.equal(entry.purgeAt, new Date(ts.clock.now().getTime() + ts.admin.dataDir.settings.recycleBinDays * DAY).toISOString());
  });

  it('adminBinRestore brings a snapshot back (visible to the agent again, audited); only what is in the bin can be restored', async () => {
    const seq = await lastSeq(ts);
    const old = bSnaps[0]!;
    assert.equal(await adminBinRestore(ts.admin, CUSTOMER, old.id.slice(0, 8)), old.id);
    const res = await a.m.request('GET', `/snapshots/${old.id}`);
    assert.equal(res.status, 200, res.body.toString());
    assert.ok((await agentIds(a.m)).includes(old.id));
    const row = (await rowsOf(ts, customerId)).find((x) => x.id === old.id)!;
    assert.deepEqual([row.deleted_at, row.deleted_by, row.delete_reason], [null, null, null]);
    const audits = await auditSince(ts, seq, 'snapshot.bin.restore');
    assert.deepEqual(audits.map((x) => [x.org_id, x.target]), [[customerId, `snapshot:${old.id}`]]);

    await assert.rejects(adminBinRestore(ts.admin, CUSTOMER, old.id), (err) => isApiError(err, 'NOT_FOUND') && err.reason === 'snapshotNotInBin', 'a live snapshot is not in the bin');
    // One that retention binned comes back too.
    const fromRetention = binned[0]!;
    assert.equal(await adminBinRestore(ts.admin, CUSTOMER, fromRetention), fromRetention);
    assert.equal((await a.m.request('GET', `/snapshots/${fromRetention}`)).status, 200);
  });

  it('after recycleBinDays the job empties the bin (row and refs object gone, audited snapshot.purge); restored snapshots are never purged', async () => {
    const binDays = ts.admin.dataDir.settings.recycleBinDays;
    const restored = [bSnaps[0]!.id, binned[0]!];
    const toPurge = binned.filter((id) => !restored.includes(id));
    assert.ok(toPurge.length > 0);

    clockTo(ts, binnedAt + binDays * DAY - MINUTE);
    const early = await runRetention(ts);
    assert.equal(early.counts.failed, 0, JSON.stringify(early.items));
    assert.equal(early.counts.purged, 0, 'not before recycleBinDays');
    const rows = await rowsOf(ts, customerId);
    for (const id of toPurge) assert.ok(rows.some((x) => x.id === id), `${id} still in the bin`);

    const seq = await lastSeq(ts);
    clockTo(ts, binnedAt + binDays * DAY + MINUTE);
    const r = await runRetention(ts);
    assert.equal(r.counts.failed, 0, JSON.stringify(r.items));
    assert.equal(r.counts.purged, toPurge.length);
    const gone = r.items.filter((i) => /left the recycle bin/.test(i.detail)).map((i) => i.id);
    assert.deepEqual(sorted(gone), sorted(toPurge));
    const after = await rowsOf(ts, customerId);
    for (const id of toPurge) {
      assert.ok(!after.some((x) => x.id === id), `row of ${id} purged`);
      assert.equal(await refsExist(ts, customerId, id), false, `refs object of ${id} deleted`);
    }
    for (const id of restored) {
      assert.ok(after.some((x) => x.id === id), `restored snapshot ${id} never purged`);
      assert.ok(await refsExist(ts, customerId, id), `refs object of restored ${id} kept`);
    }
    const audits = await auditSince(ts, seq, 'snapshot.purge');
    assert.equal(audits.length, 1);
    assert.equal(audits[0]!.actor_type, 'system');
    assert.equal(audits[0]!.details?.count, toPurge.length);
    assert.deepEqual(sorted((audits[0]!.details?.snapshots as { id: string; customerId: string }[]).map((x) => x.id)), sorted(toPurge));
    // The bin's other entries (binned at the previous run) are not due yet.
    const bin = await adminBinList(ts.admin, CUSTOMER);
    for (const e of bin) assert.ok(Date.parse(e.purgeAt) > ts.clock.now().getTime(), `${e.id} is due at ${e.purgeAt}`);
    // Idempotent here too.
    const again = await runRetention(ts);
    assert.deepEqual([again.counts.binned, again.counts.purged, again.counts.failed], [0, 0, 0]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('per-customer and per-machine retention policies', () => {
  const CUSTOMER = 'Cabinet Politique';
  const OTHER = 'Cabinet Défaut';
  let ts: TestServer;
  let customerId: string;
  let otherId: string;
  let follower: Backups; // follows the customer's policy
  let own: Backups; // has its own policy
  let dflt: Backups; // another customer, default policy
  const byMachine = new Map<string, { id: string; time: string }[]>();

  before(async () => {
    ts = await testServer();
    clockTo(ts, '2026-06-01T08:00:00.000Z');
    customerId = (await adminCreateCustomer(ts.admin, CUSTOMER)).id;
    otherId = (await adminCreateCustomer(ts.admin, OTHER)).id;
    follower = new Backups(ts, await enrollMachine(ts, CUSTOMER, 'p-client'));
    own = new Backups(ts, await enrollMachine(ts, CUSTOMER, 'p-propre'));
    await enrollMachine(ts, CUSTOMER, 'p-vide');
    dflt = new Backups(ts, await enrollMachine(ts, OTHER, 'd-un'));
    const start = ts.clock.now().getTime();
    for (let d = 0; d < 15; d++) {
      for (const [i, m] of [follower, own, dflt].entries()) {
        clockTo(ts, start + d * DAY + i * 10 * MINUTE);
        const s = await m.snapshot();
        byMachine.set(m.m.machineId, [...(byMachine.get(m.m.machineId) ?? []), s]);
      }
    }
    clockTo(ts, start + 15 * DAY);
  });
  after(() => ts.close());

  it('adminRetentionSet sets a customer policy and a machine policy, each audited (retention.set); show reports each source', async () => {
    const seq = await lastSeq(ts);
    const customerPolicy = parseRetentionPolicy({ keepLast: 2 });
    const machinePolicy = parseRetentionPolicy({ daily: 10 });
    await adminRetentionSet(ts.admin, CUSTOMER, undefined, customerPolicy);
    await adminRetentionSet(ts.admin, CUSTOMER, 'p-propre', machinePolicy);
    await assert.rejects(adminRetentionSet(ts.admin, CUSTOMER, 'inconnue', machinePolicy), (err) => isApiError(err, 'NOT_FOUND') && err.reason === 'machineNotFound');
    await assert.rejects(adminRetentionSet(ts.admin, 'Cabinet Inconnu', undefined, machinePolicy), (err) => isApiError(err, 'NOT_FOUND') && err.reason === 'customerNotFound');

    const audits = await auditSince(ts, seq, 'retention.set');
    assert.deepEqual(
      audits.map((x) => [x.actor_type, x.org_id, x.target, x.details?.policy]),
      [
        ['cli', customerId, null, retentionPolicyArgs(customerPolicy).join(' ')],
        ['cli', customerId, 'machine:p-propre', retentionPolicyArgs(machinePolicy).join(' ')],
      ],
    );

    const show = await adminRetentionShow(ts.admin, CUSTOMER);
    assert.deepEqual(show, {
      customer: CUSTOMER,
      customerPolicy: retentionPolicyArgs(customerPolicy),
      machines: [
        { name: 'p-client', policy: retentionPolicyArgs(customerPolicy), source: 'customer' },
        { name: 'p-propre', policy: retentionPolicyArgs(machinePolicy), source: 'machine' },
        { name: 'p-vide', policy: retentionPolicyArgs(customerPolicy), source: 'customer' },
      ],
    });
    const other = await adminRetentionShow(ts.admin, OTHER);
    assert.deepEqual(other, { customer: OTHER, customerPolicy: null, machines: [{ name: 'd-un', policy: retentionPolicyArgs(DEFAULT_RETENTION), source: 'default' }] });
  });

  it('the job applies each machine its effective policy (machine, else customer, else default); the machine without snapshots is fine', async () => {
    const policyOf = (machineId: string): RetentionPolicy =>
      machineId === own.m.machineId ? { daily: 10 } : machineId === follower.m.machineId ? { keepLast: 2 } : DEFAULT_RETENTION;
    const expected = sorted([...expectedRemovals(await rowsOf(ts, customerId), policyOf, ts), ...expectedRemovals(await rowsOf(ts, otherId), policyOf, ts)]);
    // Independently: keepLast 2 removes every snapshot older than the protection window; daily 10
    // (one snapshot a day) the 5 oldest; the default (one a day, 15 days) nothing.
    const cut = ts.clock.now().getTime() - ts.admin.dataDir.settings.protectDays * DAY;
    const followerOld = byMachine.get(follower.m.machineId)!.filter((x) => Date.parse(x.time) <= cut).map((x) => x.id);
    const ownOld = byMachine.get(own.m.machineId)!.slice(0, 5).map((x) => x.id);
    assert.deepEqual(expected, sorted([...followerOld, ...ownOld]));
    assert.ok(followerOld.length > 0);

    const plan = await adminRetentionPlan(ts.admin, CUSTOMER);
    assert.deepEqual(
      plan.machines.map((m) => [m.machineName, m.policy.source]),
      [['p-client', 'customer'], ['p-propre', 'machine'], ['p-vide', 'customer']],
    );

    const r = await runRetention(ts);
    assert.equal(r.counts.failed, 0, JSON.stringify(r.items));
    assert.equal(r.counts.binned, expected.length);
    const binned = sorted([...(await rowsOf(ts, customerId)), ...(await rowsOf(ts, otherId))].filter((x) => x.deleted_at !== null).map((x) => x.id));
    assert.deepEqual(binned, expected);
    assert.ok(!(await rowsOf(ts, otherId)).some((x) => x.deleted_at !== null), 'the other customer keeps the default');
  });

  it('removing the machine policy (null) makes the machine follow its customer again (audited as default)', async () => {
    const seq = await lastSeq(ts);
    await adminRetentionSet(ts.admin, CUSTOMER, 'p-propre', null);
    const audits = await auditSince(ts, seq, 'retention.set');
    assert.deepEqual(audits.map((x) => [x.target, x.details?.policy]), [['machine:p-propre', 'default']]);
    const show = await adminRetentionShow(ts.admin, CUSTOMER);
    assert.deepEqual(show.machines.find((m) => m.name === 'p-propre'), { name: 'p-propre', policy: ['--keep-last', '2'], source: 'customer' });

    const cut = ts.clock.now().getTime() - ts.admin.dataDir.settings.protectDays * DAY;
    const wasLive = (await rowsOf(ts, customerId)).filter((x) => x.machine_id === own.m.machineId && x.deleted_at === null);
    const newlyRemovable = sorted(wasLive.filter((x) => Date.parse(x.time) <= cut).map((x) => x.id));
    assert.ok(newlyRemovable.length > 0);
    const r = await runRetention(ts);
    assert.equal(r.counts.failed, 0, JSON.stringify(r.items));
    assert.deepEqual(sorted(r.items.filter((i) => i.outcome === 'changed').map((i) => i.id)), newlyRemovable);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the protection window is the same for the plan, the job and snapshot delete across daylight-saving changes', () => {
  const CUSTOMER = 'Cabinet Heure';
  let ts: TestServer;
  let m: Backups;

  before(async () => {
    ts = await testServer();
    await adminCreateCustomer(ts.admin, CUSTOMER);
    m = new Backups(ts, await enrollMachine(ts, CUSTOMER, 'poste'));
    await adminRetentionSet(ts.admin, CUSTOMER, undefined, parseRetentionPolicy({ keepLast: 1 }));
  });
  after(() => ts.close());

  it('spring (29 March 2026): a snapshot the plan removes is binned by the job without a failure', async () => {
    // 7 local days before 2026-04-02 11:30 CEST is 2026-03-26 11:30 CET = 10:30Z, i.e. 167 hours.
    clockTo(ts, '2026-03-26T10:00:00.000Z');
    const older = await m.snapshot();
    clockTo(ts, '2026-03-26T10:01:00.000Z');
    await m.snapshot();
    clockTo(ts, '2026-04-02T09:30:00.000Z');
    const plan = await adminRetentionPlan(ts.admin, CUSTOMER);
    const d = plan.decisions.find((x) => x.id === older.id)!;
    const r = await runRetention(ts);
    const row = await ts.admin.db.selectFrom('snapshots').select('deleted_at').where('id', '=', older.id).executeTakeFirstOrThrow();
    assert.deepEqual(
      { plan: d.action, failed: r.items.filter((i) => i.outcome === 'failed').map((i) => i.detail), binned: row.deleted_at !== null },
      { plan: d.action, failed: [], binned: d.action === 'remove' },
      'the plan and the job disagree about the protection window',
    );
  });

  it('autumn (25 October 2026): snapshot delete refuses a snapshot the plan shows as protected', async () => {
    // 7 local days before 2026-10-29 11:00 CET is 2026-10-22 11:00 CEST = 09:00Z, i.e. 169 hours.
    clockTo(ts, '2026-10-22T09:30:00.000Z');
    const older = await m.snapshot();
    clockTo(ts, '2026-10-22T09:31:00.000Z');
    await m.snapshot();
    clockTo(ts, '2026-10-29T10:00:00.000Z');
    const plan = await adminRetentionPlan(ts.admin, CUSTOMER);
    const d = plan.decisions.find((x) => x.id === older.id)!;
    const shownProtected = d.action === 'keep' && d.reasons.some((x) => x.rule === 'protected');
    let refused = false;
    try {
      await adminSnapshotDelete(ts.admin, CUSTOMER, older.id);
    } catch (err) {
      refused = isApiError(err, 'CONFLICT');
    }
    assert.equal(refused, shownProtected, `retention plan shows the snapshot ${shownProtected ? '' : 'not '}protected, but snapshot delete ${refused ? 'refused' : 'accepted'} it`);
  });
});
