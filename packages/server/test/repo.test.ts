import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CHUNKER, makeRecoverySlot, newMasterKey, newRecoveryKey, type KeySlot, type RepoConfig, type RepoResponse } from '@coffre/core';
import { assertError, buildCustomer, enrollMachine, type TestMachine, type TestServer, serverWithMachine } from './kit.js';

const config: RepoConfig = { v: 1, chunker: DEFAULT_CHUNKER, compression: 'zstd' };
const slot = (): KeySlot => makeRecoverySlot(newMasterKey(), newRecoveryKey().raw);

describe('repository config and key slots', () => {
  let ts: TestServer;
  let m: TestMachine;
  before(async () => {
    ({ ts, m } = await serverWithMachine());
  });
  after(() => ts.close());

  it('initialises once, returns config and slots as stored, and refuses a second init', async () => {
    const slots = [slot(), slot()];
    const init = await m.request('POST', '/repo/init', { json: { config, keySlots: slots } });
    assert.equal(init.status, 200, init.body.toString());
    assert.deepEqual(init.json(), { ok: true });
    const repo = (await m.request('GET', '/repo')).json<RepoResponse>();
    assert.deepEqual(repo.config, config);
    assert.deepEqual(repo.keySlots, slots);
    assertError(await m.request('POST', '/repo/init', { json: { config, keySlots: [slot()] } }), 409, 'CONFLICT');
  });

  it('appends key slots, refusing a duplicate id', async () => {
    const extra = slot();
    assert.equal((await m.request('POST', '/repo/key-slots', { json: { slot: extra } })).status, 200);
    const repo = (await m.request('GET', '/repo')).json<RepoResponse>();
    assert.deepEqual(repo.keySlots.at(-1), extra);
    assertError(await m.request('POST', '/repo/key-slots', { json: { slot: extra } }), 409, 'CONFLICT');
  });

  it('concurrent inits: exactly one wins', async () => {
    const other = await enrollMachine(ts, (await buildCustomer(ts)).name);
    const results = await Promise.all(Array.from({ length: 5 }, () => other.request('POST', '/repo/init', { json: { config, keySlots: [slot()] } })));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 409, 409, 409, 409]);
    assert.equal((await other.request('GET', '/repo')).json<RepoResponse>().keySlots.length, 1);
  });

  it('validates config and slots', async () => {
    const fresh = await enrollMachine(ts, (await buildCustomer(ts)).name);
    const bad: unknown[] = [
      { config: { ...config, compression: 'gzip' }, keySlots: [slot()] },
      { config: { ...config, v: 2 }, keySlots: [slot()] },
      { config: { ...config, chunker: { min: 1.5, avg: 1024, max: 4096 } }, keySlots: [slot()] },
      { config: { ...config, chunker: { min: 64, avg: 1000, max: 4096 } }, keySlots: [slot()] }, // avg not a power of two
      { config: { ...config, extra: true }, keySlots: [slot()] },
      { config, keySlots: [] },
      { config, keySlots: [{ kind: 'passphrase' }] },
      { config, keySlots: [{ ...slot(), pad: 'x'.repeat(16 * 1024) }] },
      { config, keySlots: Array.from({ length: 33 }, slot) },
    ];
    for (const body of bad) assertError(await fresh.request('POST', '/repo/init', { json: body }), 400, 'BAD_REQUEST');
    const dup = slot();
    assertError(await fresh.request('POST', '/repo/init', { json: { config, keySlots: [dup, dup] } }), 400, 'BAD_REQUEST');
    assert.equal((await fresh.request('GET', '/repo')).json<RepoResponse>().config, null, 'a refused init must store nothing');
    assertError(await fresh.request('POST', '/repo/key-slots', { json: { slot: slot() } }), 409, 'CONFLICT'); // no repo yet
  });

  it('caps a repository at 32 key slots', async () => {
    const fresh = await enrollMachine(ts, (await buildCustomer(ts)).name);
    assert.equal((await fresh.request('POST', '/repo/init', { json: { config, keySlots: Array.from({ length: 31 }, slot) } })).status, 200);
    assert.equal((await fresh.request('POST', '/repo/key-slots', { json: { slot: slot() } })).status, 200);
    assertError(await fresh.request('POST', '/repo/key-slots', { json: { slot: slot() } }), 409, 'CONFLICT');
  });

  it('has no route to delete a key slot', async () => {
    const repo = (await m.request('GET', '/repo')).json<RepoResponse>();
    const id = repo.keySlots[0]!.id;
    assertError(await m.request('DELETE', `/repo/key-slots/${id}`), 404, 'NOT_FOUND');
    assertError(await m.request('DELETE', '/repo/key-slots'), 404, 'NOT_FOUND');
    assert.equal((await m.request('GET', '/repo')).json<RepoResponse>().keySlots.length, repo.keySlots.length);
  });
});
