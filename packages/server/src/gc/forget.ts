import { openBackends } from '../backends/open.js';
import { initDataDir } from '../datadir.js';
import type { Database } from '../db/database.js';
import { LockName, writeTransaction } from '../db/engine.js';
import { deleteSnapshot } from '../db/queries/snapshots.js';
import { snapshotRefsKey } from '../object-keys.js';
import type { ObjectStore } from '../store/object-store.js';
import { stderrLog } from '../log.js';
import { systemClock, type CustomerId } from '../types.js';
import { runGc, type GcOptions, type GcReport } from './gc.js';

/**
 * Test/admin utility: removes a snapshot for good — its row, then its reference list — as
 * the recycle bin's purge will. Its chunks become garbage for the next GC run (after the
 * grace period). Row first: GC reads the row before the list, and a row whose list is
 * gone stops GC for the customer (fail safe), so the other order would block GC after a
 * crash in between. True if the snapshot existed.
 */
export async function forgetSnapshot(ctx: { readonly db: Database; readonly store: ObjectStore }, customerId: CustomerId, snapshotId: string): Promise<boolean> {
  // The customer's snapshots: ordered with GC's transactions and the snapshot commits.
  const removed = await writeTransaction(ctx.db, [LockName.customer(customerId)], (trx) => deleteSnapshot(trx, customerId, snapshotId));
  await ctx.store.delete(snapshotRefsKey(customerId, snapshotId));
  return removed;
}

/**
 * GC tools on a data directory, for tests and scripts that run next to a server, on the
 * backends it is configured for: forget snapshots, run GC. Call `close` after.
 */
export async function openGcTools(dataDir: string): Promise<{
  forgetSnapshot(customerId: string, snapshotId: string): Promise<boolean>;
  runGc(opts?: GcOptions): Promise<GcReport>;
  close(): Promise<void>;
}> {
  const { db, store, close } = await openBackends(await initDataDir(dataDir));
  return {
    forgetSnapshot: (customerId, snapshotId) => forgetSnapshot({ db, store }, customerId as CustomerId, snapshotId),
    runGc: (opts) => runGc({ db, store, clock: systemClock, log: stderrLog }, opts),
    close,
  };
}
