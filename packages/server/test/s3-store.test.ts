/**
 * The S3 store against a REAL S3 service: OpenStack Swift with s3api by default
 * (`bash scripts/services/start-swift-s3.sh`), or whatever COFFRE_TEST_S3_ENDPOINT names,
 * with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default test:tester / testing). Every
 * store works under a fresh random prefix of bucket `coffre-test`, removed afterwards.
 * An unreachable service fails this file; it never skips. It tests the S3 store itself, so it
 * runs on S3 whatever COFFRE_TEST_BACKEND says.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { inspect } from 'node:util';
import { after, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { InvalidRangeError, isNotFound, ObjectStoreError, StoreUnavailableError, UploadStateError } from '../src/store/object-store.js';
import { createS3Store, DEFAULT_PART_SIZE, MIN_PART_SIZE, parseStoreUrl, type S3Store, type S3StoreOptions } from '../src/store/s3-store.js';
import { readAll, storeConformance } from './store-conformance.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ENDPOINT = process.env.COFFRE_TEST_S3_ENDPOINT || 'http://127.0.0.1:8080';
const CREDENTIALS = { accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'test:tester', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'testing' };
const BUCKET = 'coffre-test';
/** Every prefix of this run lives under it. */
const RUN = `run-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
const MiB = 1024 * 1024;

const admin = new S3Client({
  region: 'us-east-1',
  endpoint: ENDPOINT,
  forcePathStyle: true,
  credentials: CREDENTIALS,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 2,
  requestHandler: { connectionTimeout: 3_000, requestTimeout: 60_000 },
});

function freshPrefix(name = 't'): string {
  return `${RUN}/${name}-${randomBytes(4).toString('hex')}`;
}

function s3Store(prefix: string, opts: Partial<S3StoreOptions> = {}): S3Store {
  return createS3Store({ bucket: BUCKET, prefix, endpoint: ENDPOINT, credentials: CREDENTIALS, partSize: MIN_PART_SIZE, ...opts });
}

/** Multipart uploads pending under `prefix/`, straight from the service. */
async function pendingUploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const out: { key: string; uploadId: string }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const r = await admin.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}/`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    for (const u of r.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId! });
    if (!r.IsTruncated || !r.NextKeyMarker) return out;
    [keyMarker, uploadIdMarker] = [r.NextKeyMarker, r.NextUploadIdMarker];
  }
}

/** Keys under `prefix/` (bucket keys, with the prefix). */
async function bucketKeys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await admin.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.push(o.Key!);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Removes every object and pending upload under `prefix/`. */
async function wipe(prefix: string): Promise<void> {
  for (const u of await pendingUploads(prefix)) await admin.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.key, UploadId: u.uploadId })).catch(() => undefined);
  for (const k of await bucketKeys(prefix)) await admin.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: k }));
}

