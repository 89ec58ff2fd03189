import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BlobCodec, decodeRefs, encodeRefs, PackBuilder, verifyPack, type ChunkId, type ChunkLocation, type ChunksExistResponse, type ChunksLocateResponse, type Subkeys } from '@coffre/core';
import { sql } from 'kysely';
import { GC_DEFAULTS, gcOptionsFromEnv, SESSION_IDLE_MS, TOUCH_GRANULARITY_MS } from '../src/gc/config.js';
import { gcCutoff } from '../src/gc/cutoff.js';
import { forgetSnapshot } from '../src/gc/forget.js';
import { runGc, type GcOptions, type GcReport, type GcStep } from '../src/gc/gc.js';
import { IdSet } from '../src/gc/idset.js';
import { findJob } from '../src/jobs/index.js';
import { packKey, snapshotRefsKey } from '../src/object-keys.js';
import type { ObjectStore } from '../src/store/object-store.js';
import type { CustomerId } from '../src/types.js';
import { assertError, buildCustomer, buildPack, enrollMachine, snapshotRequest, testKeys, testServer, type TestMachine, type TestPack, type TestServer } from './kit.js';

const HOUR = 3_600_000;

describe('gc: the cutoff rule', () => {
  const start = new Date('2026-03-10T12:00:00.000Z');
  const at = (h: number) => new Date(start.getTime() + h * HOUR).toISOString();

  it('without sessions the cutoff is start − grace, compared with stored touches minus the granularity', () => {
    const c = gcCutoff(start, 24 * HOUR, []);
    assert.equal(c.cutoff.toISOString(), at(-24));
    assert.equal(c.touchCutoff, new Date(start.getTime() - 24 * HOUR - TOUCH_GRANULARITY_MS).toISOString());
    assert.equal(c.oldestSession, null);
    assert.equal(gcCutoff(start, 0, []).cutoff.toISOString(), start.toISOString());
  });

  it('the oldest open upload session holds it back; an abandoned one does not', () => {
    const sessions = [
      { startedAt: at(-30), lastSeenAt: at(-1) }, // open, older than the grace: wins
      { startedAt: at(-2), lastSeenAt: at(-0.5) },
      { startedAt: at(-50), lastSeenAt: at(-7) }, // idle for 7 h: abandoned
    ];
    const c = gcCutoff(start, 24 * HOUR, sessions);
    assert.equal(c.cutoff.toISOString(), at(-30));
    assert.equal(c.oldestSession, at(-30));
    assert.equal(c.abandoned, 1);
    // A recent session does not move the cutoff later than start − grace.
    assert.equal(gcCutoff(start, 24 * HOUR, [sessions[1]!]).cutoff.toISOString(), at(-24));
    // With no grace at all, an open session still protects what it touched.
    assert.equal(gcCutoff(start, 0, [sessions[1]!]).cutoff.toISOString(), at(-2));
    assert.equal(SESSION_IDLE_MS, 6 * HOUR);
  });

  it('refuses a negative grace', () => {
    assert.throws(() => gcCutoff(start, -1, []), RangeError);
  });

  it('reads the test/operations knobs strictly', () => {
    assert.deepEqual(gcOptionsFromEnv({}), {});
    assert.deepEqual(gcOptionsFromEnv({ COFFRE_GC_GRACE_SECONDS: '0', COFFRE_GC_REPACK_BELOW: '0.25', COFFRE_GC_REPACK_DELETE_DELAY_SECONDS: '5', COFFRE_GC_ORPHAN_AGE_SECONDS: '60', COFFRE_GC_DRY_RUN: '1' }), {
      graceMs: 0,
      repackBelow: 0.25,
      repackDeleteDelayMs: 5000,
      orphanAgeMs: 60_000,
      dryRun: true,
    });
    assert.throws(() => gcOptionsFromEnv({ COFFRE_GC_GRACE_SECONDS: 'soon' }), /COFFRE_GC_GRACE_SECONDS/);
    assert.throws(() => gcOptionsFromEnv({ COFFRE_GC_REPACK_BELOW: '2' }), /COFFRE_GC_REPACK_BELOW/);
    assert.equal(GC_DEFAULTS.graceMs, 24 * HOUR);
  });

  it('is a server job, daily at 03:00', () => {
    const job = findJob('gc');
    assert.ok(job);
    assert.equal(job.defaultSchedule, '0 3 * * *');
  });
});

