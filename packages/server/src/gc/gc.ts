// Over 400 lines on purpose: one customer's run (CustomerGc) keeps its cutoff, live set and
// counts across the deletion, repack and orphan steps, whose safety arguments refer to each other.
import { createHash } from 'node:crypto';
import { PackBuilder, type ChunkId } from '@coffre/core';
import type { Database } from '../db/database.js';
import { LockName, writeTransaction } from '../db/engine.js';
import { allCustomerIds } from '../db/queries/customers.js';
import {
  bumpGcEpoch,
  chunkRowsOfPack,
  deleteChunkRowsOfPack,
  deleteChunksOfPack,
  deletePackRow,
  gcPackOfCustomer,
  insertRepackedPack,
  packPageOfCustomer,
  repointChunk,
  type GcChunkRow as ChunkRow,
  type GcPackRow as PackRow,
} from '../db/queries/gc.js';
import { findPack } from '../db/queries/packs.js';
import { dueTombstonesOfCustomer, findTombstone, forgetOrphan, insertTombstone, markTombstoneObjectDeleted, orphanFirstSeen, orphansOfCustomer, recordOrphan } from '../db/queries/tombstones.js';
import { dropAbandonedSessions, uploadSessions } from '../db/queries/upload-sessions.js';
import type { JobItem } from '../jobs/job.js';
import { errorFields, type LogSink } from '../log.js';
import { packKey } from '../object-keys.js';
import type { ObjectStore } from '../store/object-store.js';
import type { Clock, CustomerId } from '../types.js';
import { nextSequence } from '../db/queries/sequences.js';
import { GC_DEFAULTS, SESSION_IDLE_MS, TOUCH_GRANULARITY_MS, type GcSettings } from './config.js';
import { gcCutoff, touchedAt, untouchedSince, type GcCutoff } from './cutoff.js';
import { GcLease } from './lease.js';
import { LiveSet, LiveSetError } from './live.js';

/** What GC needs: the metadata database, the object store and a clock. */
export interface GcContext {
  readonly db: Database;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: LogSink;
}

/**
 * Named points of a GC run, for crash and race tests: the hook runs there, and an error it
 * throws propagates out of `runGc` as if the process had died at that point.
 * - `before-delete`: a pack has dead rows; the transaction that deletes them is next.
 * - `rows-deleted`: a transaction removed dead chunk rows (or a whole dead pack from the
 *   index, tombstoned); its object, if any, is not deleted yet.
 * - `repack-written`: the new pack object is durable; no row points to it yet.
 * - `repack-indexed`: rows now point to the new pack; the old one is tombstoned, its object still there.
 * - `object-delete`: just before a tombstoned object is deleted.
 * - `orphan-tombstoned`: an orphan object was tombstoned; not deleted yet.
 */
export type GcStep = 'before-delete' | 'rows-deleted' | 'repack-written' | 'repack-indexed' | 'object-delete' | 'orphan-tombstoned';

export interface GcOptions extends Partial<GcSettings> {
  /** Compute and report what would be done; write nothing. */
  readonly dryRun?: boolean;
  /** Only these customers (default: all). */
  readonly customerIds?: readonly string[];
  /** Test seam: runs at each named step; throwing there simulates a crash. */
  readonly hook?: (step: GcStep, at: { readonly customerId: string; readonly packId: string; readonly newPackId?: string }) => void | Promise<void>;
}

export interface GcCounts {
  customers: number;
  snapshots: number;
  liveChunks: number;
  packsScanned: number;
  chunksDeleted: number;
  bytesReclaimed: number;
  packsDeleted: number;
  packsRepacked: number;
  objectsDeleted: number;
  orphansFound: number;
  orphansDeleted: number;
  sessionsOpen: number;
  sessionsAbandoned: number;
  failed: number;
}

export interface GcReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly dryRun: boolean;
  /** Set when the run did nothing because another GC run holds the lease. */
  readonly skipped: string | null;
  readonly counts: GcCounts;
  readonly items: JobItem[];
}

