import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EnrollResponse, MachineListResponse, RepoResponse } from '@coffre/core';
import { adminCreateEnrollToken, adminRevokeMachine } from '../src/admin/index.js';
import { assertError, buildCustomer, enrollMachine, testServer, type TestServer } from './kit.js';

const machineBody = (token: string, machineName = 'accueil') => ({ token, machineName, hostname: 'PC-ACCUEIL', os: 'win32 10.0.19045', agentVersion: '0.1.0' });

describe('enrollment and machine credentials', () => {
  let ts: TestServer;
  before(async () => {
    ts = await testServer();
  });
  after(() => ts.close());

  it('enrolls a machine with a valid token and the credential then authenticates', async () => {
    const customer = await buildCustomer(ts, 'Cabinet Dupont');
    const { token } = await adminCreateEnrollToken(ts.admin, customer.name);
    assert.match(token, /^cfe_[A-Za-z0-9_-]{43}$/);
    const res = await ts.request('POST', '/enroll', { json: machineBody(token) });
    assert.equal(res.status, 200, res.body.toString());
    const e = res.json<EnrollResponse>();
    assert.equal(e.customerId, customer.id);
    assert.equal(e.customerName, 'Cabinet Dupont');
    assert.equal(e.machineName, 'accueil');
    assert.match(e.credential, /^cfm_[A-Za-z0-9_-]{43}$/);

    const repo = await ts.request('GET', '/repo', { token: e.credential });
    assert.equal(repo.status, 200);
    assert.deepEqual(repo.json<RepoResponse>(), {
      customerId: customer.id,
      machineId: e.machineId,
      machineName: 'accueil',
      config: null,
      keySlots: [],
      keySlotsGeneration: 0,
      // The one site there is, where the machine reached it (agents keep the list for failover).
      sites: [{ name: 'primary', url: ts.server.url, fingerprint: ts.server.fingerprint }],
      site: { name: 'primary', role: 'primary', epoch: 1 },
    });

    // Only hashes are stored.
    const dump = JSON.stringify(await ts.admin.db.selectFrom('machines').selectAll().execute()) + JSON.stringify(await ts.admin.db.selectFrom('enroll_tokens').selectAll().execute());
    assert.ok(!dump.includes(e.credential.slice(4)) && !dump.includes(token.slice(4)), 'a secret was stored in clear');
  });

  it('refuses to reuse a token (401)', async () => {
    const customer = await buildCustomer(ts);
    const { token } = await adminCreateEnrollToken(ts.admin, customer.name);
    assert.equal((await ts.request('POST', '/enroll', { json: machineBody(token, 'one') })).status, 200);
    const again = await ts.request('POST', '/enroll', { json: machineBody(token, 'two') });
    const err = assertError(again, 401, 'UNAUTHORIZED');
    assert.match(err.message, /enrollment token/);
  });

  it('refuses an expired token with the same message as an unknown one', async () => {
    const customer = await buildCustomer(ts);
    const { token } = await adminCreateEnrollToken(ts.admin, customer.name, 1);
    ts.clock.advance(60 * 60_000 + 1);
    const expired = assertError(await ts.request('POST', '/enroll', { json: machineBody(token) }), 401, 'UNAUTHORIZED');
    const unknown = assertError(await ts.request('POST', '/enroll', { json: machineBody(`cfe_${'A'.repeat(43)}`) }), 401, 'UNAUTHORIZED');
    const malformed = assertError(await ts.request('POST', '/enroll', { json: machineBody('hello') }), 401, 'UNAUTHORIZED');
    assert.equal(expired.message, unknown.message);
    assert.equal(expired.message, malformed.message);
    assert.equal(expired.messageFr, unknown.messageFr);
  });

  it('tokens expire after 24 hours by default', async () => {
    const customer = await buildCustomer(ts);
    const issued = await adminCreateEnrollToken(ts.admin, customer.name);
    assert.equal(Date.parse(issued.expiresAt) - ts.clock.now().getTime(), 24 * 3_600_000);
  });

  it('answers 409 for a machine name already enrolled, and the token stays usable', async () => {
    const customer = await buildCustomer(ts);
    await enrollMachine(ts, customer.name, 'secretariat');
    const { token } = await adminCreateEnrollToken(ts.admin, customer.name);
    assertError(await ts.request('POST', '/enroll', { json: machineBody(token, 'secretariat') }), 409, 'CONFLICT');
    assert.equal((await ts.request('POST', '/enroll', { json: machineBody(token, 'secretariat-2') })).status, 200);
  });

  it('lets two customers use the same machine name', async () => {
    const a = await buildCustomer(ts);
    const b = await buildCustomer(ts);
    await enrollMachine(ts, a.name, 'poste-1');
    await enrollMachine(ts, b.name, 'poste-1');
  });

  it('validates the enrollment body (400)', async () => {
    const customer = await buildCustomer(ts);
    const { token } = await adminCreateEnrollToken(ts.admin, customer.name);
    assertError(await ts.request('POST', '/enroll', { json: { ...machineBody(token), machineName: '' } }), 400, 'BAD_REQUEST');
    assertError(await ts.request('POST', '/enroll', { json: { ...machineBody(token), machineName: 'a\nb' } }), 400, 'BAD_REQUEST');
    assertError(await ts.request('POST', '/enroll', { json: { ...machineBody(token), extra: 1 } }), 400, 'BAD_REQUEST');
    const { os: _os, ...missing } = machineBody(token);
    assertError(await ts.request('POST', '/enroll', { json: missing }), 400, 'BAD_REQUEST');
    assertError(await ts.request('POST', '/enroll', { body: Buffer.from('{not json'), headers: { 'content-type': 'application/json' } }), 400, 'BAD_REQUEST');
    // The token was not consumed by the refused attempts.
    assert.equal((await ts.request('POST', '/enroll', { json: machineBody(token) })).status, 200);
  });

  it('answers 401 for a missing, malformed, unknown or revoked credential', async () => {
    const customer = await buildCustomer(ts);
    const m = await enrollMachine(ts, customer.name, 'perdu');
    const errors = [
      assertError(await ts.request('GET', '/repo'), 401, 'UNAUTHORIZED'),
      assertError(await ts.request('GET', '/repo', { headers: { authorization: 'Basic abc' } }), 401, 'UNAUTHORIZED'),
      assertError(await ts.request('GET', '/repo', { token: 'cfm_short' }), 401, 'UNAUTHORIZED'),
      assertError(await ts.request('GET', '/repo', { token: `cfm_${'x'.repeat(43)}` }), 401, 'UNAUTHORIZED'),
    ];
    assert.equal((await m.request('GET', '/repo')).status, 200);
    await adminRevokeMachine(ts.admin, customer.name, 'perdu');
    errors.push(assertError(await m.request('GET', '/repo'), 401, 'UNAUTHORIZED'));
    assert.equal(new Set(errors.map((e) => e.message)).size, 1, 'every credential failure must read the same');
    const list = await enrollMachine(ts, customer.name, 'autre').then((o) => o.request('GET', '/machines'));
    const perdu = list.json<MachineListResponse>().machines.find((x) => x.name === 'perdu');
    assert.equal(perdu?.revoked, true);
  });

  it('records last_seen_at at most once a minute', async () => {
    const customer = await buildCustomer(ts);
    const m = await enrollMachine(ts, customer.name, 'vu');
    const seen = async () => (await m.request('GET', '/machines')).json<MachineListResponse>().machines.find((x) => x.name === 'vu')!.lastSeenAt;
    const t0 = ts.clock.now().toISOString();
    assert.equal(await seen(), t0);
    ts.clock.advance(30_000);
    assert.equal(await seen(), t0, 'updated twice within a minute');
    ts.clock.advance(31_000);
    assert.equal(await seen(), ts.clock.now().toISOString());
  });
});
