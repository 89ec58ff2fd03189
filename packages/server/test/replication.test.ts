// Over 400 lines: the whole second-site behaviour against two real servers, one scenario after another on shared state (join, pass, repair, delete, diverge, promote).
/**
 * The second site (docs/CONTINUITY.md), in process: two real servers over HTTPS on loopback,
 * each with its own data directory, database and store (the embedded default, or PostgreSQL
 * and S3 with COFFRE_TEST_BACKEND=postgres-s3), controllable clocks. A replica joins with a
 * one-time token and pulls; what it receives is checked (pack bytes, snapshot references,
 * the audit chain); deletions wait; writes go to the primary only; a promotion fences the
 * old primary.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { packKey } from '../src/object-keys.js';
import { acceptMassDeletion, createReplicationToken, joinPrimary, promoteSite, replicationStatus } from '../src/replication/admin.js';
import { CREDENTIAL_PURPOSE, replicatePass, type PassReport } from '../src/replication/pull.js';
import { VerifyJob } from '../src/jobs/verify.js';
import { ReplicateJob } from '../src/jobs/replicate.js';
import { getSiteState } from '../src/db/queries/replication.js';
import { customersAllowedOnSite } from '../src/db/queries/sites.js';
import { adminAuthoriseSite, adminCustomerSites, adminSiteSet, applyDueSiteChanges, isEuEea } from '../src/admin/sites.js';
import { adminUpdateOrg } from '../src/admin/index.js';
import { OPERATOR_ORG_NAME } from '../src/db/migrations/20261126T2000_control_plane.js';
import type { CustomerId } from '../src/types.js';
import { Browser, nextCode, person, type TestPerson } from './people.js';
import { PEER_CREDENTIAL_PURPOSE } from '../src/routes/replication/handler.js';
import { assertError, buildCustomer, buildPack, enrollMachine, jobContext, snapshotRequest, testKeys, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

const DAY = 86_400_000;

function pass(replica: TestServer): Promise<PassReport> {
  return replicatePass({ ...jobContext(replica), keys: replica.admin.keys, fingerprint: replica.server.fingerprint });
}

async function join(primary: TestServer, replica: TestServer): Promise<void> {
  const { token } = await createReplicationToken({ ...primary.admin });
  await joinPrimary(
    { ...replica.admin },
    { primaryUrl: primary.server.url, fingerprint: primary.server.fingerprint, token, name: 'replica', url: replica.server.url, selfFingerprint: replica.server.fingerprint },
  );
}

async function upload(m: TestMachine, pack: TestPack): Promise<void> {
  assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
}

describe('a replica site', () => {
  let primary: TestServer;
  let replica: TestServer;
  let m: TestMachine;
  let customer: { id: string; name: string };
  const keys = testKeys();
  const packs: TestPack[] = [];
  let snapshotId = '';

  before(async () => {
    primary = await testServer();
    replica = await testServer();
    customer = await buildCustomer(primary, 'Cabinet Réplique');
    m = await enrollMachine(primary, customer.name, 'accueil');
    assert.equal((await m.request('POST', '/repo/init', { json: { config: { v: 1, chunker: { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 }, compression: 'zstd' }, keySlots: [{ id: 'k1', kind: 'test' }] } })).status, 200);
    for (let i = 0; i < 3; i++) {
      const p = buildPack(keys);
      packs.push(p);
      await upload(m, p);
    }
    const req = snapshotRequest(keys, m.machineId, packs.flatMap((p) => p.chunkIds));
    snapshotId = req.manifest.id;
    assert.equal((await m.request('POST', '/snapshots', { json: req })).status, 201);
    alice = await person(primary, 'customer-admin', customer.name);
  });
  after(async () => {
    await primary?.close();
    await replica?.close();
  });
  let alice: TestPerson;

  it('joins with a one-time token that cannot be used twice', async () => {
    await join(primary, replica);
    const { token } = await createReplicationToken({ ...primary.admin });
    const again = { primaryUrl: primary.server.url, fingerprint: primary.server.fingerprint, token, name: 'replica', url: replica.server.url, selfFingerprint: replica.server.fingerprint };
    await joinPrimary({ ...replica.admin }, again); // first use: fine (re-joins the same primary, the old credential is revoked)
    await assert.rejects(joinPrimary({ ...replica.admin }, again), /replication token is invalid, expired or already used/);
    assert.equal((await getSiteState(replica.admin.db))?.role, 'replica');
  });

  it('refuses a primary whose certificate is not the pinned one', async () => {
    const { token } = await createReplicationToken({ ...primary.admin });
    await assert.rejects(
      joinPrimary({ ...replica.admin }, { primaryUrl: primary.server.url, fingerprint: 'AA:'.repeat(31) + 'AA', token, name: 'replica', url: null, selfFingerprint: replica.server.fingerprint }),
      /not the pinned/,
    );
  });

  it('pulls rows, byte-identical packs and the snapshot, and serves the machine with its own credential', async () => {
    const r = await pass(replica);
    assert.equal(r.complete, true, r.problems.join('; '));
    assert.equal(r.packs.fetched, 3);
    assert.equal(r.snapshots.added, 1);
    assert.ok(r.audit.copied > 0);
    for (const p of packs) {
      const key = packKey(customer.id as CustomerId, p.id);
      assert.deepEqual(await replica.admin.store.get(key), await primary.admin.store.get(key));
    }
    // The machine's credential works on the replica (its hash was copied), for reads.
    const list = await replica.request('GET', '/snapshots', { token: m.credential });
    assert.equal(list.status, 200, list.body.toString());
    assert.deepEqual(list.json<{ snapshots: { id: string }[] }>().snapshots.map((s) => s.id), [snapshotId]);
    const refs = await replica.request('GET', `/snapshots/${snapshotId}/refs`, { token: m.credential });
    assert.equal(refs.status, 200);
    const ranged = await replica.request('GET', `/packs/${packs[0]!.id}`, { token: m.credential });
    assert.deepEqual(ranged.body, packs[0]!.data);
    // Writes go to the primary only.
    assertError(await replica.request('PUT', `/packs/${buildPack(keys).id}`, { token: m.credential, body: buildPack(keys).data }), 409, 'SITE_READ_ONLY');
  });

  it('a second pass copies nothing again, and the primary knows how far the replica is', async () => {
    const r = await pass(replica);
    assert.equal(r.complete, true, r.problems.join('; '));
    assert.equal(r.packs.fetched, 0);
    assert.equal(r.packs.present, 3);
    assert.equal(r.snapshots.added, 0);
    const rs = await replicationStatus(replica.admin);
    assert.equal(rs.role, 'replica');
    assert.ok(rs.lagSeconds !== null && rs.lagSeconds < 60, `lag ${rs.lagSeconds}`);
    const ps = await replicationStatus(primary.admin);
    assert.equal(ps.role, 'primary');
    assert.deepEqual(ps.replicas.map((x) => x.site), ['replica']);
    assert.ok(ps.replicas[0]!.replicatedUpTo !== null);
  });

  it('does not take a machine’s word for a promotion: an epoch no site confirms demotes nothing', async () => {
    const p = buildPack(keys);
    const r = await primary.request('PUT', `/packs/${p.id}`, { token: m.credential, body: p.data, headers: { 'coffre-site-epoch': '999999' } });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal((await getSiteState(primary.admin.db))?.role, 'primary');
    packs.push({ ...p });
  });

  it('serves a replica only the customers that may live on its site', async () => {
    const state = await getSiteState(replica.admin.db);
    const credential = replica.admin.keys.open(state!.credential_sealed!, CREDENTIAL_PURPOSE).toString('utf8');
    const asReplica = (path: string) => primary.request('GET', path, { token: credential });
    assert.equal((await asReplica(`/replication/customers/${customer.id}/packs`)).status, 200);
    await primary.admin.db.updateTable('sites').set({ country: 'US' }).where('name', '=', 'replica').execute();
    try {
      assertError(await asReplica(`/replication/customers/${customer.id}/packs`), 404, 'NOT_FOUND');
      assertError(await asReplica(`/replication/customers/${customer.id}/packs/${packs[0]!.id}`), 404, 'NOT_FOUND');
      const state2 = (await asReplica('/replication/state')).json<{ customers: string[] }>();
      assert.deepEqual(state2.customers, []);
      const machines = (await asReplica('/replication/rows/machines')).json<{ rows: unknown[] }>();
      assert.deepEqual(machines.rows, [], 'nor its rows');
      // A machine credential opens none of it.
      assertError(await primary.request('GET', `/replication/customers/${customer.id}/packs`, { token: m.credential }), 401, 'UNAUTHORIZED');
    } finally {
      await primary.admin.db.updateTable('sites').set({ country: 'FR' }).where('name', '=', 'replica').execute();
    }
  });

  it('holds nothing when most of what it holds vanishes at once, until an operator confirms', async () => {
    const jobs = Array.from({ length: 12 }, (_, i) => ({ name: `job-${i}`, schedule: '0 22 * * *', timezone: 'Europe/Paris' }));
    assert.equal((await m.request('PUT', '/jobs', { json: { jobs } })).status, 200);
    assert.equal((await pass(replica)).complete, true);
    assert.equal((await m.request('PUT', '/jobs', { json: { jobs: [] } })).status, 200);
    const wiped = await pass(replica);
    assert.equal(wiped.complete, false);
    assert.match(wiped.problems.join('\n'), /12 of the 12 machine_jobs held here vanished from the primary at once/);
    assert.equal((await replicationStatus(replica.admin)).heldDeletions, 0);
    await acceptMassDeletion({ ...replica.admin });
    const accepted = await pass(replica);
    assert.equal(accepted.complete, true, accepted.problems.join('; '));
    assert.equal((await replicationStatus(replica.admin)).heldDeletions, 12, 'held for the usual delay, not deleted');
  });

  it('a recovery code used on the replica stays used there after the next pass', async () => {
    const code = await replica.admin.db.selectFrom('recovery_codes').select(['user_id', 'code_hash']).where('used_at', 'is', null).limit(1).executeTakeFirstOrThrow();
    const when = replica.clock.now().toISOString();
    await replica.admin.db.updateTable('recovery_codes').set({ used_at: when }).where('user_id', '=', code.user_id).where('code_hash', '=', code.code_hash).execute();
    await pass(replica);
    const after = await replica.admin.db.selectFrom('recovery_codes').select('used_at').where('user_id', '=', code.user_id).where('code_hash', '=', code.code_hash).executeTakeFirstOrThrow();
    assert.equal(after.used_at, when);
  });

  it('refuses a pack whose bytes do not match, and keeps the snapshot that needs it out until its data are here', async () => {
    const p = buildPack(keys);
    await upload(m, p);
    const req = snapshotRequest(keys, m.machineId, p.chunkIds);
    assert.equal((await m.request('POST', '/snapshots', { json: req })).status, 201);
    const key = packKey(customer.id as CustomerId, p.id);
    const good = Buffer.from(await primary.admin.store.get(key));
    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 0x01;
    await primary.admin.store.put(key, bad); // the primary serves a damaged (or lying) copy
    const r = await pass(replica);
    assert.equal(r.complete, false);
    assert.equal(r.packs.failed, 1);
    assert.match(r.problems.join('\n'), new RegExp(`pack ${p.id.slice(0, 12)}`));
    assert.equal(await replica.admin.store.stat(key), null, 'nothing of the bad copy is kept');
    assert.equal(r.snapshots.waiting, 1);
    assert.equal((await replica.admin.db.selectFrom('snapshots').select('id').where('id', '=', req.manifest.id).execute()).length, 0, 'no snapshot without its data');
    await primary.admin.store.put(key, good);
    const again = await pass(replica);
    assert.equal(again.complete, true, again.problems.join('; '));
    assert.equal(again.snapshots.added, 1);
    packs.push(p);
  });

  it('the primary alerts the operator when a customer’s replica falls behind, and closes the alert once it caught up', async () => {
    await adminUpdateOrg(primary.admin, OPERATOR_ORG_NAME, { alert_email: 'exploitation@coffre.example' });
    const lagAlerts = () => primary.admin.db.selectFrom('alerts').selectAll().where('kind', '=', 'replica_lag').execute();
    const quiet = await new ReplicateJob().run(jobContext(primary));
    assert.equal(quiet.items.filter((i) => i.outcome === 'failed').length, 0, JSON.stringify(quiet.items));
    assert.equal((await lagAlerts()).length, 0);
    primary.clock.advance(7 * 3_600_000);
    const late = await new ReplicateJob().run(jobContext(primary));
    assert.ok(late.items.some((i) => i.outcome === 'failed' && /more than 6 h behind/.test(i.detail)), JSON.stringify(late.items));
    const open = await lagAlerts();
    assert.equal(open.length, 1);
    assert.equal(open[0]!.subject, 'site:replica');
    const mail = await primary.admin.db.selectFrom('outbox').selectAll().where('kind', '=', 'alert_opened').where('to_address', '=', 'exploitation@coffre.example').execute();
    assert.equal(mail.length, 1);
    assert.match(mail[0]!.subject, /copie de secours en retard/);
    // The replica catches up (its pass reports the primary's time), and the alert closes.
    assert.equal((await pass(replica)).complete, true);
    const back = await new ReplicateJob().run(jobContext(primary));
    assert.ok(back.items.some((i) => /caught up/.test(i.detail)), JSON.stringify(back.items));
    assert.equal((await lagAlerts()).filter((a) => a.closed_at === null).length, 0);
  });

  it('repairs a pack damaged on the replica from the primary, checked on receipt', async () => {
    const key = packKey(customer.id as CustomerId, packs[1]!.id);
    const bytes = Buffer.from(await replica.admin.store.get(key));
    bytes[bytes.length - 10]! ^= 0x01;
    await replica.admin.store.put(key, bytes);
    const r = await new VerifyJob().run(jobContext(replica, { verifyPeriodDays: 1 }));
    assert.ok(r.items.some((i) => i.outcome === 'changed' && /repaired from site primary's copy/.test(i.detail)), JSON.stringify(r.items));
    assert.deepEqual(await replica.admin.store.get(key), await primary.admin.store.get(key));
  });

  it('repairs a pack damaged on the primary from the replica, with the credential the replica gave at its join', async () => {
    const key = packKey(customer.id as CustomerId, packs[0]!.id);
    const bytes = Buffer.from(await primary.admin.store.get(key));
    bytes[100]! ^= 0x80;
    await primary.admin.store.put(key, bytes);
    const r = await new VerifyJob().run(jobContext(primary, { verifyPeriodDays: 1 }));
    assert.ok(r.items.some((i) => i.outcome === 'changed' && /repaired from site replica's copy/.test(i.detail)), JSON.stringify(r.items));
    assert.deepEqual(await primary.admin.store.get(key), packs[0]!.data);
    assert.equal((await primary.admin.db.selectFrom('alerts').select('id').where('kind', '=', 'verify_mismatch').execute()).length, 0, 'repaired before anyone had to be alerted');
    // The call-back credential opens the replica's replication routes, not its machine or people routes.
    const state = await getSiteState(replica.admin.db);
    assert.equal(state?.role, 'replica');
  });

  it('holds what the primary deleted until the delay has passed', async () => {
    const gone = packs[2]!;
    // As GC would: the pack leaves the primary's index and store.
    const seq = (await primary.admin.db.selectFrom('packs').select('seq').where('id', '=', gone.id).executeTakeFirstOrThrow()).seq;
    await primary.admin.db.deleteFrom('chunks').where('pack_seq', '=', seq).execute();
    await primary.admin.db.deleteFrom('packs').where('id', '=', gone.id).execute();
    await primary.admin.store.delete(packKey(customer.id as CustomerId, gone.id));
    const key = packKey(customer.id as CustomerId, gone.id);
    const first = await pass(replica);
    assert.equal(first.holds.deleted, 0);
    assert.ok(await replica.admin.store.stat(key), 'the replica still holds the pack the primary deleted');
    replica.clock.advance(13 * DAY);
    assert.equal((await pass(replica)).holds.deleted, 0);
    assert.ok(await replica.admin.store.stat(key));
    replica.clock.advance(2 * DAY);
    const late = await pass(replica);
    assert.ok(late.holds.deleted >= 1);
    assert.equal(await replica.admin.store.stat(key), null);
  });

  it("detects a rewritten or truncated audit chain on the primary and keeps its own copy", async () => {
    const copied = Number((await replica.admin.db.selectFrom('replicated_audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const last = await replica.admin.db.selectFrom('replicated_audit').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    // The attacker rewrites the entry the replica holds last (and whatever follows).
    await primary.admin.db.updateTable('audit_log').set({ actor_label: 'nobody', hash: 'f'.repeat(64) }).where('seq', '=', last.seq).execute();
    const r = await pass(replica);
    assert.match(r.audit.diverged ?? '', /changed on the primary/);
    assert.equal(r.complete, false);
    const kept = await replica.admin.db.selectFrom('replicated_audit').selectAll().where('seq', '=', last.seq).executeTakeFirstOrThrow();
    assert.equal(kept.hash, last.hash);
    assert.equal(Number((await replica.admin.db.selectFrom('replicated_audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n), copied);
    const status = await replicationStatus(replica.admin);
    assert.match(status.auditDiverged?.reason ?? '', /changed on the primary/);
    // Recorded in the replica's own trail, and the job fails so that the operator hears of it.
    const own = await replica.admin.db.selectFrom('audit_log').select('action').where('action', '=', 'replication.audit_diverged').execute();
    assert.equal(own.length, 1);
    const job = await new ReplicateJob().run(jobContext(replica));
    assert.ok(job.items.some((i) => i.outcome === 'failed' && /audit chain/.test(i.detail)));
    // The operator is emailed from the replica (the primary may be the one that cannot be trusted).
    const mail = await replica.admin.db.selectFrom('outbox').selectAll().where('kind', '=', 'audit_diverged').execute();
    assert.equal(mail.length, 1);
    assert.equal(mail[0]!.to_address, 'exploitation@coffre.example');
    assert.match(mail[0]!.subject, /journal d'audit du site principal modifié/);
  });

  it('promotion fences the old primary: a higher epoch from an agent demotes it and it refuses writes', async () => {
    const promoted = await promoteSite({ ...replica.admin });
    assert.equal(promoted.epoch, 2);
    // Backups are accepted on the promoted site.
    const p = buildPack(keys);
    assert.equal((await replica.request('PUT', `/packs/${p.id}`, { token: m.credential, body: p.data })).status, 200);
    // An agent that knows epoch 2 reaches the old primary: refused, and the old primary is demoted for good.
    const q = buildPack(keys);
    assertError(await primary.request('PUT', `/packs/${q.id}`, { token: m.credential, body: q.data, headers: { 'coffre-site-epoch': '2' } }), 409, 'SITE_DEMOTED');
    assertError(await primary.request('PUT', `/packs/${q.id}`, { token: m.credential, body: q.data }), 409, 'SITE_DEMOTED');
    assert.equal((await getSiteState(primary.admin.db))?.role, 'demoted');
    // The credential the old primary had on the promoted site (to call it back) is revoked.
    const row = await primary.admin.db.selectFrom('replication_credentials').select('peer_credential_sealed').where('site_name', '=', 'replica').where('revoked_at', 'is', null).executeTakeFirstOrThrow();
    const callBack = primary.admin.keys.open(row.peer_credential_sealed!, PEER_CREDENTIAL_PURPOSE).toString('utf8');
    assertError(await replica.request('GET', '/replication/state', { token: callBack }), 401, 'UNAUTHORIZED');
    // Reads still work there.
    assert.equal((await primary.request('GET', '/snapshots', { token: m.credential })).status, 200);
  });

  it('after the promotion, people sign in to the new primary with their password and second factor', async () => {
    const b = new Browser(replica);
    const login = await b.request('POST', '/auth/login', { json: { email: alice.email, password: alice.password } });
    assert.equal(login.status, 200, login.body.toString());
    const proof = await b.request('POST', '/auth/second-factor/totp', { json: { code: nextCode(replica, alice) } });
    assert.equal(proof.status, 200, proof.body.toString());
    const session = await b.request('GET', '/session');
    assert.equal(session.json<{ stage: string }>().stage, 'full');
    // A wrong code is still refused there.
    const other = new Browser(replica);
    await other.request('POST', '/auth/login', { json: { email: alice.email, password: alice.password } });
    assertError(await other.request('POST', '/auth/second-factor/totp', { json: { code: '000000' } }), 401, 'UNAUTHORIZED');
  });
});

describe('where customers’ data live', () => {
  let ts: TestServer;
  let customer: { id: string; name: string };
  const CUSTOMER_EMAIL = 'cabinet@lieu.example';

  before(async () => {
    ts = await testServer();
    customer = await buildCustomer(ts, 'Cabinet Lieu');
    await adminUpdateOrg(ts.admin, customer.name, { alert_email: CUSTOMER_EMAIL });
    await adminSiteSet(ts.admin, 'paris-2', { country: 'FR', provider: 'Hébergeur Deux', hdsCertified: true });
    await adminSiteSet(ts.admin, 'montreal', { country: 'CA', provider: 'Far Away Hosting', hdsCertified: false });
  });
  after(async () => ts?.close());

  const outbox = () => ts.admin.db.selectFrom('outbox').selectAll().where('kind', '=', 'location_change').orderBy('created_at').execute();
  const actions = async (action: string) => (await ts.admin.db.selectFrom('audit_log').select('details_json').where('action', '=', action).execute()).map((r) => JSON.parse(r.details_json ?? '{}') as Record<string, unknown>);

  it('refuses a site outside the EU/EEA for a customer until its authorisation is recorded', async () => {
    await assert.rejects(adminCustomerSites(ts.admin, customer.name, 'primary', 'montreal'), (e: Error & { code?: string }) => e.code === 'SITE_NOT_ALLOWED');
    assert.equal((await outbox()).length, 0, 'nothing announced for a refused change');
    // Not offered to that site's replica either.
    assert.equal((await customersAllowedOnSite(ts.admin.db, 'montreal', isEuEea('CA'))).has(customer.id), false);
    await adminAuthoriseSite(ts.admin, customer.name, 'montreal', { by: 'Dr Martin, gérant', on: '2026-12-01T00:00:00.000Z', document: 'autorisation-signee-2026-12-01.pdf' });
    const recorded = await actions('customer.site_authorised');
    assert.deepEqual(recorded.map((d) => d.document), ['autorisation-signee-2026-12-01.pdf']);
    assert.equal((await customersAllowedOnSite(ts.admin.db, 'montreal', false)).has(customer.id), true);
  });

  it('a change of a customer’s sites is emailed to the customer (in French) before it applies, and both are audited', async () => {
    const r = await adminCustomerSites(ts.admin, customer.name, 'primary', 'paris-2');
    assert.equal(r.announced, 1);
    const mails = await outbox();
    assert.equal(mails.length, 1);
    assert.equal(mails[0]!.to_address, CUSTOMER_EMAIL);
    assert.match(mails[0]!.subject, /Changement du lieu d'hébergement/);
    assert.match(mails[0]!.text_body, /Hébergeur Deux, FR \(hébergeur certifié HDS\)/);
    const sites = await ts.admin.db.selectFrom('customer_sites').selectAll().where('customer_id', '=', customer.id).executeTakeFirstOrThrow();
    assert.deepEqual([sites.primary_site, sites.replica_site], ['primary', 'paris-2']);
    const announced = await ts.admin.db.selectFrom('audit_log').select(['seq', 'action']).where('action', 'in', ['customer.sites_change_announced', 'site.change_applied']).orderBy('seq').execute();
    assert.deepEqual(announced.map((a) => a.action), ['customer.sites_change_announced', 'site.change_applied'], 'announced (and emailed) before applied');
  });

  it('a change of a site’s hosting provider is announced now and applies on its date', async () => {
    const effective = new Date(ts.clock.now().getTime() + 30 * DAY).toISOString();
    const r = await adminSiteSet(ts.admin, 'paris-2', { provider: 'Nouvel Hébergeur', effectiveAt: effective });
    assert.equal(r.announced, 1);
    const mails = await outbox();
    assert.equal(mails.length, 2);
    assert.match(mails[1]!.text_body, /Hébergeur Deux.*→.*Nouvel Hébergeur/s);
    assert.equal((await ts.admin.db.selectFrom('sites').select('provider').where('name', '=', 'paris-2').executeTakeFirstOrThrow()).provider, 'Hébergeur Deux', 'not before its date');
    ts.clock.advance(31 * DAY);
    assert.equal(await applyDueSiteChanges(ts.admin), 1);
    assert.equal((await ts.admin.db.selectFrom('sites').select('provider').where('name', '=', 'paris-2').executeTakeFirstOrThrow()).provider, 'Nouvel Hébergeur');
    assert.equal(await applyDueSiteChanges(ts.admin), 0, 'applied once');
  });

  it('refuses moving a site that holds a customer’s data outside the EU/EEA without the customer’s authorisation', async () => {
    await assert.rejects(adminSiteSet(ts.admin, 'paris-2', { country: 'US' }), (e: Error & { code?: string }) => e.code === 'SITE_NOT_ALLOWED');
  });
});

describe('the primary’s audit chain, checked from the replica', () => {
  let primary: TestServer;
  let replica: TestServer;
  before(async () => {
    primary = await testServer();
    replica = await testServer();
    await buildCustomer(primary, 'Cabinet Chaîne');
    await join(primary, replica);
    assert.equal((await pass(replica)).complete, true);
  });
  after(async () => {
    await primary?.close();
    await replica?.close();
  });

  const held = async () => (await replica.admin.db.selectFrom('replicated_audit').select(['seq', 'hash']).orderBy('seq').execute()).map((r) => `${Number(r.seq)}:${r.hash}`);
  /** New entries on the primary (what any administrator action writes). */
  const more = async (n: number) => {
    for (let i = 0; i < n; i++) await buildCustomer(primary, `Cabinet Chaîne ${i}-${Math.random()}`);
  };
  /** After each case the operator has looked: the replica may check again. */
  const looked = () => replica.admin.db.updateTable('site_state').set({ audit_diverged_at: null, audit_diverged_reason: null }).execute();

  it('a forked chain (a new entry that does not follow the one held) is not copied', async () => {
    await more(2);
    const before = await held();
    const last = Number(before.at(-1)!.split(':')[0]);
    await primary.admin.db.updateTable('audit_log').set({ prev_hash: 'a'.repeat(64) }).where('seq', '=', last + 1).execute();
    const r = await pass(replica);
    assert.match(r.audit.diverged ?? '', /does not follow entry \d+ \(forked chain\)/);
    assert.deepEqual(await held(), before);
    await looked();
  });

  it('an altered entry (its content no longer matches its hash) is not copied', async () => {
    const before = await held();
    const last = Number(before.at(-1)!.split(':')[0]);
    // Undo the fork of the previous case, then alter the content of the next entry.
    const prev = await primary.admin.db.selectFrom('audit_log').select('hash').where('seq', '=', last).executeTakeFirstOrThrow();
    await primary.admin.db.updateTable('audit_log').set({ prev_hash: prev.hash }).where('seq', '=', last + 1).execute();
    await primary.admin.db.updateTable('audit_log').set({ actor_label: 'quelqu’un d’autre' }).where('seq', '=', last + 1).execute();
    const r = await pass(replica);
    assert.match(r.audit.diverged ?? '', /does not match its hash \(altered entry\)/);
    assert.deepEqual(await held(), before);
    await looked();
  });

  it('a truncated chain (the entry held last is gone from the primary) is detected', async () => {
    const before = await held();
    const last = Number(before.at(-1)!.split(':')[0]);
    await primary.admin.db.deleteFrom('audit_log').where('seq', '>=', last).execute();
    const r = await pass(replica);
    assert.match(r.audit.diverged ?? '', /missing from the primary \(truncated or rewritten chain\)/);
    assert.deepEqual(await held(), before, 'the replica keeps every entry it had');
  });
});