/** Reaches the service and makes sure the bucket exists; the error says how to start the service. */
async function prepare(): Promise<Error | null> {
  try {
    try {
      await admin.send(new HeadBucketCommand({ Bucket: BUCKET }));
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw err;
      await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
    }
    return null;
  } catch (err) {
    const e = err as { name?: string; message?: string; code?: string };
    return new Error(
      `the S3 tests need a real S3 service at ${ENDPOINT} (bucket ${BUCKET}), which failed: ${e.name ?? ''} ${e.code ?? ''} ${e.message ?? ''}. ` +
        'Start one with `bash scripts/services/start-swift-s3.sh` (S3DIR=/tmp/coffre-s3 S3_PORT=8080), or point COFFRE_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY at another one.',
    );
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rejects with what `p` rejects with, or fails the test if it resolves. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
}

describe('parseStoreUrl and options (no service needed)', () => {
  it('parses s3://BUCKET[/PREFIX]', () => {
    assert.deepEqual(parseStoreUrl('s3://coffre-data'), { bucket: 'coffre-data', prefix: '' });
    assert.deepEqual(parseStoreUrl('s3://coffre-data/'), { bucket: 'coffre-data', prefix: '' });
    assert.deepEqual(parseStoreUrl('s3://my.bucket-1/prod/eu-west'), { bucket: 'my.bucket-1', prefix: 'prod/eu-west' });
    assert.deepEqual(parseStoreUrl('s3://abc/a_b/c.d/'), { bucket: 'abc', prefix: 'a_b/c.d' });
  });

  it('refuses malformed URLs, bucket names and prefixes, saying what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['http://bucket/x', /s3:\/\/BUCKET/],
      ['s3:/bucket', /s3:\/\/BUCKET/],
      ['s3://', /bucket name/],
      ['s3://ab', /bucket name/],
      ['s3://' + 'a'.repeat(64), /bucket name/],
      ['s3://My-Bucket', /bucket name/],
      ['s3://bucket_x', /bucket name/],
      ['s3://-bucket', /bucket name/],
      ['s3://a..b', /bucket name/],
      ['s3://bucket//x', /prefix/],
      ['s3://bucket/a//b', /prefix/],
      ['s3://bucket/../x', /prefix/],
      ['s3://bucket/a/.tmp', /prefix/],
      ['s3://bucket/UPPER', /prefix/],
      ['s3://bucket/sp ace', /prefix/],
      [`s3://bucket/${'p'.repeat(201)}`, /prefix/],
    ];
    for (const [url, re] of cases) assert.throws(() => parseStoreUrl(url), re, url);
  });

  it('validates its options and describes itself', () => {
    const store = createS3Store({ bucket: BUCKET, prefix: 'a/b', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    try {
      assert.equal(store.describe(), 's3://coffre-test/a/b at http://127.0.0.1:9');
      assert.equal(String(store), store.describe());
      assert.equal(store.partSize, DEFAULT_PART_SIZE);
    } finally {
      store.destroy();
    }
    const base = { bucket: BUCKET, prefix: '', credentials: { accessKeyId: 'k', secretAccessKey: 's' } };
    assert.match(createS3Store(base).describe(), /^s3:\/\/coffre-test at AWS \(us-east-1\)$/);
    assert.throws(() => createS3Store({ ...base, partSize: MIN_PART_SIZE - 1 }), /partSize/);
    assert.equal(createS3Store({ ...base, partSize: 1 << 20, allowSmallParts: true }).partSize, 1 << 20);
    assert.throws(() => createS3Store({ ...base, bucket: 'UP' }), /bucket name/);
    assert.throws(() => createS3Store({ ...base, prefix: 'a/' }), /prefix/);
    assert.throws(() => createS3Store({ ...base, endpoint: 'ftp://x' }), /endpoint/);
    assert.throws(() => createS3Store({ ...base, endpoint: 'http://user:pw@host' }), (e: unknown) => e instanceof Error && /credentials/.test(e.message) && !e.message.includes('pw'));
  });
});

const unavailable = await prepare();
after(async () => {
  if (!unavailable) await wipe(RUN); // whatever a failed test left behind
  admin.destroy();
});

if (unavailable) {
  describe('S3 store on a real service', () => {
    it('needs a reachable S3 service', () => {
      throw unavailable;
    });
  });
} else {
  storeConformance(`s3 (${ENDPOINT})`, async () => {
    const prefix = freshPrefix('conf');
    const store = s3Store(prefix, { pageSize: 3 }); // small pages: listing crosses pages
    return {
      store,
      afterFailedPut: async () => assert.deepEqual(await pendingUploads(prefix), [], 'no multipart upload left pending'),
      cleanup: async () => {
        store.destroy();
        await wipe(prefix);
      },
    };
  });

  describe('S3 store on a real service', () => {
    const stores: S3Store[] = [];
    const prefixes: string[] = [];
    const fresh = (name: string, opts: Partial<S3StoreOptions> = {}): { store: S3Store; prefix: string } => {
      const prefix = freshPrefix(name);
      const store = s3Store(prefix, opts);
      stores.push(store);
      prefixes.push(prefix);
      return { store, prefix };
    };
    after(async () => {
      for (const s of stores) s.destroy();
      for (const p of prefixes) await wipe(p);
    });

    for (const announced of [false, true]) {
      it(`a 20 MiB streamed upload${announced ? ' of announced size' : ''} goes multipart, reads back identical, in bounded memory`, async () => {
        const { store, prefix } = fresh('big');
        const data = randomBytes(20 * MiB + 12_345);
        const writeSize = 256 * 1024 + 7; // parts never align with writes
        const upload = await store.createUpload('packs/big', announced ? { size: data.length } : {});
        for (let off = 0; off < data.length; off += writeSize) await upload.write(data.subarray(off, off + writeSize));
        assert.equal(await store.stat('packs/big'), null, 'invisible before commit');
        assert.equal((await pendingUploads(prefix)).length, 1, 'a multipart upload is in progress');
        await upload.commit();
        assert.equal(upload.partsSent, Math.ceil(data.length / MIN_PART_SIZE));
        const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${prefix}/packs/big` }));
        assert.match(head.ETag ?? '', /-5"$/, 'the service holds a 5-part multipart object');
        assert.ok(upload.maxBufferedBytes >= MIN_PART_SIZE, `buffered a whole part (${upload.maxBufferedBytes})`);
        assert.ok(upload.maxBufferedBytes <= 2 * MIN_PART_SIZE + writeSize, `memory bounded by two parts and a write: ${upload.maxBufferedBytes}`);
        assert.deepEqual(await store.stat('packs/big'), { size: data.length });
        assert.ok((await store.get('packs/big')).equals(data));
        assert.ok((await readAll(await store.getStream('packs/big'))).equals(data));
        assert.deepEqual(await pendingUploads(prefix), []);

        // Ranged reads across part boundaries of the multipart object.
        for (const r of [
          { offset: MIN_PART_SIZE - 10, length: 20 },
          { offset: 3 * MIN_PART_SIZE - 1, length: MIN_PART_SIZE + 2 },
          { offset: data.length - 1, length: 1 },
          { offset: data.length, length: 0 },
        ]) {
          assert.ok((await store.get('packs/big', r)).equals(data.subarray(r.offset, r.offset + r.length)), `get ${r.offset}+${r.length}`);
          assert.ok((await readAll(await store.getStream('packs/big', r))).equals(data.subarray(r.offset, r.offset + r.length)), `getStream ${r.offset}+${r.length}`);
        }
        // S3 would truncate these: the store refuses them.
        await assert.rejects(store.get('packs/big', { offset: data.length - 5, length: 6 }), InvalidRangeError);
        await assert.rejects(store.getStream('packs/big', { offset: data.length, length: 1 }), InvalidRangeError);
        await assert.rejects(store.getStream('packs/big', { offset: data.length + 1, length: 0 }), InvalidRangeError);
      });
    }

    it('write waits while a part uploads and the next one is full (backpressure); one part\'s worth is one PutObject', async () => {
      const { store } = fresh('bp');
      const upload = await store.createUpload('bp/obj');
      // One write of three parts and a byte: it cannot return before the first two were sent.
      await upload.write(randomBytes(3 * MIN_PART_SIZE + 1));
      assert.ok(upload.partsSent >= 2, `parts sent before write resolved: ${upload.partsSent}`);
      await upload.abort();

      // Exactly one part's worth, size unannounced: still one PutObject, no multipart upload.
      const one = await store.createUpload('bp/one');
      for (let i = 0; i < 5; i++) await one.write(randomBytes(MiB));
      await one.commit();
      assert.equal(one.partsSent, 0);
      const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${store.prefix}/bp/one` }));
      assert.doesNotMatch(head.ETag ?? '', /-\d+"$/, 'a plain object');
      assert.deepEqual(await store.stat('bp/one'), { size: MIN_PART_SIZE });
    });

    it('abort, a wrong size and a refused completion leave no pending multipart upload and no object', async () => {
      const { store, prefix } = fresh('fail');
      const aborted = await store.createUpload('f/aborted');
      for (let i = 0; i < 11; i++) await aborted.write(randomBytes(MiB));
      assert.equal((await pendingUploads(prefix)).length, 1, 'the multipart upload exists before abort');
      await aborted.abort();
      await aborted.abort();
      assert.deepEqual(await pendingUploads(prefix), []);
      await assert.rejects(aborted.write(Buffer.from('x')), UploadStateError);

      const short = await store.createUpload('f/short', { size: 12 * MiB });
      for (let i = 0; i < 11; i++) await short.write(randomBytes(MiB));
      assert.equal((await pendingUploads(prefix)).length, 1);
      await assert.rejects(short.commit(), UploadStateError);
      assert.deepEqual(await pendingUploads(prefix), [], 'a refused commit aborts the multipart upload');

      const long = await store.createUpload('f/long', { size: 6 * MiB });
      for (let i = 0; i < 11; i++) await long.write(randomBytes(MiB));
      await assert.rejects(long.commit(), UploadStateError);
      assert.deepEqual(await pendingUploads(prefix), []);

      // Parts under the service's 5 MiB minimum: CompleteMultipartUpload itself fails.
      const tiny = s3Store(prefix, { partSize: MiB, allowSmallParts: true });
      stores.push(tiny);
      const refused = await tiny.createUpload('f/refused');
      for (let i = 0; i < 3; i++) await refused.write(randomBytes(MiB + 1));
      const err = await failure(refused.commit());
      assert.ok(err instanceof ObjectStoreError && !(err instanceof UploadStateError), `the service's refusal: ${String(err)}`);
      assert.match((err as Error).message, /commit f\/refused on s3:\/\/coffre-test\//);
      await refused.abort();
      assert.deepEqual(await pendingUploads(prefix), [], 'a failed completion aborts the multipart upload');
      for (const k of ['f/aborted', 'f/short', 'f/long', 'f/refused']) assert.equal(await store.stat(k), null, k);
      assert.deepEqual(await bucketKeys(prefix), []);
    });

    it('purgeTemporary aborts stale multipart uploads only: never a recent or recently written one, a committed object, or another prefix', async () => {
      const { store, prefix } = fresh('purge');
      const sibling = `${prefix}x`; // shares the store prefix as a string, not as a folder
      prefixes.push(sibling);
      await store.put('packs/kept', Buffer.from('committed'));
      const initiate = async (bucketPrefix: string, key: string) =>
        (await admin.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${bucketPrefix}/${key}` }))).UploadId!;
      const part = (bucketPrefix: string, key: string, uploadId: string, n: number) =>
        admin.send(new UploadPartCommand({ Bucket: BUCKET, Key: `${bucketPrefix}/${key}`, UploadId: uploadId, PartNumber: 1, Body: Buffer.alloc(n), ContentLength: n }));

      // What a crashed server leaves: uploads nobody will finish.
      const stale = await initiate(prefix, 'packs/stale');
      await part(prefix, 'packs/stale', stale, 1234);
      const foreign = await initiate(sibling, 'packs/stale');
      const slow = await initiate(prefix, 'packs/slow'); // started before the cutoff, written after
      await sleep(1100); // the service's clock has a one-second resolution
      const cutoff = new Date();
      await sleep(1100);
      await part(prefix, 'packs/slow', slow, 10);
      const recent = await store.createUpload('packs/recent');
      const data = randomBytes(11 * MiB);
      await recent.write(data.subarray(0, 10 * MiB + 1)); // a first part was sent: a multipart upload is in progress
      assert.equal((await pendingUploads(prefix)).length, 3);

      assert.deepEqual(await store.purgeTemporary(cutoff), { removed: 1, bytes: 1234 });
      assert.deepEqual((await pendingUploads(prefix)).map((u) => u.key).sort(), [`${prefix}/packs/recent`, `${prefix}/packs/slow`]);
      assert.deepEqual((await pendingUploads(sibling)).map((u) => u.uploadId), [foreign], 'another prefix is never touched');
      assert.deepEqual(await store.get('packs/kept'), Buffer.from('committed'));

      await recent.write(data.subarray(10 * MiB + 1));
      await recent.commit();
      assert.ok((await store.get('packs/recent')).equals(data), 'the upload in progress still commits');
      assert.deepEqual(await store.purgeTemporary(cutoff), { removed: 0, bytes: 0 });
      await admin.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: `${prefix}/packs/slow`, UploadId: slow }));
    });

    it('list and purgeTemporary follow every page', async () => {
      const { store, prefix } = fresh('pages', { pageSize: 2 });
      const keys = Array.from({ length: 7 }, (_, i) => `p/k${i}`);
      for (const k of keys) await store.put(k, Buffer.from(k));
      const listed: string[] = [];
      for await (const e of store.list('p/')) listed.push(e.key);
      assert.deepEqual(listed.sort(), keys);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const key = `${prefix}/u/u${i}`;
        const id = (await admin.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))).UploadId!;
        for (let n = 1; n <= 3; n++) await admin.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: id, PartNumber: n, Body: Buffer.alloc(100 * n), ContentLength: 100 * n }));
        ids.push(id);
      }
      assert.equal((await pendingUploads(prefix)).length, 5);
      await sleep(1100);
      assert.deepEqual(await store.purgeTemporary(new Date()), { removed: 5, bytes: 5 * 600 });
      assert.deepEqual(await pendingUploads(prefix), []);
      assert.equal((await bucketKeys(prefix)).length, 7);
    });

    it('a store with prefix a/b never sees, lists, deletes or purges what lies under a/bc', async () => {
      const root = freshPrefix('iso');
      prefixes.push(root);
      const ab = s3Store(`${root}/a/b`);
      const abc = s3Store(`${root}/a/bc`);
      const a = s3Store(`${root}/a`);
      stores.push(ab, abc, a);
      await ab.put('k/one', Buffer.from('ab'));
      await abc.put('k/one', Buffer.from('abc'));
      await abc.put('only-abc', Buffer.from('x'));
      const keys = async (s: S3Store, p = '') => {
        const out: string[] = [];
        for await (const e of s.list(p)) out.push(e.key);
        return out.sort();
      };
      assert.deepEqual(await keys(ab), ['k/one']);
      assert.deepEqual(await keys(abc), ['k/one', 'only-abc']);
      assert.deepEqual(await keys(a), ['b/k/one', 'bc/k/one', 'bc/only-abc']);
      assert.deepEqual(await keys(a, 'b/'), ['b/k/one']);
      assert.deepEqual(await ab.get('k/one'), Buffer.from('ab'));
      assert.equal(await ab.stat('only-abc'), null);
      await assert.rejects(ab.get('only-abc'), (e: unknown) => isNotFound(e));
      await ab.delete('only-abc');
      assert.deepEqual(await abc.get('only-abc'), Buffer.from('x'));

      const pending = (await admin.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${root}/a/bc/packs/p` }))).UploadId!;
      assert.deepEqual(await ab.purgeTemporary(new Date(Date.now() + 3_600_000)), { removed: 0, bytes: 0 });
      assert.deepEqual((await pendingUploads(`${root}/a/bc`)).map((u) => u.uploadId), [pending]);
      assert.deepEqual(await abc.purgeTemporary(new Date(Date.now() + 3_600_000)), { removed: 1, bytes: 0 });
      assert.deepEqual(await pendingUploads(root), []);
    });

    it('a connection lost mid-stream destroys the stream with a StoreUnavailableError', async () => {
      const { store, prefix } = fresh('cut');
      await store.put('obj', randomBytes(4 * MiB));
      // A proxy that forwards to the service and cuts each connection after 256 KiB of answer.
      const upstream = new URL(ENDPOINT);
      const proxy = net.createServer((client) => {
        const server = net.connect(Number(upstream.port || 80), upstream.hostname);
        let passed = 0;
        client.pipe(server);
        server.on('data', (chunk: Buffer) => {
          passed += chunk.length;
          client.write(chunk);
          if (passed > 256 * 1024) {
            client.destroy();
            server.destroy();
          }
        });
        client.on('error', () => server.destroy());
        server.on('error', () => client.destroy());
      });
      proxy.listen(0, '127.0.0.1');
      await new Promise((r) => proxy.once('listening', r));
      const { port } = proxy.address() as net.AddressInfo;
      const cut = s3Store(prefix, { endpoint: `http://127.0.0.1:${port}` });
      try {
        const stream = await cut.getStream('obj');
        const err = await failure(readAll(stream));
        assert.ok(err instanceof StoreUnavailableError, `got ${inspect(err)}`);
        assert.match(err.message, new RegExp(`reading obj on s3://coffre-test/${prefix}`));
        assert.equal(stream.destroyed, true);
      } finally {
        cut.destroy();
        proxy.close();
      }
    });

    it('an unreachable endpoint gives StoreUnavailableError, quickly', async () => {
      const store = createS3Store({ bucket: BUCKET, prefix: 'x', endpoint: 'http://127.0.0.1:1', credentials: CREDENTIALS });
      stores.push(store);
      const started = Date.now();
      const ops: [string, () => Promise<unknown>][] = [
        ['stat', () => store.stat('k')],
        ['get', () => store.get('k')],
        ['getStream', () => store.getStream('k', { offset: 0, length: 0 })],
        ['put', () => store.put('k', Buffer.from('x'))],
        ['list', async () => {
          for await (const e of store.list('')) void e;
        }],
        ['delete', () => store.delete('k')],
        ['purgeTemporary', () => store.purgeTemporary(new Date())],
      ];
      for (const [name, op] of ops) {
        const err = await failure(op());
        assert.ok(err instanceof StoreUnavailableError, `${name}: ${inspect(err)}`);
        assert.match(err.message, /s3:\/\/coffre-test\/x at http:\/\/127\.0\.0\.1:1/, name);
      }
      assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
    });

    it('wrong credentials and a missing bucket give clear errors that never show a credential', async () => {
      const secret = `wrong-secret-${randomBytes(8).toString('hex')}`;
      const { prefix } = fresh('creds');
      for (const credentials of [
        { accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: secret },
        { accessKeyId: `nobody${randomBytes(6).toString('hex')}:x`, secretAccessKey: secret },
      ]) {
        const store = s3Store(prefix, { credentials });
        stores.push(store);
        const ops: [string, () => Promise<unknown>][] = [
          ['stat', () => store.stat('k')],
          ['get', () => store.get('k')],
          ['put', () => store.put('k', Buffer.from('x'))],
          ['list', async () => {
            for await (const e of store.list('')) void e;
          }],
          ['upload', async () => {
            const u = await store.createUpload('k');
            await u.write(Buffer.from('x'));
            await u.commit();
          }],
        ];
        for (const [name, op] of ops) {
          const err = await failure(op());
          assert.ok(err instanceof ObjectStoreError && !(err instanceof StoreUnavailableError), `${name}: ${inspect(err)}`);
          assert.ok(err.message.includes(`s3://coffre-test/${prefix} at ${ENDPOINT}`), `${name} names the bucket and endpoint: ${err.message}`);
          assert.match(err.message, /access denied|HTTP 403/, name);
          const everything = `${err.message}\n${err.stack ?? ''}\n${inspect(err, { depth: 10 })}`;
          assert.ok(!everything.includes(secret), `${name}: the secret key leaked`);
          assert.ok(!everything.includes(credentials.accessKeyId), `${name}: the access key id leaked`);
        }
      }

      const missing = createS3Store({ bucket: `coffre-missing-${randomBytes(4).toString('hex')}`, prefix: '', endpoint: ENDPOINT, credentials: CREDENTIALS });
      stores.push(missing);
      const err = await failure(missing.put('k', Buffer.from('x')));
      assert.ok(err instanceof ObjectStoreError && !(err instanceof StoreUnavailableError), inspect(err));
      assert.match(err.message, /the bucket coffre-missing-[0-9a-f]+ does not exist/);
      assert.ok(!err.message.includes(CREDENTIALS.secretAccessKey));
    });
  });
}
