import type { ChunkLocation, PackEntry } from '@coffre/core';
import { staleBefore } from '../../gc/cutoff.js';
import type { CustomerId } from '../../types.js';
import { pow2Batches, QueryTemplates, withParameters } from '../batch.js';
import type { Database } from '../database.js';
import { customerSeqOf, nextSequence } from './sequences.js';
import { engineOf, LockName, writeTransaction } from '../engine.js';

/**
 * The pack id was removed from the index by GC (docs/GC.md): it may never be indexed again,
 * since GC may delete its object at any moment. The agent uploads its chunks in a new pack.
 */
export class PackTombstonedError extends Error {
  override readonly name = 'PackTombstonedError';
  constructor(readonly packId: string) {
    super(`pack ${packId} was garbage-collected and cannot be indexed again`);
  }
}

/** True when GC removed this pack id from the index (its object may be deleted at any moment). */
export async function isPackTombstoned(db: Database, customerId: CustomerId, packId: string): Promise<boolean> {
  const row = await db.selectFrom('pack_tombstones').select('id').where('customer_id', '=', customerId).where('id', '=', packId).executeTakeFirst();
  return row !== undefined;
}

/**
 * Rows per chunk insert: 7 parameters a row, 1,792 a query, far below SQLite's (32,766)
 * and PostgreSQL's (65,535) limits. A power of two (see pow2Batches).
 */
export const CHUNK_INSERT_BATCH = 256;
/** Ids per IN-list of a chunk lookup (plus the customer id). A power of two. */
export const CHUNK_LOOKUP_BATCH = 512;

const templates = new QueryTemplates();
const CHUNK_COLUMNS = 7;

const raw = (hex: string): Buffer => Buffer.from(hex, 'hex');

/** Size of a pack of this customer, or null if it is not indexed. */
export async function findPack(db: Database, customerId: CustomerId, packId: string): Promise<{ size: number; chunkCount: number } | null> {
  const row = await db
    .selectFrom('packs')
    .select(['size', 'chunk_count'])
    .where('customer_id', '=', customerId)
    .where('id', '=', packId)
    .executeTakeFirst();
  return row ? { size: Number(row.size), chunkCount: Number(row.chunk_count) } : null;
}

/** `insert into chunks … values (7 placeholders) × rows on conflict do nothing`, compiled once per row count. */
function insertChunksTemplate(db: Database, rows: number) {
  return templates.get(db, `insert-chunks/${rows}`, () => {
    // Distinct placeholder objects: the order check compares them by identity.
    const values = Array.from({ length: rows }, (_, i) => ({
      pack_seq: -7 * i - 1,
      offset: -7 * i - 2,
      touched_ms: -7 * i - 3,
      customer_seq: -7 * i - 4,
      length: -7 * i - 5,
      id: Buffer.from(`i${i}`),
      sha256: Buffer.from(`s${i}`),
    }));
    const compiled = db
      .insertInto('chunks')
      .values(values)
      .onConflict((oc) => oc.columns(['customer_seq', 'id']).doNothing())
      .compile();
    return { compiled, expected: values.flatMap((v) => [v.pack_seq, v.offset, v.touched_ms, v.customer_seq, v.length, v.id, v.sha256]) };
  });
}

/** The customer's number in the chunk index; throws if the customer does not exist. */
async function customerSeq(db: Database, customerId: CustomerId): Promise<number> {
  const row = await db.selectFrom('customers').select('seq').where('id', '=', customerId).executeTakeFirst();
  if (!row) throw new Error(`customer ${customerId} does not exist`);
  return Number(row.seq);
}

/**
 * Indexes a pack whose object is already durable, in one transaction. Idempotent: the
 * pack row and chunk ids already indexed are left alone (a chunk keeps its first
 * location). Returns how many chunk ids were new. The chunk rows go in as multi-row
 * inserts compiled once per batch size and re-run with new parameters.
 *
 * GC (docs/GC.md): new rows are touched now, and so are the rows of ids already indexed
 * elsewhere (the agent will reference them); a pack id GC removed from the index is
 * refused (PackTombstonedError), checked in this same transaction so that GC's deletion
 * of the object can never race with an index entry for it.
 */
