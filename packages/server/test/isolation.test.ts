import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CHUNKER, makeRecoverySlot, newMasterKey, newRecoveryKey, type ChunksExistResponse, type ChunksLocateResponse, type MachineListResponse, type PackUploadResponse, type RepoResponse, type SnapshotListResponse } from '@coffre/core';
import { assertError, buildCustomer, buildPack, enrollMachine, snapshotRequest, testKeys, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';
import type { SnapshotCommitRequest } from '@coffre/core';

/** A machine of customer B must never read, find or reference anything of customer A. */
describe('tenant isolation', () => {
  let ts: TestServer;
  let a: TestMachine;
  let b: TestMachine;
  let pack: TestPack;
  let snap: SnapshotCommitRequest;
  const keys = testKeys();
  before(async () => {
    ts = await testServer();
    a = await enrollMachine(ts, (await buildCustomer(ts, 'Cabinet A')).name, 'poste');
    b = await enrollMachine(ts, (await buildCustomer(ts, 'Cabinet B')).name, 'poste');
    pack = buildPack(keys);
    assert.equal((await a.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
    snap = snapshotRequest(keys, a.machineId, pack.chunkIds);
    assert.equal((await a.request('POST', '/snapshots', { json: snap })).status, 201);
    const config = { v: 1, chunker: DEFAULT_CHUNKER, compression: 'zstd' };
    assert.equal((await a.request('POST', '/repo/init', { json: { config, keySlots: [makeRecoverySlot(newMasterKey(), newRecoveryKey().raw)] } })).status, 200);
  });
  after(() => ts.close());

  it("cannot see A's chunks", async () => {
    assert.deepEqual((await b.request('POST', '/chunks/exists', { json: { ids: pack.chunkIds } })).json<ChunksExistResponse>().exists, [false, false, false]);
    assert.deepEqual((await b.request('POST', '/chunks/locate', { json: { ids: pack.chunkIds } })).json<ChunksLocateResponse>().locations, [null, null, null]);
  });

  it("cannot download A's pack, whole or ranged", async () => {
    assertError(await b.request('GET', `/packs/${pack.id}`), 404, 'NOT_FOUND');
    assertError(await b.request('GET', `/packs/${pack.id}`, { headers: { range: 'bytes=0-10' } }), 404, 'NOT_FOUND');
  });

  it("cannot see A's snapshots, manifests or refs", async () => {
    assert.deepEqual((await b.request('GET', '/snapshots')).json<SnapshotListResponse>().snapshots, []);
    assert.deepEqual((await b.request('GET', '/snapshots?machine=poste')).json<SnapshotListResponse>().snapshots, []);
    assertError(await b.request('GET', `/snapshots/${snap.manifest.id}`), 404, 'NOT_FOUND');
    assertError(await b.request('GET', `/snapshots/${snap.manifest.id}/refs`), 404, 'NOT_FOUND');
  });

  it("cannot commit a snapshot referencing A's chunks, nor use A's snapshot as parent", async () => {
    assertError(await b.request('POST', '/snapshots', { json: snapshotRequest(keys, b.machineId, pack.chunkIds) }), 409, 'MISSING_CHUNKS');
    const p = buildPack(keys);
    await b.request('PUT', `/packs/${p.id}`, { body: p.data });
    assertError(await b.request('POST', '/snapshots', { json: snapshotRequest(keys, b.machineId, p.chunkIds, { parent: snap.manifest.id }) }), 400, 'BAD_REQUEST');
  });

  it('can reuse the same snapshot id as A without learning anything', async () => {
    const p = buildPack(keys);
    await b.request('PUT', `/packs/${p.id}`, { body: p.data });
    assert.equal((await b.request('POST', '/snapshots', { json: snapshotRequest(keys, b.machineId, p.chunkIds, { id: snap.manifest.id }) })).status, 201);
    const own = (await a.request('GET', `/snapshots/${snap.manifest.id}/refs`)).body;
    assert.ok(own.equals(Buffer.from(snap.refs, 'base64')), "B's commit must not touch A's refs");
  });

  it("uploading the same pack stores B's own copy", async () => {
    const res = (await b.request('PUT', `/packs/${pack.id}`, { body: pack.data })).json<PackUploadResponse>();
    assert.deepEqual(res, { id: pack.id, chunks: 3, newChunks: 3 });
    assert.equal((await b.request('GET', `/packs/${pack.id}`)).status, 200);
  });

  it("sees only its own repository and machines", async () => {
    const repo = (await b.request('GET', '/repo')).json<RepoResponse>();
    assert.equal(repo.config, null);
    assert.deepEqual(repo.keySlots, []);
    const machines = (await b.request('GET', '/machines')).json<MachineListResponse>().machines;
    assert.deepEqual(machines.map((x) => x.id), [b.machineId]);
  });
});