describe('gc: the live-set id table', () => {
  it('holds many ids, grows, and answers membership exactly', () => {
    const set = new IdSet(4);
    const ids = Array.from({ length: 20_000 }, () => randomBytes(32));
    for (const id of ids) assert.equal(set.addAt(id), true);
    for (const id of ids.slice(0, 100)) assert.equal(set.addAt(id), false);
    assert.equal(set.size, ids.length);
    for (const id of ids) assert.equal(set.has(id), true);
    for (let i = 0; i < 1000; i++) assert.equal(set.has(randomBytes(32)), false);
    // Same first bytes (same slot), different ids.
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 1);
    b[31] = 2;
    set.addAt(a);
    assert.equal(set.has(a), true);
    assert.equal(set.has(b), false);
    assert.equal(set.has(b.toString('hex')), false);
  });

  it('adds a whole reference list', () => {
    const ids = Array.from({ length: 50 }, () => randomBytes(32).toString('hex') as ChunkId);
    const set = new IdSet();
    set.addAll(encodeRefs(ids));
    assert.equal(set.size, 50);
    for (const id of ids) assert.equal(set.has(id), true);
  });
});

/** One customer with one machine and its keys, on a shared test server. */
interface Fx {
  readonly ts: TestServer;
  readonly m: TestMachine;
  readonly keys: Subkeys;
  readonly customerId: CustomerId;
  readonly store: ObjectStore;
  gc(opts?: GcOptions): Promise<GcReport>;
}

async function fixture(ts: TestServer): Promise<Fx> {
  const c = await buildCustomer(ts);
  const m = await enrollMachine(ts, c.name);
  const store = ts.admin.store;
  const customerId = m.customerId as CustomerId;
  return {
    ts,
    m,
    keys: testKeys(),
    customerId,
    store,
    // GC from another database connection, as `coffre-server job run gc` next to the server.
    gc: (opts = {}) => runGc({ db: ts.admin.db, store, clock: ts.clock.now, log: () => undefined }, { customerIds: [customerId], graceMs: HOUR, repackBelow: 0, ...opts }),
  };
}

const plains = (n: number, size = 2000): Buffer[] => Array.from({ length: n }, () => randomBytes(size));

async function upload(fx: Fx, data: readonly Buffer[], m: TestMachine = fx.m): Promise<TestPack> {
  const pack = buildPack(fx.keys, data);
  const res = await m.request('PUT', `/packs/${pack.id}`, { body: pack.data });
  assert.equal(res.status, 200, res.body.toString());
  return pack;
}

async function commit(fx: Fx, ids: readonly ChunkId[], m: TestMachine = fx.m): Promise<string> {
  const req = snapshotRequest(fx.keys, m.machineId, [...ids]);
  const res = await m.request('POST', '/snapshots', { json: req });
  assert.equal(res.status, 201, res.body.toString());
  return req.manifest.id;
}

async function exists(m: TestMachine, ids: readonly string[]): Promise<readonly boolean[]> {
  const res = await m.request('POST', '/chunks/exists', { json: { ids } });
  assert.equal(res.status, 200, res.body.toString());
  return res.json<ChunksExistResponse>().exists;
}

async function locate(m: TestMachine, ids: readonly string[]): Promise<readonly (ChunkLocation | null)[]> {
  return (await m.request('POST', '/chunks/locate', { json: { ids } })).json<ChunksLocateResponse>().locations;
}

async function readBlob(m: TestMachine, loc: ChunkLocation): Promise<Buffer> {
  const res = await m.request('GET', `/packs/${loc.pack}`, { headers: { range: `bytes=${loc.offset}-${loc.offset + loc.length - 1}` } });
  assert.equal(res.status, 206, `GET /packs/${loc.pack}: ${res.status} ${res.body.toString().slice(0, 200)}`);
  return res.body;
}

