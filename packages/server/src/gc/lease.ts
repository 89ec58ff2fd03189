import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.js';
import { LockName, writeTransaction } from '../db/engine.js';
import { gcLeaseRow, releaseGcLease, renewGcLease, setGcLease } from '../db/queries/gc-lease.js';
import type { Clock } from '../types.js';
import { LEASE_MS } from './config.js';

const NAME = 'gc';

/**
 * One GC run at a time across processes (the server's schedule and `coffre-server job run
 * gc`): a lease row renewed as the run goes, expiring LEASE_MS after a crash. Only an
 * efficiency measure: every GC step re-checks what it relies on inside its own
 * transaction, so two overlapping runs would still be safe.
 */
export class GcLease {
  readonly holder = randomUUID();
  private renewedAt = 0;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  /** False when another run holds an unexpired lease. */
  async acquire(): Promise<boolean> {
    const now = this.clock();
    // Read, decide, write the lease row: two runs starting together must not both see it free.
    const ok = await writeTransaction(this.db, [LockName.lease(NAME)], async (trx) => {
      const row = await gcLeaseRow(trx, NAME);
      if (row && row.holder !== this.holder && row.expires_at > now.toISOString()) return false;
      await setGcLease(trx, { name: NAME, holder: this.holder, acquiredAt: now.toISOString(), expiresAt: new Date(now.getTime() + LEASE_MS).toISOString() });
      return true;
    });
    if (ok) this.renewedAt = now.getTime();
    return ok;
  }

  /** Extends the lease when a quarter of it has gone by (cheap to call often). */
  async renew(): Promise<void> {
    const now = this.clock().getTime();
    if (now - this.renewedAt < LEASE_MS / 4) return;
    await renewGcLease(this.db, NAME, this.holder, new Date(now + LEASE_MS).toISOString());
    this.renewedAt = now;
  }

  async release(): Promise<void> {
    await releaseGcLease(this.db, NAME, this.holder);
  }
}
