import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeRefs, newSnapshotId, openManifest, type ChunkId, type SnapshotCommitResponse, type SnapshotListResponse, type SnapshotRecord, type Subkeys } from '@coffre/core';
import { snapshotRefsKey } from '../src/object-keys.js';
import type { CustomerId } from '../src/types.js';
import { assertError, buildCustomer, buildPack, countRows, enrollMachine, snapshotRequest, testKeys, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

describe('snapshots', () => {
  let ts: TestServer;
  let m: TestMachine;
  let keys: Subkeys;
  let pack: TestPack;
  before(async () => {
    ts = await testServer();
    m = await enrollMachine(ts, (await buildCustomer(ts)).name, 'serveur');
    keys = testKeys();
    pack = buildPack(keys);
    assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
  });
  after(() => ts.close());

  const refsObject = (id: string) => ts.admin.store.stat(snapshotRefsKey(m.customerId as CustomerId, id));

  it('commits when every ref is stored: 201, time stamped by the server clock', async () => {
    const req = snapshotRequest(keys, m.machineId, pack.chunkIds);
    const res = await m.request('POST', '/snapshots', { json: req });
    assert.equal(res.status, 201, res.body.toString());
    const body = res.json<SnapshotCommitResponse>();
    assert.deepEqual(body, { id: req.manifest.id, time: ts.clock.now().toISOString() });

    const record = (await m.request('GET', `/snapshots/${req.manifest.id}`)).json<SnapshotRecord>();
    assert.deepEqual(record, { id: req.manifest.id, time: body.time, machineId: m.machineId, machineName: 'serveur', manifest: req.manifest });
    // What the server returns still opens with the key: it stored the manifest untouched.
    assert.equal(openManifest(keys, record.manifest, m.machineId).clientTime, '1999-01-01T00:00:00.000Z');

    const refs = await m.request('GET', `/snapshots/${req.manifest.id}/refs`);
    assert.equal(refs.status, 200);
    assert.equal(refs.headers['content-type'], 'application/octet-stream');
    assert.deepEqual(decodeRefs(refs.body), [...pack.chunkIds].sort());
  });

  it('refuses a snapshot with a missing ref: 409 MISSING_CHUNKS listing it, nothing stored', async () => {
    const missing = randomBytes(32).toString('hex') as ChunkId;
    const req = snapshotRequest(keys, m.machineId, [...pack.chunkIds, missing]);
    const rows = await countRows(ts, 'snapshots');
    const err = assertError(await m.request('POST', '/snapshots', { json: req }), 409, 'MISSING_CHUNKS');
    assert.deepEqual(err.details, { missing: [missing], missingCount: 1 });
    assert.equal(await countRows(ts, 'snapshots'), rows);
    assert.equal(await refsObject(req.manifest.id), null);
    assertError(await m.request('GET', `/snapshots/${req.manifest.id}`), 404, 'NOT_FOUND');
  });

  it('lists at most 1000 missing ids but counts them all', async () => {
    const ids = Array.from({ length: 1200 }, () => randomBytes(32).toString('hex') as ChunkId);
    const err = assertError(await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, ids) }), 409, 'MISSING_CHUNKS');
    const details = err.details as { missing: string[]; missingCount: number };
    assert.equal(details.missing.length, 1000);
    assert.equal(details.missingCount, 1200);
    assert.deepEqual(details.missing, [...ids].sort().slice(0, 1000));
  });

  it('refuses a duplicate snapshot id (409)', async () => {
    const req = snapshotRequest(keys, m.machineId, pack.chunkIds);
    assert.equal((await m.request('POST', '/snapshots', { json: req })).status, 201);
    assertError(await m.request('POST', '/snapshots', { json: req }), 409, 'CONFLICT');
    const racing = snapshotRequest(keys, m.machineId, pack.chunkIds);
    const statuses = (await Promise.all([1, 2, 3].map(() => m.request('POST', '/snapshots', { json: racing })))).map((r) => r.status);
    assert.deepEqual(statuses.sort(), [201, 409, 409]);
  });

  it('checks refs against the manifest', async () => {
    const req = snapshotRequest(keys, m.machineId, pack.chunkIds);
    const other = snapshotRequest(keys, m.machineId, pack.chunkIds.slice(1));
    assertError(await m.request('POST', '/snapshots', { json: { ...req, refs: other.refs } }), 422, 'INTEGRITY');
    assertError(await m.request('POST', '/snapshots', { json: { ...req, manifest: { ...req.manifest, refCount: 2 } } }), 422, 'INTEGRITY');
    const raw = Buffer.from(req.refs, 'base64');
    const unsorted = Buffer.concat([raw.subarray(32), raw.subarray(0, 32)]).toString('base64');
    assertError(await m.request('POST', '/snapshots', { json: { ...req, refs: unsorted } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/snapshots', { json: { ...req, refs: raw.subarray(1).toString('base64') } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/snapshots', { json: { ...req, refs: '%%%' } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/snapshots', { json: { ...req, manifest: { ...req.manifest, id: 'ABC' } } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/snapshots', { json: { ...req, manifest: { ...req.manifest, extra: 1 } } }), 400, 'BAD_REQUEST');
    assert.equal(await refsObject(req.manifest.id), null);
    assert.equal((await m.request('POST', '/snapshots', { json: req })).status, 201, 'the valid request still commits');
  });

  it('requires the parent to be a snapshot of the same customer', async () => {
    assertError(await m.request('POST', '/snapshots', { json: snapshotRequest(keys, m.machineId, pack.chunkIds, { parent: newSnapshotId() }) }), 400, 'BAD_REQUEST');
    const parent = snapshotRequest(keys, m.machineId, pack.chunkIds);
    await m.request('POST', '/snapshots', { json: parent });
    const child = snapshotRequest(keys, m.machineId, pack.chunkIds, { parent: parent.manifest.id });
    assert.equal((await m.request('POST', '/snapshots', { json: child })).status, 201);
  });

  it('lists snapshots oldest first, all machines or one by name', async () => {
    const ts2 = await testServer();
    try {
      const customer = await buildCustomer(ts2);
      const a = await enrollMachine(ts2, customer.name, 'poste-a');
      const b = await enrollMachine(ts2, customer.name, 'poste-b');
      const p = buildPack(keys);
      await a.request('PUT', `/packs/${p.id}`, { body: p.data });
      const ids: string[] = [];
      for (const machine of [b, a, b]) {
        const req = snapshotRequest(keys, machine.machineId, p.chunkIds);
        assert.equal((await machine.request('POST', '/snapshots', { json: req })).status, 201);
        ids.push(req.manifest.id);
        ts2.clock.advance(1000);
      }
      const all = (await a.request('GET', '/snapshots')).json<SnapshotListResponse>().snapshots;
      assert.deepEqual(all.map((s) => s.id), ids);
      assert.deepEqual(all.map((s) => s.machineName), ['poste-b', 'poste-a', 'poste-b']);
      const onlyB = (await a.request('GET', '/snapshots?machine=poste-b')).json<SnapshotListResponse>().snapshots;
      assert.deepEqual(onlyB.map((s) => s.id), [ids[0], ids[2]]);
      assert.deepEqual((await a.request('GET', '/snapshots?machine=nobody')).json<SnapshotListResponse>().snapshots, []);
      assertError(await a.request('GET', '/snapshots?other=1'), 400, 'BAD_REQUEST');
    } finally {
      await ts2.close();
    }
  });
});
