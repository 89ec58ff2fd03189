import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertError, buildCustomer, commitTestSnapshot, enrollMachine, serverWithMachine, type TestMachine, type TestServer } from './kit.js';

const run = (result: 'success' | 'partial' | 'failed', extra: Record<string, unknown> = {}) => ({
  startedAt: '2026-03-02T08:00:00.000Z',
  finishedAt: '2026-03-02T08:05:00.000Z',
  result,
  files: 10,
  bytes: 1000,
  addedBytes: 100,
  warnings: 0,
  ...extra,
});

/** A run reported as a success must name the snapshot it committed: the dashboard's "last success" rests on it. */
describe('POST /runs: a successful run names a committed snapshot of the reporting machine', () => {
  let ts: TestServer;
  let m: TestMachine;
  let sibling: TestMachine;
  let stranger: TestMachine;
  let mine: string;
  let siblings: string;
  let strangers: string;
  const runCount = async (): Promise<number> => Number((await ts.admin.db.selectFrom('backup_runs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  before(async () => {
    ({ ts, m } = await serverWithMachine());
    const customer = (await ts.admin.db.selectFrom('machines').innerJoin('orgs', 'orgs.id', 'machines.customer_id').select('orgs.name').where('machines.id', '=', m.machineId).executeTakeFirstOrThrow()).name;
    sibling = await enrollMachine(ts, customer, 'autre-poste');
    stranger = await enrollMachine(ts, (await buildCustomer(ts)).name, 'poste-ailleurs');
    mine = await commitTestSnapshot(m);
    siblings = await commitTestSnapshot(sibling);
    strangers = await commitTestSnapshot(stranger);
  });
  after(() => ts.close());

  it('success with its own committed snapshot: 201', async () => {
    assert.equal((await m.request('POST', '/runs', { json: run('success', { snapshotId: mine }) })).status, 201);
  });

  it('success without a snapshot: 400 BAD_REQUEST, nothing recorded', async () => {
    const before = await runCount();
    const e = assertError(await m.request('POST', '/runs', { json: run('success') }), 400, 'BAD_REQUEST');
    assert.match(e.message, /snapshot/i);
    assert.equal(await runCount(), before);
  });

  it("success naming a snapshot that does not exist, another machine's of the same customer, or another customer's: 404 NOT_FOUND", async () => {
    const before = await runCount();
    for (const id of ['0'.repeat(32), siblings, strangers]) {
      const e = assertError(await m.request('POST', '/runs', { json: run('success', { snapshotId: id }) }), 404, 'NOT_FOUND');
      assert.match(e.message, /snapshot/i);
    }
    // The same for a partial run that names one.
    assertError(await m.request('POST', '/runs', { json: run('partial', { snapshotId: siblings }) }), 404, 'NOT_FOUND');
    assert.equal(await runCount(), before);
  });

  it('a failed run names no snapshot and is recorded as before', async () => {
    assert.equal((await m.request('POST', '/runs', { json: run('failed', { errorCode: 'UNREACHABLE', files: 0 }) })).status, 201);
    assert.equal((await m.request('POST', '/runs', { json: run('partial', { warnings: 2 }) })).status, 201);
  });
});