/** An error thrown by the test hook: a simulated crash, never caught per item. */
class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
  constructor(readonly original: unknown) {
    super(`simulated crash: ${original instanceof Error ? original.message : String(original)}`);
  }
}

const PACK_PAGE = 200;
/** Repack reads: neighbouring kept blobs are fetched in one range when the gap is small. */
const READ_GAP = 256 * 1024;
const READ_MAX = 8 * 1024 * 1024;

/**
 * Kept: referenced by a snapshot, or touched since the cutoff (an agent may reference it
 * in a commit to come). Dead: neither — reclaimable.
 */
function classify(rows: readonly ChunkRow[], live: LiveSet, cut: GcCutoff, packCreatedAt: string): { kept: ChunkRow[]; dead: ChunkRow[] } {
  const kept: ChunkRow[] = [];
  const dead: ChunkRow[] = [];
  for (const r of rows) {
    if (live.has(r.id) || !untouchedSince(touchedAt(r, packCreatedAt), cut)) kept.push(r);
    else dead.push(r);
  }
  return { kept, dead };
}

const sum = (rows: readonly { length: number }[]): number => rows.reduce((a, r) => a + r.length, 0);

/**
 * Garbage collection without a global lock (docs/GC.md). For each customer: the live set
 * (every snapshot row's references), then pack by pack: dead chunk rows go, a pack left
 * with no row leaves the index and its object is deleted, a pack whose kept bytes fall
 * below `repackBelow` of its size is rewritten. Every deletion re-checks, inside the
 * transaction that makes it, the snapshots committed since and the chunks touched since.
 */
export async function runGc(ctx: GcContext, opts: GcOptions = {}): Promise<GcReport> {
  const settings: GcSettings = {
    graceMs: opts.graceMs ?? GC_DEFAULTS.graceMs,
    repackBelow: opts.repackBelow ?? GC_DEFAULTS.repackBelow,
    repackDeleteDelayMs: opts.repackDeleteDelayMs ?? GC_DEFAULTS.repackDeleteDelayMs,
    orphanAgeMs: opts.orphanAgeMs ?? GC_DEFAULTS.orphanAgeMs,
  };
  if (!(settings.repackBelow >= 0 && settings.repackBelow <= 1)) throw new RangeError(`repackBelow must be between 0 and 1, got ${settings.repackBelow}`);
  const dryRun = opts.dryRun === true;
  // Taken before any session or snapshot is read (docs/GC.md §Cutoff).
  const start = ctx.clock();
  const counts: GcCounts = {
    customers: 0,
    snapshots: 0,
    liveChunks: 0,
    packsScanned: 0,
    chunksDeleted: 0,
    bytesReclaimed: 0,
    packsDeleted: 0,
    packsRepacked: 0,
    objectsDeleted: 0,
    orphansFound: 0,
    orphansDeleted: 0,
    sessionsOpen: 0,
    sessionsAbandoned: 0,
    failed: 0,
  };
  const items: JobItem[] = [];
  const lease = new GcLease(ctx.db, ctx.clock);
  if (!dryRun && !(await lease.acquire())) {
    const skipped = 'another GC run is in progress';
    items.push({ id: 'gc', outcome: 'warning', detail: `${skipped}; this run did nothing` });
    return { startedAt: start.toISOString(), finishedAt: ctx.clock().toISOString(), dryRun, skipped, counts, items };
  }
  try {
    let customers = await allCustomerIds(ctx.db);
    if (opts.customerIds) customers = customers.filter((c) => opts.customerIds!.includes(c));
    for (const customerId of customers) {
      const run = new CustomerGc(ctx, settings, dryRun, opts.hook, start, customerId as CustomerId, counts, items, lease);
      try {
        await run.run();
      } catch (err) {
        if (err instanceof SimulatedCrash) throw err.original;
        counts.failed++;
        const why = err instanceof LiveSetError ? `${err.message}; nothing collected for this customer` : `GC stopped for this customer: ${err instanceof Error ? err.message : String(err)}`;
        items.push({ id: `customer:${customerId}`, outcome: 'failed', detail: why });
        ctx.log({ level: 'error', msg: 'gc failed for a customer', customerId, ...errorFields(err) });
      }
    }
  } finally {
    if (!dryRun) await lease.release().catch(() => undefined);
  }
  return { startedAt: start.toISOString(), finishedAt: ctx.clock().toISOString(), dryRun, skipped: null, counts, items };
}