export async function indexPack(
  db: Database,
  a: { customerId: CustomerId; packId: string; size: number; entries: readonly PackEntry[]; now: string },
): Promise<number> {
  // A number for the pack (wasted if the pack is already indexed). On PostgreSQL taken
  // before the transaction: the counter is shared by every customer, its row lock must not
  // be held while a pack is indexed. SQLite has one writer anyway: taken inside.
  const early = engineOf(db) === 'postgres' ? await nextSequence(db, 'packs') : undefined;
  // The customer's index: the tombstone check and the indexing must not interleave with GC tombstoning this id.
  return writeTransaction(db, [LockName.customer(a.customerId)], async (trx) => {
    if (await isPackTombstoned(trx, a.customerId, a.packId)) throw new PackTombstonedError(a.packId);
    const customer = await customerSeq(trx, a.customerId);
    await trx
      .insertInto('packs')
      .values({ customer_id: a.customerId, id: a.packId, seq: early ?? (await nextSequence(trx, 'packs')), size: a.size, chunk_count: a.entries.length, created_at: a.now })
      .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
      .execute();
    const pack = Number((await trx.selectFrom('packs').select('seq').where('customer_id', '=', a.customerId).where('id', '=', a.packId).executeTakeFirstOrThrow()).seq);
    const nowMs = Date.parse(a.now);
    let inserted = 0;
    for (const batch of pow2Batches(a.entries, CHUNK_INSERT_BATCH)) {
      const params: unknown[] = new Array(batch.length * CHUNK_COLUMNS);
      let p = 0;
      for (const e of batch) {
        params[p++] = pack;
        params[p++] = e.offset;
        params[p++] = nowMs;
        params[p++] = customer;
        params[p++] = e.length;
        params[p++] = raw(e.id);
        params[p++] = raw(e.sha256);
      }
      const res = await trx.executeQuery(withParameters(insertChunksTemplate(db, batch.length), params));
      inserted += Number(res.numAffectedRows ?? 0n);
    }
    if (inserted < a.entries.length) await touchChunkRows(trx, customer, a.entries.map((e) => e.id), nowMs);
    return inserted;
  });
}

/**
 * Sets `touched_ms = now` on the indexed chunks among `ids` whose stored touch is older
 * than the touch granularity (so a chunk asked about again and again is written at most
 * once per granularity).
 */
async function touchChunkRows(trx: Database, customer: number, ids: readonly string[], nowMs: number): Promise<void> {
  const stale = Date.parse(staleBefore(new Date(nowMs)));
  for (const batch of pow2Batches([...new Set(ids)], CHUNK_LOOKUP_BATCH)) {
    await trx
      .updateTable('chunks')
      .set({ touched_ms: nowMs })
      .where('customer_seq', '=', customer)
      .where('id', 'in', batch.map(raw))
      .where((eb) => eb.or([eb('touched_ms', 'is', null), eb('touched_ms', '<', stale)]))
      .execute();
  }
}

/** `… from chunks where customer_seq = (select seq from customers where id = ?) and id in (? × n)`: parameters are the customer id, then the ids. */
function lookupParameters(customerId: CustomerId, batch: readonly string[]): unknown[] {
  return [customerId, ...batch.map(raw)];
}
function placeholderIds(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(`i${i}`));
}

/** `select id, pack id, offset, length from chunks join packs where customer = ? and id in (…n)`, compiled once per n. */
function locateTemplate(db: Database, n: number) {
  return templates.get(db, `locate-chunks/${n}`, () => {
    const ids = placeholderIds(n);
    const compiled = db
      .selectFrom('chunks')
      .innerJoin('packs', 'packs.seq', 'chunks.pack_seq')
      .select(['chunks.id', 'packs.id as pack_id', 'chunks.offset', 'chunks.length'])
      .where('chunks.customer_seq', '=', (eb) => customerSeqOf(eb, 'c'))
      .where('chunks.id', 'in', ids)
      .compile();
    return { compiled, expected: ['c', ...ids] };
  });
}

