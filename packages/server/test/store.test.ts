import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
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
