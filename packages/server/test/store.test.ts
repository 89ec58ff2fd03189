import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { createFsStore } from '../src/store/fs-store.js';
import { ObjectStoreError } from '../src/store/object-store.js';
import { exactLengthStream } from '../src/store/stream.js';
import { createMemoryStore } from './memory-store.js';
import { readAll, storeConformance } from './store-conformance.js';

class InjectedFailure extends Error {}

/** Returns a beforeCommit hook that throws once after `arm()` is called. */
function faultSwitch(): { arm: () => void; hook: () => void } {
  let armed = false;
  return {
    arm: () => {
      armed = true;
    },
    hook: () => {
      if (armed) {
        armed = false;
        throw new InjectedFailure('injected failure before publish');
      }
    },
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

// The memory and filesystem stores themselves, whatever COFFRE_TEST_BACKEND says (the S3 store's own tests: s3-store.test.ts).
storeConformance('memory', async () => {
  const fault = faultSwitch();
  return { store: createMemoryStore({ beforeCommit: fault.hook }), failNextPut: fault.arm, cleanup: async () => undefined };
});

storeConformance('filesystem', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'coffre-fs-store-'));
  const fault = faultSwitch();
  return {
    store: createFsStore(path.join(root, 'objects'), { beforeCommit: fault.hook }),
    failNextPut: fault.arm,
    afterFailedPut: async () => {
      const leftovers = (await filesUnder(root)).filter((f) => path.basename(f).startsWith('.'));
      assert.deepEqual(leftovers, [], 'a failed put must remove its temp file');
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describe('filesystem store: temporary files (R8)', () => {
  it('purgeTemporary removes temp files older than the cutoff, keeps newer ones and every object', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'coffre-fs-purge-'));
    try {
      const store = createFsStore(root);
      await store.put('packs/c1/aa/aa01', Buffer.from('pack'));
      const dir = path.join(root, 'packs', 'c1', 'aa');
      // What a crash during an upload leaves: a dot-prefixed temp file next to the target.
      const old = path.join(dir, '.tmp-aa02-0123456789ab');
      const recent = path.join(dir, '.tmp-aa03-ba9876543210');
      await writeFile(old, Buffer.alloc(1234));
      await writeFile(recent, Buffer.alloc(10));
      const twoDaysAgo = new Date(Date.now() - 48 * 3_600_000);
      await utimes(old, twoDaysAgo, twoDaysAgo);
      const r = await store.purgeTemporary(new Date(Date.now() - 24 * 3_600_000));
      assert.deepEqual(r, { removed: 1, bytes: 1234 });
      const names = (await readdir(dir)).sort();
      assert.deepEqual(names, ['.tmp-aa03-ba9876543210', 'aa01']);
      assert.deepEqual(await store.get('packs/c1/aa/aa01'), Buffer.from('pack'));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('filesystem store: streamed reads', () => {
  it('a stream read to its end or destroyed early closes its file handle', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'coffre-fs-stream-'));
    const openFds = async () => (await readdir('/proc/self/fd')).length;
    try {
      const store = createFsStore(root);
      const data = Buffer.alloc(1 << 20, 7);
      await store.put('s/obj', data);
      const before = await openFds();
      const streams = await Promise.all(Array.from({ length: 20 }, (_, i) => store.getStream('s/obj', i % 2 ? undefined : { offset: 100, length: 500_000 })));
      assert.ok((await openFds()) >= before + 20, 'each stream holds its file open');
      for (const [i, s] of streams.entries()) {
        if (i % 3 === 0) {
          s.destroy();
          await once(s, 'close');
        } else {
          assert.equal((await readAll(s)).length, i % 2 ? data.length : 500_000);
        }
      }
      // Handles close asynchronously after the stream's own close.
      for (let i = 0; i < 50 && (await openFds()) > before; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(await openFds(), before, 'every file handle was closed');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('exactLengthStream', () => {
  const wrap = (err: unknown) => new ObjectStoreError(`wrapped: ${err instanceof Error ? err.message : String(err)}`);
  const chunks = (n: number) => Array.from({ length: n }, (_, i) => Buffer.alloc(10, i));

  it('passes exactly the expected bytes through', async () => {
    const out = exactLengthStream(Readable.from(chunks(3), { objectMode: false }), 30, 'test', wrap);
    assert.deepEqual(await readAll(out), Buffer.concat(chunks(3)));
  });

  it('a source failing mid-stream destroys the stream with an ObjectStoreError', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(10);
      throw new Error('connection reset');
    }
    const out = exactLengthStream(Readable.from(failing(), { objectMode: false }), 30, 'test', wrap);
    await assert.rejects(readAll(out), (err: unknown) => err instanceof ObjectStoreError && /wrapped: connection reset/.test(err.message));
  });

  it('a source that ends early, or yields too much, is an error, never a silent short read', async () => {
    await assert.rejects(readAll(exactLengthStream(Readable.from(chunks(2), { objectMode: false }), 30, 'short', wrap)), (err: unknown) => err instanceof ObjectStoreError && /ended after 20 of 30/.test(err.message));
    await assert.rejects(readAll(exactLengthStream(Readable.from(chunks(4), { objectMode: false }), 30, 'long', wrap)), ObjectStoreError);
  });

  it('a source closed without an error before its end is an error too', async () => {
    const source = new Readable({ read() {} });
    const out = exactLengthStream(source, 30, 'closed', wrap);
    source.push(Buffer.alloc(5));
    setImmediate(() => source.destroy());
    await assert.rejects(readAll(out), ObjectStoreError);
  });

  it('destroying the stream destroys its source', async () => {
    const source = new Readable({ read() {} });
    const out = exactLengthStream(source, 30, 'test', wrap);
    out.destroy();
    await once(source, 'close');
    assert.equal(source.destroyed, true);
  });
});
