import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.js';
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
    const ok = await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('gc_lease').select(['holder', 'expires_at']).where('name', '=', NAME).executeTakeFirst();
      if (row && row.holder !== this.holder && row.expires_at > now.toISOString()) return false;
      const values = { name: NAME, holder: this.holder, acquired_at: now.toISOString(), expires_at: new Date(now.getTime() + LEASE_MS).toISOString() };
      await trx
        .insertInto('gc_lease')
        .values(values)
        .onConflict((oc) => oc.column('name').doUpdateSet({ holder: values.holder, acquired_at: values.acquired_at, expires_at: values.expires_at }))
        .execute();
      return true;
    });
    if (ok) this.renewedAt = now.getTime();
    return ok;
  }

  /** Extends the lease when a quarter of it has gone by (cheap to call often). */
  async renew(): Promise<void> {
    const now = this.clock().getTime();
    if (now - this.renewedAt < LEASE_MS / 4) return;
    await this.db
      .updateTable('gc_lease')
      .set({ expires_at: new Date(now + LEASE_MS).toISOString() })
      .where('name', '=', NAME)
      .where('holder', '=', this.holder)
      .execute();
    this.renewedAt = now;
  }

  async release(): Promise<void> {
    await this.db.deleteFrom('gc_lease').where('name', '=', NAME).where('holder', '=', this.holder).execute();
  }
}