/**
 * Restores a snapshot as an agent would, minus the trees: its reference list, where each
 * chunk is, each blob fetched by range, its SHA-256 checked against the pack header, and
 * decrypted and authenticated with the customer's key (which also checks the chunk id).
 */
async function assertRestorable(fx: Fx, snapshotId: string): Promise<void> {
  const refs = await fx.m.request('GET', `/snapshots/${snapshotId}/refs`);
  assert.equal(refs.status, 200, `snapshot ${snapshotId} refs`);
  const ids = decodeRefs(refs.body);
  const locs = await locate(fx.m, ids);
  const codec = new BlobCodec(fx.keys.encryption);
  const headers = new Map<string, Map<string, string>>();
  for (const [i, id] of ids.entries()) {
    const loc = locs[i];
    assert.ok(loc, `chunk ${id.slice(0, 12)} of snapshot ${snapshotId} is missing`);
    if (!headers.has(loc.pack)) {
      const whole = await fx.m.request('GET', `/packs/${loc.pack}`);
      assert.equal(whole.status, 200);
      headers.set(loc.pack, new Map(verifyPack(whole.body, loc.pack).map((e) => [e.id as string, e.sha256])));
    }
    const blob = await readBlob(fx.m, loc);
    assert.equal(createHash('sha256').update(blob).digest('hex'), headers.get(loc.pack)!.get(id), `blob ${id.slice(0, 12)} matches its pack header`);
    codec.decode(id, blob, 1 << 20, fx.keys.chunkId);
  }
}

async function chunkRows(fx: Fx): Promise<Map<string, string>> {
  const rows = await fx.ts.admin.db
    .selectFrom('chunks')
    .innerJoin('packs', 'packs.seq', 'chunks.pack_seq')
    .select(['chunks.id', 'packs.id as pack_id'])
    .where('packs.customer_id', '=', fx.customerId)
    .execute();
  return new Map(rows.map((r) => [r.id.toString('hex'), r.pack_id]));
}

async function packIds(fx: Fx): Promise<string[]> {
  return (await fx.ts.admin.db.selectFrom('packs').select('id').where('customer_id', '=', fx.customerId).orderBy('id').execute()).map((r) => r.id);
}

async function storedPackObjects(fx: Fx): Promise<string[]> {
  const out: string[] = [];
  for await (const o of fx.store.list(`packs/${fx.customerId}/`)) out.push(o.key.slice(o.key.lastIndexOf('/') + 1));
  return out.sort();
}

/** Every indexed pack has its object, every object is indexed or tombstoned, every row's blob reads back. */
async function assertConsistent(fx: Fx, opts: { allowTombstonedObjects?: boolean } = {}): Promise<void> {
  const packs = await packIds(fx);
  const objects = await storedPackObjects(fx);
  for (const p of packs) assert.ok(objects.includes(p), `indexed pack ${p.slice(0, 12)} has its object`);
  const tombstoned = new Set((await fx.ts.admin.db.selectFrom('pack_tombstones').select('id').where('customer_id', '=', fx.customerId).where('object_deleted_at', 'is', null).execute()).map((r) => r.id));
  for (const o of objects) {
    if (packs.includes(o)) continue;
    assert.ok(opts.allowTombstonedObjects && tombstoned.has(o), `object ${o.slice(0, 12)} is neither indexed nor awaiting deletion`);
  }
}