/** `select id from chunks where customer = ? and id in (…n)` (answered from the primary key index alone). */
function existsTemplate(db: Database, n: number) {
  return templates.get(db, `exists-chunks/${n}`, () => {
    const ids = placeholderIds(n);
    const compiled = db
      .selectFrom('chunks')
      .select('id')
      .where('customer_seq', '=', (eb) => customerSeqOf(eb, 'c'))
      .where('id', 'in', ids)
      .compile();
    return { compiled, expected: ['c', ...ids] };
  });
}

/**
 * Where each of `ids` is stored for this customer (ids may repeat; absent ones are missing
 * from the map). Distinct ids are looked up in batches of power-of-two sizes.
 */
export async function locateChunks(db: Database, customerId: CustomerId, ids: readonly string[]): Promise<Map<string, ChunkLocation>> {
  const found = new Map<string, ChunkLocation>();
  for (const batch of pow2Batches([...new Set(ids)], CHUNK_LOOKUP_BATCH)) {
    const { rows } = await db.executeQuery(withParameters(locateTemplate(db, batch.length), lookupParameters(customerId, batch)));
    for (const r of rows) found.set(r.id.toString('hex'), { pack: r.pack_id, offset: Number(r.offset), length: Number(r.length) });
  }
  return found;
}

/** `select id, touched_ms from chunks where customer = ? and id in (…n)`, compiled once per n. */
function existsTouchTemplate(db: Database, n: number) {
  return templates.get(db, `exists-touch-chunks/${n}`, () => {
    const ids = placeholderIds(n);
    const compiled = db
      .selectFrom('chunks')
      .select(['id', 'touched_ms'])
      .where('customer_seq', '=', (eb) => customerSeqOf(eb, 'c'))
      .where('id', 'in', ids)
      .compile();
    return { compiled, expected: ['c', ...ids] };
  });
}

/**
 * The subset of `ids` indexed for this customer, each of them touched (POST /chunks/exists:
 * the agent will not upload them and will reference them in a later commit, so GC must
 * keep them — docs/GC.md). Read-only for chunks touched within the granularity; the
 * others are touched and looked up again in one transaction, so an id GC deleted meanwhile
 * is answered as missing (the agent then uploads it).
 */
export async function existingChunksTouched(db: Database, customerId: CustomerId, ids: readonly string[], now: Date): Promise<Set<string>> {
  const found = new Set<string>();
  const stale: string[] = [];
  const staleMs = Date.parse(staleBefore(now));
  for (const batch of pow2Batches([...new Set(ids)], CHUNK_LOOKUP_BATCH)) {
    const { rows } = await db.executeQuery(withParameters(existsTouchTemplate(db, batch.length), lookupParameters(customerId, batch)));
    for (const r of rows) {
      const id = r.id.toString('hex');
      if (r.touched_ms !== null && Number(r.touched_ms) >= staleMs) found.add(id);
      else stale.push(id);
    }
  }
  if (stale.length > 0) {
    // The customer's index: the touch and the look-up again must not interleave with a GC deletion.
    const still = await writeTransaction(db, [LockName.customer(customerId)], async (trx) => {
      await touchChunkRows(trx, await customerSeq(trx, customerId), stale, now.getTime());
      return existingChunks(trx, customerId, stale);
    });
    for (const id of still) found.add(id);
  }
  return found;
}

/** The subset of `ids` indexed for this customer. */
export async function existingChunks(db: Database, customerId: CustomerId, ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const batch of pow2Batches([...new Set(ids)], CHUNK_LOOKUP_BATCH)) {
    const { rows } = await db.executeQuery(withParameters(existsTemplate(db, batch.length), lookupParameters(customerId, batch)));
    for (const r of rows) found.add(r.id.toString('hex'));
  }
  return found;
}
