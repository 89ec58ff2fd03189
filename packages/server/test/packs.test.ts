import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { PACK_MAGIC, PACK_VERSION, type ChunksExistResponse, type ChunksLocateResponse, type PackUploadResponse, type Subkeys } from '@coffre/core';
import { packKey } from '../src/object-keys.js';
import type { CustomerId } from '../src/types.js';
import {
  assertError,
  buildPack,
  countRows,
  eventually,
  pendingUploads,
  testKeys,
  collectResponse,
  type HttpResponse,
  type TestMachine,
  type TestPack,
  type TestServer,
  serverWithMachine,
} from './kit.js';

describe('chunks and packs', () => {
  let ts: TestServer;
  let m: TestMachine;
  let keys: Subkeys;
  before(async () => {
    ({ ts, m } = await serverWithMachine());
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

    const stored = await ts.admin.store.get(packKey(m.customerId as CustomerId, pack.id));
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
    assert.equal(await ts.admin.store.stat(packKey(m.customerId as CustomerId, pack.id)), null);
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

/** A PUT whose body the test writes by hand (chunked unless a content-length header is given). */
function rawPut(ts: TestServer, m: TestMachine, urlPath: string, headers: Record<string, string> = {}): { req: ReturnType<typeof https.request>; response: Promise<HttpResponse> } {
  const req = https.request(new URL(`/api/v1${urlPath}`, ts.server.url), {
    method: 'PUT',
    ca: ts.server.certPem,
    agent: false,
    headers: { authorization: `Bearer ${m.credential}`, 'content-type': 'application/octet-stream', ...headers },
  });
  const response = new Promise<HttpResponse>((resolve, reject) => {
    req.on('response', (res) => collectResponse(res).then(resolve, reject));
    req.on('error', reject);
  });
  return { req, response };
}

/** Writes `data` in pieces of irregular sizes (1 byte up to `max`), so boundaries fall everywhere. */
async function writeInPieces(req: ReturnType<typeof https.request>, data: Buffer, max = 40_000): Promise<void> {
  const sizes = [1, 5, 7, 13, 80, 4093, max];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off);
    if (!req.write(data.subarray(off, off + n))) await new Promise((r) => req.once('drain', r));
    off += n;
  }
}

describe('streamed pack uploads', () => {
  let ts: TestServer;
  let m: TestMachine;
  let keys: Subkeys;
  before(async () => {
    ({ ts, m } = await serverWithMachine());
    keys = testKeys();
  });
  after(() => ts.close());

  const stored = (id: string) => ts.admin.store.stat(packKey(m.customerId as CustomerId, id));
  const storedData = (id: string) => ts.admin.store.get(packKey(m.customerId as CustomerId, id));
  const counts = async () => ({ packs: await countRows(ts, 'packs'), chunks: await countRows(ts, 'chunks') });
  const exists = async (ids: string[]) => (await m.request('POST', '/chunks/exists', { json: { ids } })).json<ChunksExistResponse>().exists;
  /** ~2.6 MiB over 40 blobs: many network chunks, blob boundaries inside them. */
  const bigPack = (): TestPack => buildPack(keys, Array.from({ length: 40 }, () => randomBytes(64 * 1024)));

  /** ~10 MiB over 160 blobs: more than one part of the S3 store (8 MiB), so an upload in progress is a multipart upload there. */
  const hugePack = (): TestPack => buildPack(keys, Array.from({ length: 160 }, () => randomBytes(64 * 1024)));

  /** Nothing of `pack` is stored or indexed, and no pending upload (temp file, multipart upload) is left. */
  async function assertNothingLeft(pack: TestPack, before: { packs: number; chunks: number }): Promise<void> {
    assert.deepEqual(await counts(), before);
    assert.equal(await stored(pack.id), null);
    assert.deepEqual(await pendingUploads(ts), []);
    assert.ok((await exists(pack.chunkIds)).every((e) => !e));
  }

  it('stores a multi-MiB pack sent in irregular pieces without Content-Length, and leaves no pending upload', async () => {
    const pack = bigPack();
    const { req, response } = rawPut(ts, m, `/packs/${pack.id}`);
    await writeInPieces(req, pack.data);
    req.end();
    const res = await response;
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(res.json<PackUploadResponse>(), { id: pack.id, chunks: 40, newChunks: 40 });
    assert.ok((await storedData(pack.id)).equals(pack.data));
    assert.deepEqual(await pendingUploads(ts), []);
  });

  it('refuses a pack whose blob deep inside is corrupted (422): no object, no pending upload, nothing indexed', async () => {
    const pack = hugePack();
    const before = await counts();
    const bad = Buffer.from(pack.data);
    // Past the first 8 MiB: on S3 the upload is a multipart upload by then, which must be aborted.
    const deep = pack.entries[130]!;
    assert.ok(deep.offset > 8 << 20);
    bad[deep.offset + Math.floor(deep.length / 2)]! ^= 0x80;
    const err = assertError(await m.request('PUT', `/packs/${pack.id}`, { body: bad }), 422, 'INTEGRITY');
    assert.match(String(err.details?.reason), new RegExp(deep.id.slice(0, 12)));
    await assertNothingLeft(pack, before);
    // The intact pack goes through afterwards.
    assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
  });

  it('cleans up when the client aborts mid-upload: no pending upload, no object, nothing indexed', async () => {
    const pack = hugePack();
    const before = await counts();
    const { req, response } = rawPut(ts, m, `/packs/${pack.id}`, { 'content-length': String(pack.data.length) });
    response.catch(() => undefined);
    try {
      // More than one S3 part: on S3 the first part goes out in a multipart upload.
      req.write(pack.data.subarray(0, 9 << 20));
      // The body streams into a pending upload (temp file, multipart upload) while it arrives…
      await eventually('the upload is pending in the store', async () => (await pendingUploads(ts)).length === 1, 30_000);
    } finally {
      req.destroy(); // also when the wait failed: the server's close would wait for this request
    }
    // …which goes away with the connection.
    await eventually('the pending upload is removed', async () => (await pendingUploads(ts)).length === 0, 30_000);
    await assertNothingLeft(pack, before);
    assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200, 'a retry succeeds');
  });

  it('refuses a body longer or shorter than its header says (400), with or without Content-Length', async () => {
    const pack = hugePack(); // on S3, a multipart upload that must be aborted
    const before = await counts();
    const longer = Buffer.concat([pack.data, randomBytes(10)]);
    const shorter = pack.data.subarray(0, pack.data.length - 1);
    for (const body of [longer, shorter]) {
      assertError(await m.request('PUT', `/packs/${pack.id}`, { body }), 400, 'BAD_REQUEST');
      const { req, response } = rawPut(ts, m, `/packs/${pack.id}`);
      await writeInPieces(req, body, 1 << 20);
      req.end();
      assertError(await response, 400, 'BAD_REQUEST');
    }
    await assertNothingLeft(pack, before);
  });

  it('refuses a header announcing more than 256 MiB (413) as soon as the header is in', async () => {
    const header = Buffer.alloc(12 + 80);
    PACK_MAGIC.copy(header, 0);
    header[4] = PACK_VERSION;
    header.writeUInt32BE(1, 8);
    randomBytes(32).copy(header, 12);
    header.writeBigUInt64BE(92n, 44);
    header.writeUInt32BE(0xffffffff, 52);
    const { req, response } = rawPut(ts, m, `/packs/${randomBytes(32).toString('hex')}`);
    req.write(header);
    req.end(randomBytes(1000));
    assertError(await response, 413, 'TOO_LARGE');
    assert.deepEqual(await pendingUploads(ts), []);
  });

  it('two concurrent uploads of the same pack both succeed, idempotently', async () => {
    const pack = bigPack();
    const before = await counts();
    const [a, b] = await Promise.all([0, 1].map(() => m.request('PUT', `/packs/${pack.id}`, { body: pack.data })));
    assert.equal(a!.status, 200, a!.body.toString());
    assert.equal(b!.status, 200, b!.body.toString());
    const ra = a!.json<PackUploadResponse>();
    const rb = b!.json<PackUploadResponse>();
    assert.deepEqual([ra.id, ra.chunks, rb.id, rb.chunks], [pack.id, 40, pack.id, 40]);
    assert.equal(ra.newChunks + rb.newChunks, 40);
    assert.deepEqual(await counts(), { packs: before.packs + 1, chunks: before.chunks + 40 });
    assert.ok((await storedData(pack.id)).equals(pack.data));
    assert.deepEqual(await pendingUploads(ts), []);
  });

  it('still verifies the body of a pack that is already stored (422 when corrupted)', async () => {
    const pack = buildPack(keys);
    assert.equal((await m.request('PUT', `/packs/${pack.id}`, { body: pack.data })).status, 200);
    const bad = Buffer.from(pack.data);
    bad[bad.length - 1]! ^= 0x01;
    assertError(await m.request('PUT', `/packs/${pack.id}`, { body: bad }), 422, 'INTEGRITY');
    assert.ok((await storedData(pack.id)).equals(pack.data), 'the stored pack is untouched');
    assert.deepEqual(await pendingUploads(ts), []);
  });

  it('answers an upload without a body or content type with 400', async () => {
    const pack = buildPack(keys);
    assertError(await m.request('PUT', `/packs/${pack.id}`), 400, 'BAD_REQUEST');
  });
});
