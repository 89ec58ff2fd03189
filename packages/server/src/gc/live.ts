import { sha256Hex } from '@coffre/core';
import type { Database } from '../db/database.js';
import { snapshotIdsOfCustomer, snapshotRefsOfCustomer } from '../db/queries/gc.js';
import { snapshotExists } from '../db/queries/snapshots.js';
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
 * snapshots committed since; each GC transaction that deletes chunk rows first checks
 * `isCaughtUp` under the customer's lock (and catches up again outside it if not), so a
 * snapshot committed while GC runs is always seen before anything goes.
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

  /** Adds the references of every snapshot row not loaded yet; returns how many were added. Reads the object store. */
  async catchUp(db: Database): Promise<number> {
    let added = 0;
    for (const id of await snapshotIdsOfCustomer(db, this.customerId)) {
      if (this.loaded.has(id)) continue;
      const row = await snapshotRefsOfCustomer(db, this.customerId, id);
      if (!row) continue; // forgotten meanwhile
      if (!this.loadedRefs.has(row.refsSha256)) {
        let refs: Buffer;
        try {
          refs = await this.store.get(snapshotRefsKey(this.customerId, id));
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // Forgotten between the two reads (row first, then object)? Then it is not live.
          if (!(await snapshotExists(db, this.customerId, id))) continue;
          throw new LiveSetError(`snapshot ${id}: its reference list is missing from the object store`);
        }
        if (sha256Hex(refs) !== row.refsSha256 || refs.length !== row.refCount * 32) {
          throw new LiveSetError(`snapshot ${id}: its reference list does not match its manifest`);
        }
        this.ids.addAll(refs);
        this.loadedRefs.add(row.refsSha256);
      }
      this.loaded.add(id);
      added++;
    }
    return added;
  }

  /**
   * Whether every snapshot row of the customer is in the set, read with `db` (a transaction
   * holding the customer's lock): database only, so it may run inside a transaction where
   * `catchUp`, which reads the object store, may not.
   */
  async isCaughtUp(db: Database): Promise<boolean> {
    return (await snapshotIdsOfCustomer(db, this.customerId)).every((id) => this.loaded.has(id));
  }
}
