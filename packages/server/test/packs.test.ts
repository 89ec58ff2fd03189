import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { ChunksExistResponse, ChunksLocateResponse, PackUploadResponse, Subkeys } from '@coffre/core';
import { createFsStore } from '../src/store/fs-store.js';
import { dataDirPaths } from '../src/datadir.js';
import { packKey } from '../src/object-keys.js';
import type { CustomerId } from '../src/types.js';
import { assertError, buildCustomer, buildPack, countRows, enrollMachine, testKeys, testServer, type TestMachine, type TestServer } from './kit.js';

describe('chunks and packs', () => {
  let ts: TestServer;
  let m: TestMachine;
  let keys: Subkeys;
  before(async () => {
    ts = await testServer();
    m = await enrollMachine(ts, (await buildCustomer(ts)).name);
    keys = testKeys();
  });
  after(() => ts.close());

  const exists = async (ids: string[]) => (await m.request('POST', '/chunks/exists', { json: { ids } })).json<ChunksExistResponse>().exists;
  const locate = async (ids: string[]) => (await m.request('POST', '/chunks/locate', { json: { ids } })).json<ChunksLocateResponse>().locations;

  it('uploads a valid pack, indexes every chunk, and answers exists/locate in request order', async () => {
    const pack = buildPack(keys);
    const unknown = randomBytes(32).toString('hex');
    assert.deepEqual(await exists([...pack.chunkIds, unknown]), [false, false, false, false]);

    const res = await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(res.json<PackUploadResponse>(), { id: pack.id, chunks: 3, newChunks: 3 });

    assert.deepEqual(await exists([unknown, ...pack.chunkIds, pack.chunkIds[0]!]), [false, true, true, true, true]);
    assert.deepEqual(await locate([pack.chunkIds[1]!, unknown]), [{ pack: pack.id, offset: pack.entries[1]!.offset, length: pack.entries[1]!.length }, null]);

    const stored = await createFsStore(dataDirPaths(ts.dataDir).objects).get(packKey(m.customerId as CustomerId, pack.id));
    assert.ok(stored.equals(pack.data), 'the stored object must be the uploaded pack');
  });

  it('is idempotent, and a chunk keeps its first location when another pack repeats it', async () => {
    const plains = [randomBytes(700), randomBytes(800)];
    const first = buildPack(keys, plains);
    assert.equal((await m.request('PUT', `/packs/${first.id}`, { body: first.data })).json<PackUploadResponse>().newChunks, 2);
    assert.deepEqual((await m.request('PUT', `/packs/${first.id}`, { body: first.data })).json<PackUploadResponse>(), { id: first.id, chunks: 2, newChunks: 0 });

    const second = buildPack(keys, [plains[0]!, randomBytes(900)]); // re-encrypted: same chunk id, different blob
    assert.deepEqual((await m.request('PUT', `/packs/${second.id}`, { body: second.data })).json<PackUploadResponse>(), { id: second.id, chunks: 2, newChunks: 1 });
    const [loc] = await locate([first.chunkIds.find((id) => second.chunkIds.includes(id))!]);
    assert.equal(loc?.pack, first.id);
  });

  it('refuses a pack with one flipped byte (422) and indexes nothing', async () => {
    const pack = buildPack(keys);
    const before = { packs: await countRows(ts, 'packs'), chunks: await countRows(ts, 'chunks') };
    const bad = Buffer.from(pack.data);
    bad[bad.length - 10]! ^= 0x01;
    assertError(await m.request('PUT', `/packs/${pack.id}`, { body: bad }), 422, 'INTEGRITY');
    assert.deepEqual(await exists(pack.chunkIds), [false, false, false]);
    assert.deepEqual({ packs: await countRows(ts, 'packs'), chunks: await countRows(ts, 'chunks') }, before);
    assert.equal(await createFsStore(dataDirPaths(ts.dataDir).objects).stat(packKey(m.customerId as CustomerId, pack.id)), null);
  });

  it('refuses a valid pack uploaded under another id (422)', async () => {
    const pack = buildPack(keys);
    assertError(await m.request('PUT', `/packs/${randomBytes(32).toString('hex')}`, { body: pack.data }), 422, 'INTEGRITY');
    assert.deepEqual(await exists(pack.chunkIds), [false, false, false]);
  });

  it('refuses bodies that are not packs (400), wrong content types (400) and bad ids (400)', async () => {
    const pack = buildPack(keys);
    assertError(await m.request('PUT', `/packs/${pack.id}`, { body: randomBytes(500) }), 400, 'BAD_REQUEST');
    assertError(await m.request('PUT', `/packs/${pack.id}`, { body: Buffer.alloc(0) }), 400, 'BAD_REQUEST');
    const header = Buffer.from(pack.data);
    header[5] = 1; // reserved byte
    assertError(await m.request('PUT', `/packs/${pack.id}`, { body: header }), 400, 'BAD_REQUEST');
    assertError(await m.request('PUT', `/packs/${pack.id}`, { body: pack.data, headers: { 'content-type': 'text/plain' } }), 400, 'BAD_REQUEST');
    assertError(await m.request('PUT', `/packs/${pack.id.toUpperCase()}`, { body: pack.data }), 400, 'BAD_REQUEST');
    assertError(await m.request('PUT', '/packs/abc', { body: pack.data }), 400, 'BAD_REQUEST');
    assert.deepEqual(await exists(pack.chunkIds), [false, false, false]);
  });

  it('refuses a pack body over 256 MiB from its Content-Length alone (413)', async () => {
    const pack = buildPack(keys);
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(new URL(`/api/v1/packs/${pack.id}`, ts.server.url), {
        method: 'PUT',
        ca: ts.server.certPem,
        agent: false,
        headers: { authorization: `Bearer ${m.credential}`, 'content-type': 'application/octet-stream', 'content-length': String(256 * 1024 * 1024 + 1) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(pack.data); // far less than announced: the server must answer without waiting for the rest
    });
    assert.equal(status, 413);
  });

  it('validates chunk id batches', async () => {
    const id = randomBytes(32).toString('hex');
    assertError(await m.request('POST', '/chunks/exists', { json: { ids: [] } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/chunks/exists', { json: { ids: [id.toUpperCase()] } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/chunks/locate', { json: { ids: [id.slice(1)] } }), 400, 'BAD_REQUEST');
    assertError(await m.request('POST', '/chunks/exists', { json: { ids: Array(10_001).fill(id) } }), 400, 'BAD_REQUEST');
    assert.equal((await exists(Array(10_000).fill(id))).length, 10_000);
  });

  it('downloads a whole pack (200) or exactly one byte range (206)', async () => {
    const pack = buildPack(keys);
    await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
    const whole = await m.request('GET', `/packs/${pack.id}`);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(pack.data));
    assert.equal(whole.headers['content-type'], 'application/octet-stream');

    const e = pack.entries[1]!;
    const ranged = await m.request('GET', `/packs/${pack.id}`, { headers: { range: `bytes=${e.offset}-${e.offset + e.length - 1}` } });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.body.equals(pack.data.subarray(e.offset, e.offset + e.length)));
    assert.equal(ranged.headers['content-range'], `bytes ${e.offset}-${e.offset + e.length - 1}/${pack.data.length}`);

    const suffix = await m.request('GET', `/packs/${pack.id}`, { headers: { range: 'bytes=-16' } });
    assert.equal(suffix.status, 206);
    assert.ok(suffix.body.equals(pack.data.subarray(pack.data.length - 16)));
    const open = await m.request('GET', `/packs/${pack.id}`, { headers: { range: `bytes=${pack.data.length - 5}-` } });
    assert.ok(open.body.equals(pack.data.subarray(pack.data.length - 5)));
  });

  it('answers 416 to unsatisfiable or malformed ranges, 404 to unknown packs', async () => {
    const pack = buildPack(keys);
    await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
    for (const range of [`bytes=${pack.data.length}-`, 'bytes=10-5', 'bytes=0-1,5-6', 'items=0-1', 'bytes=-0', 'bytes=-']) {
      const res = await m.request('GET', `/packs/${pack.id}`, { headers: { range } });
      assertError(res, 416, 'RANGE_NOT_SATISFIABLE');
      assert.equal(res.headers['content-range'], `bytes */${pack.data.length}`);
    }
    assertError(await m.request('GET', `/packs/${randomBytes(32).toString('hex')}`), 404, 'NOT_FOUND');
  });
});