describe('gc on a running server', () => {
  let ts: TestServer;
  before(async () => {
    ts = await testServer();
  });
  after(() => ts.close());

  it('reclaims chunks no snapshot needs once untouched past the grace, keeps live ones, and is idempotent', async () => {
    const fx = await fixture(ts);
    const p1 = await upload(fx, plains(3));
    const p2 = await upload(fx, plains(3));
    const [a, b, c] = p1.chunkIds as [ChunkId, ChunkId, ChunkId];
    const [d, e] = p2.chunkIds as [ChunkId, ChunkId, ChunkId]; // the third is never referenced
    const s1 = await commit(fx, [a, b, c, d]);
    const s2 = await commit(fx, [d, e]);
    assert.equal(await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, s1), true);

    // Nothing is old enough yet: the grace protects chunks touched within it.
    let r = await fx.gc();
    assert.equal(r.counts.chunksDeleted, 0);
    assert.equal(r.counts.packsDeleted, 0);
    assert.equal(r.counts.snapshots, 1);

    ts.clock.advance(2 * HOUR);
    const dry = await fx.gc({ dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.equal(dry.counts.chunksDeleted, 4);
    assert.equal(dry.counts.packsDeleted, 1);
    assert.equal(dry.counts.bytesReclaimed, p1.data.length);
    assert.ok(dry.items.some((i) => i.detail.startsWith('(dry run) would have deleted pack')));
    assert.equal((await chunkRows(fx)).size, 6, 'a dry run changes nothing');

    r = await fx.gc();
    assert.deepEqual(
      { chunksDeleted: r.counts.chunksDeleted, packsDeleted: r.counts.packsDeleted, bytesReclaimed: r.counts.bytesReclaimed, objectsDeleted: r.counts.objectsDeleted, failed: r.counts.failed },
      { chunksDeleted: 4, packsDeleted: 1, bytesReclaimed: p1.data.length, objectsDeleted: 1, failed: 0 },
    );
    assert.deepEqual([...(await chunkRows(fx)).keys()].sort(), [d, e].sort());
    assert.deepEqual(await packIds(fx), [p2.id]);
    assert.deepEqual(await storedPackObjects(fx), [p2.id]);
    await assertRestorable(fx, s2);
    await assertConsistent(fx);

    // Idempotent: a second run finds nothing to do.
    r = await fx.gc();
    assert.equal(r.counts.chunksDeleted + r.counts.packsDeleted + r.counts.objectsDeleted, 0);

    // The deleted pack's id is never indexed again; its chunks come back in a new pack.
    const again = await fx.m.request('PUT', `/packs/${p1.id}`, { body: p1.data });
    assert.equal(assertError(again, 409, 'CONFLICT').details?.id, p1.id);
    assertError(await fx.m.request('GET', `/packs/${p1.id}`), 404, 'NOT_FOUND');
    assert.deepEqual(await exists(fx.m, [a]), [false]);
    assertError(await fx.m.request('POST', '/snapshots', { json: snapshotRequest(fx.keys, fx.m.machineId, [a, d]) }), 409, 'MISSING_CHUNKS');
  });

  it('never deletes what a snapshot in the recycle bin references', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(2));
    const s = await commit(fx, p.chunkIds);
    await sql`update snapshots set deleted_at = ${ts.clock.now().toISOString()} where customer_id = ${fx.customerId} and id = ${s}`.execute(ts.admin.db);
    ts.clock.advance(48 * HOUR);
    const r = await fx.gc({ graceMs: 0 });
    assert.equal(r.counts.chunksDeleted, 0);
    assert.equal(r.counts.snapshots, 1);
    // Taken out of the bin (as an administrator would), it restores whole.
    await sql`update snapshots set deleted_at = null where customer_id = ${fx.customerId} and id = ${s}`.execute(ts.admin.db);
    await assertRestorable(fx, s);
  });

  it('keeps a chunk answered "exists" while GC runs; the commit that uses it then succeeds', async () => {
    const fx = await fixture(ts);
    const other = await enrollMachine(ts, (await ts.admin.db.selectFrom('orgs').select('name').where('id', '=', fx.customerId).executeTakeFirstOrThrow()).name);
    const p = await upload(fx, plains(2));
    const [x, y] = p.chunkIds as [ChunkId, ChunkId];
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, [x, y]));
    ts.clock.advance(2 * HOUR);

    let answered: readonly boolean[] = [];
    const r = await fx.gc({
      hook: async (step) => {
        // GC has read the live set and found x and y dead; another machine now asks about x.
        if (step === 'before-delete') answered = await exists(other, [x]);
      },
    });
    assert.deepEqual(answered, [true]);
    assert.equal(r.counts.chunksDeleted, 1, 'only y went');
    assert.deepEqual([...(await chunkRows(fx)).keys()], [x]);
    const s = await commit(fx, [x], other);
    await assertRestorable(fx, s);
  });

  it('keeps the chunks of a snapshot committed while GC runs', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(3));
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, p.chunkIds));
    ts.clock.advance(2 * HOUR);
    let s = '';
    const r = await fx.gc({
      hook: async (step) => {
        // The commit lands after GC read the live set (its agent's cache knew the chunks: no "exists" asked).
        if (step === 'before-delete' && !s) s = await commit(fx, p.chunkIds.slice(0, 2));
      },
    });
    assert.equal(r.counts.chunksDeleted, 1);
    await assertRestorable(fx, s);
  });

  it('an open upload session holds the cutoff back; a commit closes it; an abandoned one stops counting', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(2));
    const [x, y] = p.chunkIds as [ChunkId, ChunkId];
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, [x, y]));
    ts.clock.advance(2 * HOUR);
    // A backup starts: the agent learns x exists, and will reference it later.
    assert.deepEqual(await exists(fx.m, [x]), [true]);
    ts.clock.advance(2 * HOUR); // a long backup: x untouched for 2 h, more than the grace below
    let r = await fx.gc({ graceMs: 0 });
    assert.equal(r.counts.sessionsOpen, 1);
    assert.deepEqual([...(await chunkRows(fx)).keys()], [x], 'x is kept for the open session, y goes');
    // The session goes when the machine commits; x is then a chunk like any other.
    const keep = await upload(fx, plains(1));
    await commit(fx, keep.chunkIds);
    assert.equal((await ts.admin.db.selectFrom('upload_sessions').selectAll().where('customer_id', '=', fx.customerId).execute()).length, 0);
    ts.clock.advance(2 * HOUR);
    r = await fx.gc({ graceMs: 0 });
    assert.equal(r.counts.chunksDeleted, 1);
    assert.deepEqual([...(await chunkRows(fx)).keys()], keep.chunkIds);

    // An abandoned session (no request for longer than the idle timeout) holds nothing back.
    const z = await upload(fx, plains(1));
    ts.clock.advance(SESSION_IDLE_MS + HOUR);
    r = await fx.gc({ graceMs: 0 });
    assert.equal(r.counts.sessionsAbandoned, 1);
    assert.equal(r.counts.packsDeleted, 1);
    assert.deepEqual(await exists(fx.m, z.chunkIds), [false]);
  });

  it('repacks a sparse pack in the same format; snapshots restore from it; the old object is served until the delay', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(10));
    const keep = p.chunkIds.slice(3, 5);
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, p.chunkIds));
    const s = await commit(fx, keep);
    const before = await locate(fx.m, keep);
    ts.clock.advance(2 * HOUR);

    const r = await fx.gc({ repackBelow: 0.5, repackDeleteDelayMs: HOUR });
    assert.equal(r.counts.chunksDeleted, 8);
    assert.equal(r.counts.packsRepacked, 1);
    const after = await locate(fx.m, keep);
    const newPack = after[0]!.pack;
    assert.notEqual(newPack, p.id);
    assert.ok(after.every((l) => l!.pack === newPack));
    assert.ok(r.counts.bytesReclaimed > 0 && r.counts.bytesReclaimed < p.data.length);
    // A valid pack of the same format: the header verifies, ids and blobs are the kept ones, byte for byte.
    const whole = (await fx.m.request('GET', `/packs/${newPack}`)).body;
    const entries = verifyPack(whole, newPack);
    assert.deepEqual(entries.map((e) => e.id).sort(), [...keep].sort());
    for (const e of entries) {
      const old = p.entries.find((o) => o.id === e.id)!;
      assert.equal(e.sha256, old.sha256);
      assert.deepEqual(whole.subarray(e.offset, e.offset + e.length), p.data.subarray(old.offset, old.offset + old.length));
    }
    await assertRestorable(fx, s);
    // A restore that located its chunks before the repack still reads them from the old pack.
    for (const [i, loc] of before.entries()) new BlobCodec(fx.keys.encryption).decode(keep[i]!, await readBlob(fx.m, loc!), 1 << 20, fx.keys.chunkId);
    await assertConsistent(fx, { allowTombstonedObjects: true });

    ts.clock.advance(2 * HOUR);
    const later = await fx.gc({ repackBelow: 0.5 });
    assert.equal(later.counts.objectsDeleted, 1);
    assertError(await fx.m.request('GET', `/packs/${p.id}`), 404, 'NOT_FOUND');
    await assertRestorable(fx, s);
    await assertConsistent(fx);
    assert.equal((await fx.gc({ repackBelow: 0.5 })).counts.packsRepacked, 0, 'the new pack is not sparse');
  });

  for (const step of ['before-delete', 'rows-deleted', 'repack-written', 'repack-indexed', 'object-delete'] as const satisfies readonly GcStep[]) {
    it(`a crash at "${step}" leaves every snapshot readable, and the next run completes`, async () => {
      const fx = await fixture(ts);
      const sparse = await upload(fx, plains(8));
      const dead = await upload(fx, plains(2));
      const s0 = await commit(fx, [...sparse.chunkIds, ...dead.chunkIds]);
      const s = await commit(fx, sparse.chunkIds.slice(0, 2));
      await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, s0);
      ts.clock.advance(2 * HOUR);
      const opts = { repackBelow: 0.5, repackDeleteDelayMs: 0, orphanAgeMs: 0 };
      let crashed = false;
      await assert.rejects(
        fx.gc({
          ...opts,
          hook: (at) => {
            if (at === step && !crashed) {
              crashed = true;
              throw new Error(`crash at ${step}`);
            }
          },
        }),
        new RegExp(`crash at ${step}`),
      );
      assert.ok(crashed);
      await assertRestorable(fx, s);
      // The next run, from whatever state the crash left: every leftover goes.
      const r = await fx.gc(opts);
      assert.equal(r.counts.failed, 0, JSON.stringify(r.items));
      await assertRestorable(fx, s);
      await assertConsistent(fx);
      const rows = await chunkRows(fx);
      assert.deepEqual([...rows.keys()].sort(), sparse.chunkIds.slice(0, 2).sort());
      assert.deepEqual(await packIds(fx), [...new Set(rows.values())], 'one pack left: the repacked one');
      assert.equal((await fx.gc(opts)).counts.objectsDeleted, 0, 'nothing left over');
    });
  }

  it('deletes a pack object nobody indexed, once seen orphaned long enough, and never indexes its id afterwards', async () => {
    const fx = await fixture(ts);
    // A crash between an upload's rename and its indexing leaves exactly this.
    const orphan = buildPack(fx.keys);
    await fx.store.put(packKey(fx.customerId, orphan.id), orphan.data);
    let r = await fx.gc({ orphanAgeMs: HOUR });
    assert.equal(r.counts.orphansFound, 1);
    assert.equal(r.counts.orphansDeleted, 0);
    assert.ok((await storedPackObjects(fx)).includes(orphan.id));
    ts.clock.advance(2 * HOUR);
    r = await fx.gc({ orphanAgeMs: HOUR });
    assert.equal(r.counts.orphansDeleted, 1);
    assert.deepEqual(await storedPackObjects(fx), []);
    assertError(await fx.m.request('PUT', `/packs/${orphan.id}`, { body: orphan.data }), 409, 'CONFLICT');
    // A pack object that gets indexed meanwhile is not an orphan any more.
    const late = buildPack(fx.keys);
    await fx.store.put(packKey(fx.customerId, late.id), late.data);
    assert.equal((await fx.gc({ orphanAgeMs: HOUR })).counts.orphansFound, 1);
    assert.equal((await fx.m.request('PUT', `/packs/${late.id}`, { body: late.data })).status, 200);
    await commit(fx, late.chunkIds);
    ts.clock.advance(2 * HOUR);
    r = await fx.gc({ orphanAgeMs: HOUR });
    assert.equal(r.counts.orphansFound, 0);
    assert.equal((await ts.admin.db.selectFrom('gc_orphans').selectAll().where('customer_id', '=', fx.customerId).execute()).length, 0);
  });

  it('stops for a customer whose reference list is missing or altered, and deletes nothing of it', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(2));
    const s = await commit(fx, p.chunkIds);
    await upload(fx, plains(1)); // garbage: no snapshot references it
    await commit(fx, (await upload(fx, plains(1))).chunkIds);
    ts.clock.advance(2 * HOUR);
    const refs = await fx.store.get(snapshotRefsKey(fx.customerId, s));
    await fx.store.put(snapshotRefsKey(fx.customerId, s), refs.subarray(32));
    let r = await fx.gc();
    assert.equal(r.counts.failed, 1);
    assert.match(r.items.find((i) => i.outcome === 'failed')!.detail, /does not match its manifest; nothing collected/);
    assert.equal(r.counts.chunksDeleted, 0);
    await fx.store.delete(snapshotRefsKey(fx.customerId, s));
    r = await fx.gc();
    assert.match(r.items.find((i) => i.outcome === 'failed')!.detail, /missing from the object store/);
    assert.equal(r.counts.chunksDeleted, 0);
    await fx.store.put(snapshotRefsKey(fx.customerId, s), refs);
    r = await fx.gc();
    assert.equal(r.counts.failed, 0);
    assert.equal(r.counts.packsDeleted, 1, 'the garbage pack goes once the lists are whole again');
    await assertRestorable(fx, s);
  });

  it('re-sending an indexed pack touches its chunks', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(2));
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, p.chunkIds));
    ts.clock.advance(2 * HOUR);
    assert.equal((await fx.m.request('PUT', `/packs/${p.id}`, { body: p.data })).status, 200);
    await commit(fx, (await upload(fx, plains(1))).chunkIds); // closes the session
    let r = await fx.gc();
    assert.equal(r.counts.chunksDeleted, 0, 'touched by the re-upload within the grace');
    ts.clock.advance(2 * HOUR);
    r = await fx.gc();
    assert.equal(r.counts.packsDeleted, 1);
  });

  it('re-sending a pack GC repacked meanwhile succeeds when its chunks are all stored elsewhere', async () => {
    const fx = await fixture(ts);
    const data = plains(6);
    const first = await upload(fx, data.slice(0, 4));
    // A second pack repeating four of those chunks: only its last two get rows; it is sparse.
    const p = await upload(fx, data);
    const s = await commit(fx, p.chunkIds);
    assert.equal((await fx.gc({ repackBelow: 0.5 })).counts.packsRepacked, 1);
    assert.deepEqual(await packIds(fx), [first.id, (await locate(fx.m, [p.chunkIds[5]!]))[0]!.pack].sort());
    // A retry of that upload arrives late: every chunk it holds is stored (and now touched).
    const res = await fx.m.request('PUT', `/packs/${p.id}`, { body: p.data });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.json<{ newChunks: number }>().newChunks, 0);
    await assertRestorable(fx, s);
    // Once some of its chunks are gone too, that pack cannot come back.
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, s);
    await commit(fx, first.chunkIds);
    ts.clock.advance(2 * HOUR);
    assert.equal((await fx.gc()).counts.packsDeleted, 1);
    assertError(await fx.m.request('PUT', `/packs/${p.id}`, { body: p.data }), 409, 'CONFLICT');
  });

  it('re-sending a pack some of whose dead rows GC deleted indexes them again', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(4));
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, p.chunkIds));
    const s = await commit(fx, p.chunkIds.slice(0, 2));
    ts.clock.advance(2 * HOUR);
    assert.equal((await fx.gc()).counts.chunksDeleted, 2);
    assert.deepEqual(await exists(fx.m, p.chunkIds), [true, true, false, false]);
    const res = await fx.m.request('PUT', `/packs/${p.id}`, { body: p.data });
    assert.equal(res.json<{ newChunks: number }>().newChunks, 2);
    assert.deepEqual(await exists(fx.m, p.chunkIds), [true, true, true, true]);
    await assertRestorable(fx, await commit(fx, p.chunkIds));
    await assertRestorable(fx, s);
  });

  it('one GC run at a time: a second run while the lease is held does nothing', async () => {
    const fx = await fixture(ts);
    let inner: GcReport | null = null;
    const p = await upload(fx, plains(1));
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, p.chunkIds));
    ts.clock.advance(2 * HOUR);
    await fx.gc({
      hook: async (step) => {
        if (step === 'before-delete') inner = await fx.gc();
      },
    });
    assert.ok(inner);
    assert.equal((inner as GcReport).skipped, 'another GC run is in progress');
  });
});

