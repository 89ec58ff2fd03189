import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { createFsStore } from '../src/store/fs-store.js';
import { createMemoryStore } from '../src/store/memory-store.js';
import { storeConformance } from './store-conformance.js';

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