/** One customer's collection (its own cutoff: dedup, sessions and snapshots are per customer). */
class CustomerGc {
  private cut!: GcCutoff;
  private live!: LiveSet;

  constructor(
    private readonly ctx: GcContext,
    private readonly s: GcSettings,
    private readonly dryRun: boolean,
    private readonly hookFn: GcOptions['hook'],
    private readonly start: Date,
    private readonly customerId: CustomerId,
    private readonly counts: GcCounts,
    private readonly items: JobItem[],
    private readonly lease: GcLease,
  ) {}

  private async hook(step: GcStep, packId: string, newPackId?: string): Promise<void> {
    if (!this.hookFn) return;
    try {
      await this.hookFn(step, { customerId: this.customerId, packId, ...(newPackId ? { newPackId } : {}) });
    } catch (err) {
      throw new SimulatedCrash(err);
    }
  }

  private item(id: string, outcome: JobItem['outcome'], detail: string): void {
    this.items.push({ id, outcome, detail: this.dryRun && outcome === 'changed' ? `(dry run) would have ${detail}` : detail });
  }

  private get nowIso(): string {
    return this.ctx.clock().toISOString();
  }

  async run(): Promise<void> {
    const db = this.ctx.db;
    this.counts.customers++;
    // Sessions first, snapshots second: a session closes in the transaction that inserts
    // its snapshot, so a session missing here has its snapshot in the live set below.
    const sessions = await uploadSessions(db, this.customerId);
    this.cut = gcCutoff(this.start, this.s.graceMs, sessions);
    this.counts.sessionsOpen += sessions.length - this.cut.abandoned;
    this.counts.sessionsAbandoned += this.cut.abandoned;
    this.live = new LiveSet(this.ctx.store, this.customerId);
    await this.live.catchUp(db);
    this.counts.snapshots += this.live.snapshots;
    this.counts.liveChunks += this.live.ids.size;

    let failure: unknown = null;
    try {
      let after = '';
      for (;;) {
        const page = await packPageOfCustomer(db, this.customerId, after, PACK_PAGE);
        if (page.length === 0) break;
        for (const p of page) {
          if (!this.dryRun) await this.lease.renew();
          this.counts.packsScanned++;
          try {
            await this.pack(p);
          } catch (err) {
            if (err instanceof SimulatedCrash || err instanceof LiveSetError) throw err;
            this.counts.failed++;
            this.item(`pack:${p.id}`, 'failed', `pack ${p.id}: ${err instanceof Error ? err.message : String(err)}`);
            this.ctx.log({ level: 'error', msg: 'gc failed for a pack', customerId: this.customerId, packId: p.id, ...errorFields(err) });
          }
        }
        after = page[page.length - 1]!.id;
      }
      await this.orphans();
    } catch (err) {
      failure = err;
    }
    // Objects whose time has come, even when the scan above failed: each was already
    // removed from the index by a committed transaction.
    if (!(failure instanceof SimulatedCrash)) await this.deleteDueObjects();
    if (failure) throw failure;
    if (!this.dryRun) {
      const before = new Date(this.start.getTime() - SESSION_IDLE_MS - TOUCH_GRANULARITY_MS).toISOString();
      await dropAbandonedSessions(db, this.customerId, before);
    }
  }

