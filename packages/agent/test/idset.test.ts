import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { SharedIdSet } from '../src/engine/idset.js';

test('add, has, duplicates, growth keep every id', () => {
  const s = new SharedIdSet(16);
  const ids = Array.from({ length: 20_000 }, () => randomBytes(32).toString('hex'));
  for (const id of ids) assert.equal(s.add(id), true);
  for (const id of ids.slice(0, 100)) assert.equal(s.add(id), false, 'duplicate refused');
  assert.equal(s.size, ids.length);
  for (const id of ids) assert.equal(s.has(id), true);
  assert.equal(s.has(randomBytes(32).toString('hex')), false);
});

test('ids that collide on the first bytes are told apart', () => {
  const s = new SharedIdSet(16);
  const a = Buffer.alloc(32, 1);
  const b = Buffer.from(a);
  b[31] = 2;
  s.addBytes(a);
  assert.equal(s.hasBytes(a), true);
  assert.equal(s.hasBytes(b), false);
  s.addBytes(b);
  assert.equal(s.hasBytes(b), true);
});

test('another thread sees the ids through the shared buffer', async () => {
  const s = new SharedIdSet(1024);
  const ids = Array.from({ length: 500 }, () => randomBytes(32).toString('hex'));
  ids.forEach((id) => s.add(id));
  const url = new URL('../src/engine/idset.js', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ SharedIdSet }) => {
      const set = new SharedIdSet(workerData.sab);
      parentPort.postMessage(workerData.ids.map((id) => set.has(id)).concat(set.has('00'.repeat(32))));
    });`;
  const w = new Worker(code, { eval: true, workerData: { sab: s.buffer, ids } });
  const seen = (await new Promise((r) => w.once('message', r))) as boolean[];
  await w.terminate();
  assert.deepEqual(seen, [...ids.map(() => true), false]);
});