describe('gc and a racing snapshot commit', () => {
  let ts: TestServer;
  /** While armed, the next put of a snapshot's reference list waits here (after the commit checked its chunks). */
  let gate: { reached: () => void; release: Promise<void> } | null = null;
  before(async () => {
    ts = await testServer({
      wrapStore: (store) => ({
        ...store,
        list: (prefix) => store.list(prefix),
        get: (key, range) => store.get(key, range),
        getStream: (key, range) => store.getStream(key, range),
        stat: (key) => store.stat(key),
        delete: (key) => store.delete(key),
        createUpload: (key, o) => store.createUpload(key, o),
        purgeTemporary: (olderThan) => store.purgeTemporary(olderThan),
        put: async (key, data) => {
          const g = gate;
          if (g && key.startsWith('snapshots/')) {
            gate = null;
            g.reached();
            await g.release;
          }
          return store.put(key, data);
        },
      }),
    });
  });
  after(() => ts.close());

  it('a commit that checked its chunks before GC deleted them is refused (409 MISSING_CHUNKS), never accepted', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(2));
    const [x, y] = p.chunkIds as [ChunkId, ChunkId];
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, [x, y]));
    ts.clock.advance(2 * HOUR);

    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    gate = { reached, release: new Promise<void>((r) => (release = r)) };
    // The agent's cache said x exists: it commits without asking. The server checks x: present.
    const req = snapshotRequest(fx.keys, fx.m.machineId, [x]);
    const pending = fx.m.request('POST', '/snapshots', { json: req });
    await atGate;
    // Meanwhile GC, which had not seen this snapshot, deletes x and y.
    const r = await fx.gc();
    assert.equal(r.counts.chunksDeleted, 2);
    release();
    const res = await pending;
    const err = assertError(res, 409, 'MISSING_CHUNKS');
    assert.deepEqual(err.details, { missing: [x], missingCount: 1 });
    assertError(await fx.m.request('GET', `/snapshots/${req.manifest.id}`), 404, 'NOT_FOUND');
    assert.equal(await fx.store.stat(snapshotRefsKey(fx.customerId, req.manifest.id)), null, 'no refs object left behind');

    // What the agent does next: upload x again, in a new pack, and commit.
    const builder = new PackBuilder();
    const e = p.entries.find((en) => en.id === x)!;
    builder.add(x, p.data.subarray(e.offset, e.offset + e.length));
    const again = builder.finish();
    assert.equal((await fx.m.request('PUT', `/packs/${again.id}`, { body: again.data })).status, 200);
    const retry = await fx.m.request('POST', '/snapshots', { json: req });
    assert.equal(retry.status, 201, retry.body.toString());
    await assertRestorable(fx, req.manifest.id);
  });

  it('a commit that lands before GC deletes is seen by GC, which keeps its chunks', async () => {
    const fx = await fixture(ts);
    const p = await upload(fx, plains(2));
    const [x, y] = p.chunkIds as [ChunkId, ChunkId];
    await forgetSnapshot({ db: ts.admin.db, store: fx.store }, fx.customerId, await commit(fx, [x, y]));
    ts.clock.advance(2 * HOUR);
    const req = snapshotRequest(fx.keys, fx.m.machineId, [x]);
    let status = 0;
    const r = await fx.gc({
      hook: async (step) => {
        if (step === 'before-delete' && status === 0) status = (await fx.m.request('POST', '/snapshots', { json: req })).status;
      },
    });
    assert.equal(status, 201);
    assert.equal(r.counts.chunksDeleted, 1);
    await assertRestorable(fx, req.manifest.id);
  });
});
