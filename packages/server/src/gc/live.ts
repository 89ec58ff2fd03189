import { sha256Hex } from '@coffre/core';
import type { Database } from '../db/database.js';
import { snapshotRefsKey } from '../object-keys.js';
import { isNotFound, type ObjectStore } from '../store/object-store.js';
import type { CustomerId } from '../types.js';
import { IdSet } from './idset.js';

/** A snapshot's reference list is missing or does not match its manifest: GC cannot know what is live. */
export class LiveSetError extends Error {
  override readonly name = 'LiveSetError';
}

/**
 * The chunks a customer's snapshots need: the union of the reference lists of EVERY row of
 * `snapshots` (live ones and those in the recycle bin alike, whatever their other columns;
 * a row only goes when the bin is purged). Loaded once, then caught up: `catchUp` adds the
 * snapshots committed since, and GC calls it again inside each transaction that deletes
 * chunk rows, so a snapshot committed while GC runs is always seen before anything goes.
 *
 * Each list is checked against its manifest (SHA-256 and count) before it is trusted; a
 * list that is missing or does not match stops GC for the customer (fail safe).
 */
export class LiveSet {
  readonly ids = new IdSet(1 << 14);
  private readonly loaded = new Set<string>();
  private readonly loadedRefs = new Set<string>();

  constructor(
    private readonly store: ObjectStore,
    readonly customerId: CustomerId,
  ) {}

  /** Snapshots whose references are in the set. */
  get snapshots(): number {
    return this.loaded.size;
  }

  has(id: Buffer): boolean {
    return this.ids.hasAt(id, 0);
  }

  /** Adds the references of every snapshot row not loaded yet; returns how many were added. */
  async catchUp(db: Database): Promise<number> {
    const rows = await db.selectFrom('snapshots').select('id').where('customer_id', '=', this.customerId).execute();
    let added = 0;
    for (const { id } of rows) {
      if (this.loaded.has(id)) continue;
      const row = await db.selectFrom('snapshots').select(['manifest_json', 'ref_count']).where('customer_id', '=', this.customerId).where('id', '=', id).executeTakeFirst();
      if (!row) continue; // forgotten meanwhile
      const { refsSha256 } = JSON.parse(row.manifest_json) as { refsSha256: string };
      if (!this.loadedRefs.has(refsSha256)) {
        let refs: Buffer;
        try {
          refs = await this.store.get(snapshotRefsKey(this.customerId, id));
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // Forgotten between the two reads (row first, then object)? Then it is not live.
          const still = await db.selectFrom('snapshots').select('id').where('customer_id', '=', this.customerId).where('id', '=', id).executeTakeFirst();
          if (!still) continue;
          throw new LiveSetError(`snapshot ${id}: its reference list is missing from the object store`);
        }
        if (sha256Hex(refs) !== refsSha256 || refs.length !== Number(row.ref_count) * 32) {
          throw new LiveSetError(`snapshot ${id}: its reference list does not match its manifest`);
        }
        this.ids.addAll(refs);
        this.loadedRefs.add(refsSha256);
      }
      this.loaded.add(id);
      added++;
    }
    return added;
  }
}
