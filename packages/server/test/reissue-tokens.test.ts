import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminReissueMachine } from '../src/admin/index.js';
import { assertError, enrollMachine, testServer, type TestMachine, type TestServer } from './kit.js';
import { org, person, type TestPerson } from './people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

/** A re-issue token is a key to a machine's identity: only the latest one may be used. */
describe('re-issuing a machine invalidates its earlier unused re-issue tokens', () => {
  let ts: TestServer;
  let admin: TestPerson;
  let m: TestMachine;
  let other: TestMachine;
  const enrol = (token: string) => ts.request('POST', '/enroll', { json: { token, machineName: 'ignored', hostname: 'host.local', os: 'linux', agentVersion: '0.1.0' } });
  const reissue = async (machineId: string): Promise<string> => {
    const r = await admin.browser.request('POST', `/machines/${machineId}/reissue`, { json: {} });
    assert.equal(r.status, 200, r.body.toString());
    return r.json<{ token: string }>().token;
  };

  before(async () => {
    ts = await testServer();
    await org(ts, 'Cabinet Réémission', 'customer');
    admin = await person(ts, 'customer-admin', 'Cabinet Réémission');
    m = await enrollMachine(ts, 'Cabinet Réémission', 'accueil');
    other = await enrollMachine(ts, 'Cabinet Réémission', 'secretariat');
  });
  after(() => ts.close());

  it('in the console API: the first token no longer enrols once a second is issued; the second does', async () => {
    const first = await reissue(m.machineId);
    const second = await reissue(m.machineId);
    assertError(await enrol(first), 401, 'UNAUTHORIZED');
    const ok = await enrol(second);
    assert.equal(ok.status, 200, ok.body.toString());
    assert.equal(ok.json<{ machineId: string }>().machineId, m.machineId);
  });

  it("another machine's re-issue token and plain enrolment tokens are not touched", async () => {
    const others = await reissue(other.machineId);
    const created = await admin.browser.request('POST', `/orgs/${(await ts.admin.db.selectFrom('machines').select('customer_id').where('id', '=', m.machineId).executeTakeFirstOrThrow()).customer_id}/enroll-tokens`, { json: {} });
    assert.equal(created.status, 201, created.body.toString());
    await reissue(m.machineId);
    assert.equal((await enrol(others)).status, 200, "the other machine's token still works");
    const plain = await ts.request('POST', '/enroll', { json: { token: created.json<{ token: string }>().token, machineName: 'nouveau-poste', hostname: 'h', os: 'linux', agentVersion: '0.1.0' } });
    assert.equal(plain.status, 200, plain.body.toString());
  });

  it('with coffre-server machine reissue (admin) too', async () => {
    const first = await adminReissueMachine(ts.admin, 'Cabinet Réémission', 'accueil');
    const second = await adminReissueMachine(ts.admin, 'Cabinet Réémission', 'accueil');
    assertError(await enrol(first.token), 401, 'UNAUTHORIZED');
    assert.equal((await enrol(second.token)).status, 200);
  });
});
