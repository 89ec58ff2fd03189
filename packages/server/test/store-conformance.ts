import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { ByteRange, ObjectStore } from '../src/store/object-store.js';
import { InvalidKeyError, InvalidRangeError, isNotFound, ObjectStoreError, UploadStateError } from '../src/store/object-store.js';

/** What a store implementation hands to the suite. */
export interface StoreUnderTest {
  readonly store: ObjectStore;
  /** Makes the next put fail after its data is written but before it is published
   *  (a crash at the worst moment). Stores whose put is atomic by the service (S3) may omit it. */
  readonly failNextPut?: () => void;
  /** Implementation-specific checks after a failed put or upload (e.g. no temp file left behind). */
  readonly afterFailedPut?: () => Promise<void>;
  readonly cleanup: () => Promise<void>;
}

async function listAll(store: ObjectStore, prefix: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  for await (const e of store.list(prefix)) out.push({ key: e.key, size: e.size });
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Reads a stream to its end (rejects if it is destroyed with an error). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The contract of `ObjectStore`, run against every implementation. */
export function storeConformance(name: string, create: () => Promise<StoreUnderTest>): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    const withStore = (fn: (s: StoreUnderTest) => Promise<void>) => async () => {
      const s = await create();
      try {
        await fn(s);
      } finally {
        await s.cleanup();
      }
    };

    it('put then get returns the same bytes, and stat the size', withStore(async ({ store }) => {
      const data = randomBytes(100_000);
      await store.put('packs/ab/abcdef', data);
      assert.deepEqual(await store.get('packs/ab/abcdef'), data);
      assert.deepEqual(await store.stat('packs/ab/abcdef'), { size: data.length });
    }));

    it('stores an empty object', withStore(async ({ store }) => {
      await store.put('empty', Buffer.alloc(0));
      assert.equal((await store.get('empty')).length, 0);
      assert.deepEqual(await store.stat('empty'), { size: 0 });
    }));

    it('stored bytes do not change when the caller mutates its buffers', withStore(async ({ store }) => {
      const data = Buffer.from('original');
      await store.put('k', data);
      data.fill(0);
      const got = await store.get('k');
      got.fill(1);
      assert.equal((await store.get('k')).toString(), 'original');
    }));

    it('ranged get returns exactly the requested bytes', withStore(async ({ store }) => {
      const data = randomBytes(4096);
      await store.put('r/obj', data);
      assert.deepEqual(await store.get('r/obj', { offset: 0, length: 10 }), data.subarray(0, 10));
      assert.deepEqual(await store.get('r/obj', { offset: 1000, length: 96 }), data.subarray(1000, 1096));
      assert.deepEqual(await store.get('r/obj', { offset: 4000, length: 96 }), data.subarray(4000));
      assert.equal((await store.get('r/obj', { offset: 4096, length: 0 })).length, 0);
    }));

    it('ranged get outside the object is refused', withStore(async ({ store }) => {
      await store.put('r/obj', randomBytes(100));
      await assert.rejects(store.get('r/obj', { offset: 90, length: 11 }), InvalidRangeError);
      await assert.rejects(store.get('r/obj', { offset: 101, length: 0 }), InvalidRangeError);
      await assert.rejects(store.get('r/obj', { offset: -1, length: 2 }), InvalidRangeError);
    }));

    it('getStream yields exactly the whole object, or exactly a range', withStore(async ({ store }) => {
      const data = randomBytes(300_000); // several reads' worth
      await store.put('st/obj', data);
      assert.deepEqual(await readAll(await store.getStream('st/obj')), data);
      const ranges: ByteRange[] = [
        { offset: 0, length: 1 },
        { offset: 0, length: data.length },
        { offset: 1000, length: 70_000 },
        { offset: 65_530, length: 12 },
        { offset: data.length - 1, length: 1 }, // the last byte
        { offset: 5, length: 0 },
        { offset: data.length, length: 0 }, // zero bytes at the very end
      ];
      for (const r of ranges) {
        const got = await readAll(await store.getStream('st/obj', r));
        assert.equal(got.length, r.length, `length of ${r.offset}+${r.length}`);
        assert.ok(got.equals(data.subarray(r.offset, r.offset + r.length)), `bytes of ${r.offset}+${r.length}`);
      }
      await store.put('st/empty', Buffer.alloc(0));
      assert.equal((await readAll(await store.getStream('st/empty'))).length, 0);
      assert.equal((await readAll(await store.getStream('st/empty', { offset: 0, length: 0 }))).length, 0);
    }));

    it('getStream rejects before resolving: missing object, range outside the object, invalid key', withStore(async ({ store }) => {
      await store.put('st/obj', randomBytes(100));
      for (const range of [undefined, { offset: 0, length: 1 }, { offset: 0, length: 0 }]) {
        const err = await store.getStream('st/missing', range).then(() => null, (e: unknown) => e);
        assert.ok(isNotFound(err), `missing object with range ${JSON.stringify(range)}: expected not found, got ${String(err)}`);
      }
      for (const range of [{ offset: 90, length: 11 }, { offset: 100, length: 1 }, { offset: 101, length: 0 }, { offset: -1, length: 2 }, { offset: 0, length: -1 }, { offset: 0.5, length: 1 }]) {
        await assert.rejects(store.getStream('st/obj', range), InvalidRangeError, `range ${JSON.stringify(range)}`);
      }
      // A key that is only the prefix of other keys (a directory on a filesystem) is not an object.
      await assert.rejects(store.getStream('st'), (e: unknown) => isNotFound(e), 'getStream of a prefix');
      await store.put('st/empty', Buffer.alloc(0));
      await assert.rejects(store.getStream('st/empty', { offset: 0, length: 1 }), InvalidRangeError);
      for (const k of ['', '../x', 'a//b', '.hidden', 'UPPER']) await assert.rejects(store.getStream(k), InvalidKeyError, `getStream ${JSON.stringify(k)}`);
      // Still usable after all these refusals.
      assert.equal((await readAll(await store.getStream('st/obj'))).length, 100);
    }));

    it('getStream serves one version while the object is replaced or deleted', withStore(async ({ store }) => {
      const a = Buffer.alloc(2 << 20, 0x61);
      const b = Buffer.alloc(2 << 20, 0x62);
      for (const change of ['replace', 'delete'] as const) {
        await store.put('st/v', a);
        const stream = await store.getStream('st/v');
        const it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        const first = await it.next();
        assert.equal(first.done, false);
        if (change === 'replace') await store.put('st/v', b);
        else await store.delete('st/v');
        const chunks = [first.value as Buffer];
        let failure: unknown = null;
        try {
          for (let r = await it.next(); r.done !== true; r = await it.next()) chunks.push(r.value as Buffer);
        } catch (err) {
          failure = err;
        }
        const got = Buffer.concat(chunks);
        if (failure === null) {
          assert.equal(got.length, a.length, `${change}: a stream that ends must hold the whole object`);
          assert.ok(got.equals(a) || (change === 'replace' && got.equals(b)), `${change}: the stream mixed versions`);
        } else {
          assert.ok(failure instanceof ObjectStoreError, `${change}: a failing stream must fail with an ObjectStoreError, got ${String(failure)}`);
        }
      }
    }));

    it('a stream destroyed before its end does not disturb the store', withStore(async ({ store }) => {
      const data = randomBytes(1 << 20);
      await store.put('st/d', data);
      for (let i = 0; i < 5; i++) (await store.getStream('st/d')).destroy();
      const s = await store.getStream('st/d', { offset: 10, length: 100_000 });
      const it = (s as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      await it.next();
      s.destroy();
      await store.put('st/d', data.subarray(0, 10));
      assert.deepEqual(await readAll(await store.getStream('st/d')), data.subarray(0, 10));
      await store.delete('st/d');
      assert.equal(await store.stat('st/d'), null);
    }));

    it('missing objects are classified as not found', withStore(async ({ store }) => {
      const err = await store.get('nope/missing').then(() => null, (e: unknown) => e);
      assert.ok(isNotFound(err), `expected a not-found error, got ${String(err)}`);
      const ranged = await store.get('nope/missing', { offset: 0, length: 1 }).then(() => null, (e: unknown) => e);
      assert.ok(isNotFound(ranged));
      assert.equal(await store.stat('nope/missing'), null);
      assert.equal(isNotFound(new Error('object not found: x')), false, 'classification must not match on message text');
    }));

    it('overwrite replaces the whole object', withStore(async ({ store }) => {
      await store.put('o', randomBytes(5000));
      const second = randomBytes(10);
      await store.put('o', second);
      assert.deepEqual(await store.get('o'), second);
      assert.deepEqual(await listAll(store, 'o'), [{ key: 'o', size: 10 }]);
    }));

    it('list returns exactly the keys with the prefix, with sizes', withStore(async ({ store }) => {
      const keys = ['packs/c1/aa/aa01', 'packs/c1/aa/aa02', 'packs/c1/bb/bb01', 'packs/c2/aa/aa01', 'packs.x', 'snapshots/c1/s1.refs', 'top'];
      for (const [i, k] of keys.entries()) await store.put(k, Buffer.alloc(i + 1));
      assert.deepEqual(await listAll(store, 'packs/c1/'), [
        { key: 'packs/c1/aa/aa01', size: 1 },
        { key: 'packs/c1/aa/aa02', size: 2 },
        { key: 'packs/c1/bb/bb01', size: 3 },
      ]);
      assert.deepEqual((await listAll(store, 'packs/c1/aa/aa0')).map((e) => e.key), ['packs/c1/aa/aa01', 'packs/c1/aa/aa02']);
      assert.deepEqual((await listAll(store, 'packs')).map((e) => e.key), ['packs.x', 'packs/c1/aa/aa01', 'packs/c1/aa/aa02', 'packs/c1/bb/bb01', 'packs/c2/aa/aa01']);
      assert.deepEqual((await listAll(store, '')).length, keys.length);
      assert.deepEqual(await listAll(store, 'nothing/here/'), []);
      assert.deepEqual(await listAll(store, 'snapshots/c1/s1.refs'), [{ key: 'snapshots/c1/s1.refs', size: 6 }]);
    }));

    it('list gives each object its last modification time', withStore(async ({ store }) => {
      const before = Date.now();
      await store.put('packs/c1/t/one', Buffer.from('x'));
      const after = Date.now();
      const entries: { key: string; modifiedAt: Date }[] = [];
      for await (const e of store.list('packs/c1/t/')) entries.push(e);
      assert.equal(entries.length, 1);
      const t = entries[0]!.modifiedAt.getTime();
      assert.ok(t >= before - 2000 && t <= after + 2000, `modifiedAt ${entries[0]!.modifiedAt.toISOString()} within the put`);
    }));

    it('purgeTemporary never removes committed objects nor a recent upload in progress', withStore(async ({ store }) => {
      await store.put('packs/c1/p/kept', Buffer.from('committed'));
      const upload = await store.createUpload('packs/c1/p/inflight');
      await upload.write(Buffer.from('half'));
      const r = await store.purgeTemporary(new Date(Date.now() - 60_000));
      assert.deepEqual(r, { removed: 0, bytes: 0 });
      assert.deepEqual(await store.get('packs/c1/p/kept'), Buffer.from('committed'));
      await upload.write(Buffer.from(' and done'));
      await upload.commit();
      assert.deepEqual(await store.get('packs/c1/p/inflight'), Buffer.from('half and done'));
    }));

    it('delete removes the object and is idempotent', withStore(async ({ store }) => {
      await store.put('d/1', Buffer.from('x'));
      await store.put('d/2', Buffer.from('y'));
      await store.delete('d/1');
      assert.equal(await store.stat('d/1'), null);
      await assert.rejects(store.get('d/1'), (e: unknown) => isNotFound(e));
      await store.delete('d/1');
      await store.delete('never/existed');
      assert.deepEqual((await listAll(store, 'd/')).map((e) => e.key), ['d/2']);
    }));

    it('invalid keys are rejected by every operation', withStore(async ({ store }) => {
      const bad = ['', '/abs', 'a//b', 'a/', '../x', 'a/../b', 'a/./b', '.hidden', 'a/.tmp', 'UPPER', 'sp ace', 'a\\b', 'é', 'x'.repeat(513)];
      for (const k of bad) {
        await assert.rejects(store.put(k, Buffer.from('x')), InvalidKeyError, `put ${JSON.stringify(k)}`);
        await assert.rejects(store.get(k), InvalidKeyError, `get ${JSON.stringify(k)}`);
        await assert.rejects(store.getStream(k), InvalidKeyError, `getStream ${JSON.stringify(k)}`);
        await assert.rejects(store.getStream(k, { offset: 0, length: 0 }), InvalidKeyError, `getStream ${JSON.stringify(k)} (empty range)`);
        await assert.rejects(store.stat(k), InvalidKeyError, `stat ${JSON.stringify(k)}`);
        await assert.rejects(store.delete(k), InvalidKeyError, `delete ${JSON.stringify(k)}`);
      }
      await assert.rejects(listAll(store, '../'), InvalidKeyError);
      await assert.rejects(listAll(store, '/'), InvalidKeyError);
      assert.deepEqual(await listAll(store, ''), []);
    }));

    it('readers never see a partial object while it is overwritten', withStore(async ({ store }) => {
      const a = Buffer.alloc(4 << 20, 0x61);
      const b = Buffer.alloc(4 << 20, 0x62);
      await store.put('atomic', a);
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 4; i++) await store.put('atomic', i % 2 ? a : b);
        writing = false;
      })();
      let reads = 0;
      while (writing) {
        const got = await store.get('atomic');
        assert.equal(got.length, a.length);
        assert.ok(got.equals(a) || got.equals(b), 'a reader saw a mix of two versions');
        reads++;
      }
      await writer;
      assert.ok(reads > 0);
    }));

    it('a streamed upload is invisible until commit, then holds exactly the bytes written', withStore(async (s) => {
      const { store } = s;
      const parts = [randomBytes(10), randomBytes(3 << 20), Buffer.alloc(0), randomBytes(65_537), randomBytes(1)];
      const whole = Buffer.concat(parts);
      const upload = await store.createUpload('up/ab/obj', { size: whole.length });
      for (const part of parts) await upload.write(part);
      assert.equal(await store.stat('up/ab/obj'), null, 'not visible before commit');
      assert.deepEqual(await listAll(store, ''), []);
      await upload.commit();
      assert.deepEqual(await store.get('up/ab/obj'), whole);
      assert.deepEqual(await listAll(store, ''), [{ key: 'up/ab/obj', size: whole.length }]);
      await upload.abort(); // harmless after commit
      assert.deepEqual(await store.get('up/ab/obj'), whole);
      await assert.rejects(upload.write(Buffer.from('x')), UploadStateError);
      await assert.rejects(upload.commit(), UploadStateError);
      await s.afterFailedPut?.(); // nothing left behind by a successful upload either
    }));

    it('an upload without a size, or of nothing, works too', withStore(async ({ store }) => {
      const empty = await store.createUpload('up/empty');
      await empty.commit();
      assert.deepEqual(await store.stat('up/empty'), { size: 0 });
      const data = randomBytes(5000);
      const upload = await store.createUpload('up/nosize');
      await upload.write(data.subarray(0, 1000));
      await upload.write(data.subarray(1000));
      await upload.commit();
      assert.deepEqual(await store.get('up/nosize'), data);
    }));

    it('an aborted upload leaves nothing and keeps the existing object intact', withStore(async (s) => {
      const { store } = s;
      const fresh = await store.createUpload('ab/new');
      await fresh.write(randomBytes(200_000));
      await fresh.abort();
      await fresh.abort(); // idempotent
      await assert.rejects(fresh.write(Buffer.from('x')), UploadStateError);
      await assert.rejects(fresh.commit(), UploadStateError);
      assert.equal(await store.stat('ab/new'), null);

      const old = randomBytes(100);
      await store.put('ab/old', old);
      const over = await store.createUpload('ab/old');
      await over.write(randomBytes(300_000));
      await over.abort();
      assert.deepEqual(await store.get('ab/old'), old);
      assert.deepEqual(await listAll(store, ''), [{ key: 'ab/old', size: 100 }]);
      await s.afterFailedPut?.();
    }));

    it('commit refuses a size other than announced and publishes nothing', withStore(async (s) => {
      const { store } = s;
      const short = await store.createUpload('sz/short', { size: 10 });
      await short.write(randomBytes(9));
      await assert.rejects(short.commit(), UploadStateError);
      const long = await store.createUpload('sz/long', { size: 10 });
      await long.write(randomBytes(11));
      await assert.rejects(long.commit(), UploadStateError);
      await long.abort();
      assert.deepEqual(await listAll(store, ''), []);
      await s.afterFailedPut?.();
    }));

    it('two uploads of one key in parallel: each commit publishes one whole version', withStore(async (s) => {
      const { store } = s;
      const a = Buffer.alloc(2 << 20, 0x61);
      const b = Buffer.alloc(2 << 20, 0x62);
      const ua = await store.createUpload('par/x', { size: a.length });
      const ub = await store.createUpload('par/x', { size: b.length });
      for (let off = 0; off < a.length; off += 64 << 10) {
        await ua.write(a.subarray(off, off + (64 << 10)));
        await ub.write(b.subarray(off, off + (64 << 10)));
      }
      await ua.commit();
      assert.ok((await store.get('par/x')).equals(a));
      await ub.commit();
      assert.ok((await store.get('par/x')).equals(b));
      assert.deepEqual(await listAll(store, ''), [{ key: 'par/x', size: b.length }]);
      await s.afterFailedPut?.();
    }));

    it('an upload whose commit fails before publishing leaves no visible object', withStore(async (s) => {
      if (!s.failNextPut) return;
      const { store } = s;
      const old = randomBytes(100);
      await store.put('upfail/old', old);
      for (const key of ['upfail/new', 'upfail/old']) {
        const upload = await store.createUpload(key);
        await upload.write(randomBytes(100_000));
        s.failNextPut();
        await assert.rejects(upload.commit());
        await upload.abort(); // harmless after a failed commit
      }
      assert.equal(await store.stat('upfail/new'), null);
      assert.deepEqual(await store.get('upfail/old'), old);
      assert.deepEqual(await listAll(store, ''), [{ key: 'upfail/old', size: 100 }]);
      await s.afterFailedPut?.();
    }));

    it('createUpload validates its key', withStore(async ({ store }) => {
      for (const k of ['', '../x', 'a/.tmp', 'UPPER']) await assert.rejects(store.createUpload(k), InvalidKeyError, `createUpload ${JSON.stringify(k)}`);
      assert.deepEqual(await listAll(store, ''), []);
    }));

    it('a put that fails before publishing leaves no visible object', withStore(async (s) => {
      if (!s.failNextPut) return; // put is atomic by the service for this store
      const { store } = s;
      s.failNextPut();
      await assert.rejects(store.put('fail/new', randomBytes(1000)));
      assert.equal(await store.stat('fail/new'), null);
      await assert.rejects(store.get('fail/new'), (e: unknown) => isNotFound(e));
      assert.deepEqual(await listAll(store, ''), []);

      const old = randomBytes(100);
      await store.put('fail/old', old);
      s.failNextPut();
      await assert.rejects(store.put('fail/old', randomBytes(5000)));
      assert.deepEqual(await store.get('fail/old'), old, 'a failed overwrite must keep the old object intact');
      assert.deepEqual(await listAll(store, 'fail/'), [{ key: 'fail/old', size: 100 }]);
      await s.afterFailedPut?.();
    }));
  });
}