  /** One pack: delete its dead rows (and the pack if none is left), then repack if sparse. */
  private async pack(p: PackRow): Promise<void> {
    const rows = await chunkRowsOfPack(this.ctx.db, this.customerId, p.id);
    const { kept, dead } = classify(rows, this.live, this.cut, p.created_at);
    const packOld = untouchedSince(p.created_at, this.cut);
    if (dead.length > 0 || (rows.length === 0 && packOld)) {
      if (this.dryRun) {
        this.counts.chunksDeleted += dead.length;
        if (kept.length === 0 && packOld) {
          this.counts.packsDeleted++;
          this.counts.bytesReclaimed += p.size;
          this.item(`pack:${p.id}`, 'changed', `deleted pack ${p.id} (${dead.length} dead chunks, ${p.size} bytes)`);
          return;
        }
      } else {
        await this.hook('before-delete', p.id);
        const r = await this.deleteDead(p);
        this.counts.chunksDeleted += r.deleted;
        if (r.deleted > 0 || r.packRemoved) await this.hook('rows-deleted', p.id);
        if (r.packRemoved) {
          this.counts.packsDeleted++;
          this.counts.bytesReclaimed += p.size;
          this.item(`pack:${p.id}`, 'changed', `deleted pack ${p.id} (${r.deleted} dead chunks, ${p.size} bytes)`);
          return; // its object goes with the due ones at the end
        }
      }
    }
    if (this.s.repackBelow <= 0) return;
    const now = this.dryRun ? kept : await chunkRowsOfPack(this.ctx.db, this.customerId, p.id);
    const keptBytes = sum(now);
    if (now.length === 0 || keptBytes >= this.s.repackBelow * p.size) return;
    if (this.dryRun) {
      this.counts.packsRepacked++;
      this.counts.bytesReclaimed += p.size - (12 + 80 * now.length + keptBytes);
      this.item(`pack:${p.id}`, 'changed', `repacked pack ${p.id} (${now.length} chunks kept, ${keptBytes} of ${p.size} bytes)`);
      return;
    }
    await this.repack(p, now);
  }

  /**
   * The transaction that deletes: catches up with snapshots committed since the live set
   * was read, re-reads the pack's rows (their touch times too) and deletes only what is
   * still dead; bumps the epoch so a commit that checked its chunks before checks again.
   * A pack with no row left leaves the index (tombstoned; its object is deleted after).
   *
   * Catching up reads reference lists from the object store, which a transaction may not
   * do (it may run again on PostgreSQL): it happens outside, and the transaction only
   * checks, under the customer's lock, that no snapshot row is missing from the live set;
   * if one is (committed in between), it changes nothing and the catching up starts over.
   */
  private async deleteDead(p: PackRow): Promise<{ deleted: number; packRemoved: boolean }> {
    for (;;) {
      await this.live.catchUp(this.ctx.db);
      // The customer's index: ordered with snapshot commits (docs/GC.md §Commit race) and with uploads indexing packs.
      const r = await writeTransaction(this.ctx.db, [LockName.customer(this.customerId)], async (trx) => {
        if (!(await this.live.isCaughtUp(trx))) return 'behind' as const;
        const pack = await gcPackOfCustomer(trx, this.customerId, p.id);
        if (!pack) return { deleted: 0, packRemoved: false };
        const rows = await chunkRowsOfPack(trx, this.customerId, p.id);
        const { kept, dead } = classify(rows, this.live, this.cut, pack.created_at);
        const removePack = kept.length === 0 && untouchedSince(pack.created_at, this.cut);
        if (dead.length === 0 && !removePack) return { deleted: 0, packRemoved: false };
        await bumpGcEpoch(trx, this.customerId);
        if (removePack) {
          await deleteChunksOfPack(trx, this.customerId, p.id);
          // The foreign key from chunks makes this fail if any row still pointed here.
          await deletePackRow(trx, this.customerId, p.id);
          const now = this.nowIso;
          await insertTombstone(trx, { customerId: this.customerId, packId: p.id, size: pack.size, reason: 'dead', now, deleteAfter: now });
          return { deleted: rows.length, packRemoved: true };
        }
        await deleteChunkRowsOfPack(trx, this.customerId, p.id, dead.map((d) => d.id));
        return { deleted: dead.length, packRemoved: false };
      });
      if (r !== 'behind') return r;
    }
  }

