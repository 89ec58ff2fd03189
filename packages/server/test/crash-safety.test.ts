import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChunksExistResponse } from '@coffre/core';
import type { ObjectStore } from '../src/store/object-store.js';
import { assertError, buildCustomer, buildPack, countRows, enrollMachine, snapshotRequest, testKeys, testServer, type TestServer } from './kit.js';

class StoreDown extends Error {}

/** Wraps a store: `onPut` runs before every put and every upload commit, and may throw. */
function interceptPuts(onPut: (key: string) => Promise<void>): (inner: ObjectStore) => ObjectStore {
  return (inner) => ({
    put: async (key, data) => {
      await onPut(key);
      await inner.put(key, data);
    },
    createUpload: async (key, opts) => {
      const upload = await inner.createUpload(key, opts);
      return {
        write: (chunk) => upload.write(chunk),
        commit: async () => {
          try {
            await onPut(key);
          } catch (err) {
            await upload.abort();
            throw err;
          }
          await upload.commit();
        },
        abort: () => upload.abort(),
      };
    },
    get: (key, range) => inner.get(key, range),
    getStream: (key, range) => inner.getStream(key, range),
    stat: (key) => inner.stat(key),
    list: (prefix) => inner.list(prefix),
    delete: (key) => inner.delete(key),
    purgeTemporary: (olderThan) => inner.purgeTemporary(olderThan),
  });
}

describe('crash safety of pack uploads', () => {
  it('a failing object store means 500 and no index rows (the object is written before the index)', async () => {
    const ts = await testServer({
      wrapStore: interceptPuts(async () => {
        throw new StoreDown('disk on fire');
      }),
    });
    try {
      const m = await enrollMachine(ts, (await buildCustomer(ts)).name);
      const pack = buildPack(testKeys());
      const err = assertError(await m.request('PUT', `/packs/${pack.id}`, { body: pack.data }), 500, 'INTERNAL');
      assert.ok(!JSON.stringify(err).includes('disk on fire') && !JSON.stringify(err).includes('at '), 'internal details must not leak');
      assert.equal(await countRows(ts, 'packs'), 0);
      assert.equal(await countRows(ts, 'chunks'), 0);
      const exists = (await m.request('POST', '/chunks/exists', { json: { ids: pack.chunkIds } })).json<ChunksExistResponse>().exists;
      assert.deepEqual(exists, [false, false, false]);
      assert.ok(ts.logs.some((l) => l.level === 'error' && l.error === 'disk on fire'), 'the cause is logged server-side');
    } finally {
      await ts.close();
    }
  });

  it('when the object is put, no row of its pack exists yet; after the upload all do', async () => {
    const seenAtPut: number[] = [];
    // The hook runs only during requests, after `ts` is assigned.
    const ts: TestServer = await testServer({
      wrapStore: interceptPuts(async (key) => {
        if (key.startsWith('packs/')) seenAtPut.push((await countRows(ts, 'packs')) + (await countRows(ts, 'chunks')));
      }),
    });
    try {
      const m = await enrollMachine(ts, (await buildCustomer(ts)).name);
      const pack = buildPack(testKeys());
      assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
      assert.deepEqual(seenAtPut, [0]);
      assert.equal(await countRows(ts, 'packs'), 1);
      assert.equal(await countRows(ts, 'chunks'), 3);
    } finally {
      await ts.close();
    }
  });

  it('a failing refs write commits no snapshot', async () => {
    let fail = false;
    const ts = await testServer({
      wrapStore: interceptPuts(async (key) => {
        if (fail && key.startsWith('snapshots/')) throw new StoreDown('refs write failed');
      }),
    });
    try {
      const keys = testKeys();
      const m = await enrollMachine(ts, (await buildCustomer(ts)).name);
      const pack = buildPack(keys);
      await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
      fail = true;
      const req = snapshotRequest(keys, m.machineId, pack.chunkIds);
      assertError(await m.request('POST', '/snapshots', { json: req }), 500, 'INTERNAL');
      assert.equal(await countRows(ts, 'snapshots'), 0);
      fail = false;
      assert.equal((await m.request('POST', '/snapshots', { json: req })).status, 201, 'a retry succeeds');
    } finally {
      await ts.close();
    }
  });
});