  /**
   * Rewrites a sparse pack: copies the kept blobs, byte for byte (no key needed, each
   * checked against its row's SHA-256), into a new pack in the same format; makes it
   * durable; then, in one transaction, points every row of the old pack to the new one
   * (sha256 unchanged), indexes the new pack and tombstones the old one, whose object is
   * deleted after the delay. A crash before that transaction leaves the old layout and an
   * orphan object (swept later); after it, the new layout and a tombstoned object.
   */
  private async repack(p: PackRow, rows: ChunkRow[]): Promise<void> {
    const db = this.ctx.db;
    const sorted = [...rows].sort((a, b) => a.offset - b.offset);
    const builder = new PackBuilder();
    const key = packKey(this.customerId, p.id);
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      const from = sorted[i]!.offset;
      let to = from + sorted[i]!.length;
      while (j < sorted.length && sorted[j]!.offset - to <= READ_GAP && sorted[j]!.offset + sorted[j]!.length - from <= READ_MAX) {
        to = sorted[j]!.offset + sorted[j]!.length;
        j++;
      }
      const buf = await this.ctx.store.get(key, { offset: from, length: to - from });
      for (const r of sorted.slice(i, j)) {
        const blob = buf.subarray(r.offset - from, r.offset - from + r.length);
        const sha = createHash('sha256').update(blob).digest();
        if (!sha.equals(r.sha256)) throw new Error(`blob ${r.id.toString('hex').slice(0, 12)} does not match its SHA-256: the pack is damaged; not repacked (run a verify)`);
        builder.add(r.id.toString('hex') as ChunkId, blob, sha);
      }
      i = j;
    }
    const built = builder.finishParts();
    if (built.id === p.id) return;
    if (await findTombstone(db, this.customerId, built.id)) {
      this.item(`pack:${p.id}`, 'warning', `pack ${p.id} not repacked: its new layout ${built.id} was garbage-collected before; it will be once its chunks change`);
      return;
    }
    if (!(await findPack(db, this.customerId, built.id))) {
      const upload = await this.ctx.store.createUpload(packKey(this.customerId, built.id), { size: built.size });
      try {
        for (const part of built.parts) await upload.write(part);
      } catch (err) {
        await upload.abort();
        throw err;
      }
      await upload.commit();
    }
    await this.hook('repack-written', p.id, built.id);

    const entries = new Map(built.entries.map((e) => [e.id as string, e]));
    // The new pack's number in the chunk index, taken before the transaction (wasted if it gives up).
    const seq = await nextSequence(db, 'packs');
    // The customer's index: the old pack's rows must not change between the check and the repoint.
    const outcome = await writeTransaction(db, [LockName.customer(this.customerId)], async (trx) => {
      if (await findTombstone(trx, this.customerId, built.id)) return 'the new pack was tombstoned meanwhile';
      const old = await gcPackOfCustomer(trx, this.customerId, p.id);
      if (!old) return 'the pack left the index meanwhile';
      const current = await chunkRowsOfPack(trx, this.customerId, p.id);
      for (const r of current) {
        const e = entries.get(r.id.toString('hex'));
        if (!e || e.length !== r.length || e.sha256 !== r.sha256.toString('hex')) return 'its chunks changed meanwhile';
      }
      const now = this.nowIso;
      await insertRepackedPack(trx, { customerId: this.customerId, packId: built.id, seq, size: built.size, chunkCount: built.entries.length, now });
      for (const r of current) {
        const e = entries.get(r.id.toString('hex'))!;
        await repointChunk(trx, this.customerId, r.id, p.id, { packId: built.id, offset: e.offset, length: e.length });
      }
      // The foreign key from chunks makes this fail if any row still pointed here.
      await deletePackRow(trx, this.customerId, p.id);
      await insertTombstone(trx, {
        customerId: this.customerId,
        packId: p.id,
        size: old.size,
        reason: 'repacked',
        replacedBy: built.id,
        now,
        deleteAfter: new Date(this.ctx.clock().getTime() + this.s.repackDeleteDelayMs).toISOString(),
      });
      return null;
    });
    if (outcome !== null) {
      // The new object stays unindexed: an orphan, swept once old enough (or indexed by a later repack).
      this.item(`pack:${p.id}`, 'warning', `pack ${p.id} not repacked: ${outcome}; will retry next run`);
      return;
    }
    this.counts.packsRepacked++;
    this.counts.bytesReclaimed += p.size - built.size;
    this.item(`pack:${p.id}`, 'changed', `repacked pack ${p.id} into ${built.id} (${rows.length} chunks kept, ${p.size} → ${built.size} bytes)`);
    await this.hook('repack-indexed', p.id, built.id);
  }

  /**
   * Pack objects with no index row: leftovers of a crash between an upload's rename and its
   * indexing, or between a repack's write and its transaction. Deleted once seen orphaned
   * for `orphanAgeMs`, through a tombstone (inserted only if still unindexed, in a
   * transaction; indexing refuses a tombstoned id), so an upload finishing at that very
   * moment is refused rather than indexed without its bytes. Objects of tombstoned ids
   * that are due (or reappeared) are deleted too.
   */
  private async orphans(): Promise<void> {
    const db = this.ctx.db;
    const nowDate = this.ctx.clock();
    const now = nowDate.toISOString();
    const seen = new Set<string>();
    const objects: { id: string; size: number }[] = [];
    for await (const o of this.ctx.store.list(`packs/${this.customerId}/`)) {
      const id = o.key.slice(o.key.lastIndexOf('/') + 1);
      if (/^[0-9a-f]{64}$/.test(id) && o.key === packKey(this.customerId, id)) objects.push({ id, size: o.size });
    }
    for (const o of objects) {
      seen.add(o.id);
      if (await findPack(db, this.customerId, o.id)) continue;
      const t = await findTombstone(db, this.customerId, o.id);
      if (t) {
        if (t.objectDeletedAt !== null && !this.dryRun) {
          // Written again after its deletion (an upload refused at indexing): never indexable.
          await this.ctx.store.delete(packKey(this.customerId, o.id));
          this.counts.objectsDeleted++;
        }
        continue; // otherwise deleted when due (deleteDueObjects)
      }
      this.counts.orphansFound++;
      let first = await orphanFirstSeen(db, this.customerId, o.id);
      if (first === undefined) {
        first = now;
        if (!this.dryRun) await recordOrphan(db, this.customerId, o.id, now);
      }
      if (Date.parse(first) > nowDate.getTime() - this.s.orphanAgeMs) continue;
      if (this.dryRun) {
        this.counts.orphansDeleted++;
        this.counts.bytesReclaimed += o.size;
        this.item(`pack:${o.id}`, 'changed', `deleted orphan pack object ${o.id} (${o.size} bytes, no index row since ${first})`);
        continue;
      }
      // The customer's index: tombstone only if still unindexed, never between an upload's check of the tombstones and its indexing.
      const tombstoned = await writeTransaction(db, [LockName.customer(this.customerId)], async (trx) => {
        if (await findPack(trx, this.customerId, o.id)) return false;
        await insertTombstone(trx, { customerId: this.customerId, packId: o.id, size: o.size, reason: 'orphan', now, deleteAfter: now });
        await forgetOrphan(trx, this.customerId, o.id);
        return true;
      });
      if (!tombstoned) continue;
      await this.hook('orphan-tombstoned', o.id);
      this.counts.orphansDeleted++;
      this.counts.bytesReclaimed += o.size;
      this.item(`pack:${o.id}`, 'changed', `deleted orphan pack object ${o.id} (${o.size} bytes, no index row since ${first})`);
    }
    if (!this.dryRun) {
      // Forget orphans that were indexed or deleted since.
      for (const packId of await orphansOfCustomer(db, this.customerId)) {
        if (!seen.has(packId) || (await findPack(db, this.customerId, packId))) await forgetOrphan(db, this.customerId, packId);
      }
    }
  }

  /** Deletes the objects of tombstoned packs whose time has come, then records it. */
  private async deleteDueObjects(): Promise<void> {
    if (this.dryRun) return;
    const db = this.ctx.db;
    for (const id of await dueTombstonesOfCustomer(db, this.customerId, this.nowIso)) {
      await this.hook('object-delete', id);
      await this.ctx.store.delete(packKey(this.customerId, id));
      await markTombstoneObjectDeleted(db, this.customerId, id, this.nowIso);
      this.counts.objectsDeleted++;
    }
  }
}
