import { DEFAULT_RETENTION, parseRetentionPolicy, planRetention, retentionCutoff, type RetentionDecision, type RetentionPolicy } from '@coffre/core';
import type { Database } from '../db/database.js';
import { LockName, writeTransaction } from '../db/engine.js';
import {
  binnedBeforeOfCustomer,
  binOfCustomer,
  binSnapshotsOfCustomer,
  customerPolicy,
  liveSnapshotsOfCustomer,
  machinePoliciesOfCustomer,
  purgeBinnedSnapshotOfCustomer,
  snapshotsOfCustomerById,
  unbinSnapshotOfCustomer,
} from '../db/queries/retention.js';
import type { ServerSettings } from '../datadir.js';
import { apiError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { isNotFound } from '../store/object-store.js';
import { snapshotRefsKey } from '../object-keys.js';
import type { CustomerId } from '../types.js';

/**
 * Retention on the server (R9, docs/OPERATIONS.md): the policy of each machine (its own,
 * else its customer's, else the default: one snapshot a day for 90 days, plus the newest),
 * applied by the pure `planRetention` of @coffre/core; what it removes goes to the recycle
 * bin (the row stays, marked, so its data stay too), from which an administrator can
 * restore it until the bin's delay has passed; then the row and its reference list go and
 * garbage collection reclaims the chunks nothing else needs. Snapshots younger than the
 * protection window are removed by nobody. Agents never remove anything.
 */

export type RetentionSettings = Pick<ServerSettings, 'recycleBinDays' | 'protectDays' | 'retentionTimeZone'>;

const DAY_MS = 86_400_000;

export function policyFromJson(json: string | null): RetentionPolicy | null {
  return json === null ? null : parseRetentionPolicy(JSON.parse(json));
}

/** Where a machine's policy comes from. */
export interface EffectivePolicy {
  readonly policy: RetentionPolicy;
  readonly source: 'machine' | 'customer' | 'default';
}

export function effectivePolicy(machineJson: string | null, customerJson: string | null): EffectivePolicy {
  const m = policyFromJson(machineJson);
  if (m) return { policy: m, source: 'machine' };
  const c = policyFromJson(customerJson);
  if (c) return { policy: c, source: 'customer' };
  return { policy: DEFAULT_RETENTION, source: 'default' };
}

export interface CustomerPlan {
  readonly customerId: string;
  readonly machines: readonly { readonly machineId: string; readonly machineName: string; readonly policy: EffectivePolicy }[];
  /** Every live snapshot's decision, newest first per machine. */
  readonly decisions: readonly (RetentionDecision & { readonly machineName: string })[];
}

/** What retention would do to a customer's live snapshots now (the dry run's content). */
export async function planCustomer(db: Database, customerId: string, now: Date, s: RetentionSettings): Promise<CustomerPlan> {
  const org = await customerPolicy(db, customerId);
  if (!org) throw apiError('customerNotFound');
  const machines = await machinePoliciesOfCustomer(db, customerId);
  const snaps = await liveSnapshotsOfCustomer(db, customerId);
  const held = new Map(snaps.filter((x) => x.hold_until !== null).map((x) => [x.id, x.hold_until!]));
  const out: CustomerPlan['decisions'][number][] = [];
  const plans: CustomerPlan['machines'][number][] = [];
  for (const m of machines) {
    const policy = effectivePolicy(m.retention_json, org.retention_json);
    plans.push({ machineId: m.id, machineName: m.name, policy });
    const mine = snaps.filter((x) => x.machine_id === m.id).map((x) => ({ id: x.id, time: x.time, machineId: x.machine_id }));
    if (mine.length === 0) continue;
    const plan = planRetention(mine, policy.policy, { now, timeZone: s.retentionTimeZone, protectDays: s.protectDays });
    for (const d of plan.decisions) {
      const hold = held.get(d.id);
      // Held (restored from the bin): kept whatever the policy says, until the hold ends.
      if (d.action === 'remove' && hold !== undefined && hold > now.toISOString()) {
        out.push({ id: d.id, machineId: d.machineId, time: d.time, action: 'keep', reasons: [{ rule: 'protected', text: `held until ${hold} (restored from the recycle bin)` }], machineName: m.name });
      } else out.push({ ...d, machineName: m.name });
    }
  }
  return { customerId, machines: plans, decisions: out };
}

/**
 * True when `time` is inside the protection window (nobody may remove the snapshot): the
 * same calendar arithmetic as `planRetention` (7 local days in the practices' time zone, so
 * 167 or 169 hours across a daylight-saving change), so the plan and the bin always agree.
 */
export function isProtected(time: string, now: Date, protectDays: number, timeZone: string): boolean {
  return Date.parse(time) > retentionCutoff(now, `${protectDays}d`, timeZone).getTime();
}

/**
 * Moves snapshots to the recycle bin. Refuses (nothing moved) when one of them is inside the
 * protection window, unknown, or already in the bin.
 */
export async function moveToBin(db: Database, customerId: string, ids: readonly string[], a: { by: string; reason: string; now: Date; protectDays: number; timeZone: string }): Promise<number> {
  if (ids.length === 0) return 0;
  // The customer's snapshots: checked, then moved, with no commit, restore or purge in between.
  return writeTransaction(db, [LockName.customer(customerId)], async (trx) => {
    const rows = await snapshotsOfCustomerById(trx, customerId, ids);
    for (const id of ids) {
      const r = rows.find((x) => x.id === id);
      if (!r || r.deleted_at !== null) throw apiError('snapshotNotFound', { id });
      if (isProtected(r.time, a.now, a.protectDays, a.timeZone)) throw apiError('snapshotProtected', { id, protectDays: a.protectDays });
    }
    return binSnapshotsOfCustomer(trx, customerId, ids, { now: a.now.toISOString(), by: a.by, reason: a.reason });
  });
}

/**
 * Puts a snapshot of the bin back among the live ones, held until `holdUntil`: retention
 * leaves it alone until then (it was restored for a reason — a restore on request, R7).
 */
export async function restoreFromBin(db: Database, customerId: string, id: string, holdUntil: Date): Promise<void> {
  // The customer's snapshots: ordered with retention's binning and the bin's purge.
  const restored = await writeTransaction(db, [LockName.customer(customerId)], (trx) => unbinSnapshotOfCustomer(trx, customerId, id, holdUntil.toISOString()));
  if (!restored) throw apiError('snapshotNotInBin', { id });
}

export interface BinEntry {
  readonly id: string;
  readonly machineName: string;
  readonly time: string;
  readonly deletedAt: string;
  readonly deletedBy: string;
  readonly reason: string;
  /** When the bin empties itself of it. */
  readonly purgeAt: string;
  readonly logicalSize: number;
}

export async function listBin(db: Database, customerId: string, binDays: number): Promise<BinEntry[]> {
  const rows = await binOfCustomer(db, customerId);
  return rows.map((r) => ({
    id: r.id,
    machineName: r.name,
    time: r.time,
    deletedAt: r.deleted_at!,
    deletedBy: r.deleted_by ?? '',
    reason: r.delete_reason ?? '',
    purgeAt: new Date(Date.parse(r.deleted_at!) + binDays * DAY_MS).toISOString(),
    logicalSize: Number(r.logical_size),
  }));
}

/**
 * Empties the customer's bin of what has been there longer than `binDays`: the snapshot
 * row, then its reference list. From then on garbage collection may reclaim the chunks only
 * it needed.
 */
export async function purgeBin(
  db: Database,
  store: ObjectStore,
  customerId: string,
  now: Date,
  binDays: number,
  log?: (e: { level: 'warn'; msg: string; snapshotId: string; error: string }) => void,
): Promise<{ customerId: string; id: string }[]> {
  const before = new Date(now.getTime() - binDays * DAY_MS).toISOString();
  const rows = await binnedBeforeOfCustomer(db, customerId, before);
  const purged: { customerId: string; id: string }[] = [];
  for (const r of rows) {
    // The customer's snapshots: ordered with a restore from the bin and with GC's transactions.
    const deleted = await writeTransaction(db, [LockName.customer(r.customer_id)], (trx) => purgeBinnedSnapshotOfCustomer(trx, r.customer_id, r.id, before));
    if (!deleted) continue; // restored meanwhile
    try {
      await store.delete(snapshotRefsKey(r.customer_id as CustomerId, r.id));
    } catch (err) {
      // The row is gone: the reference list is now an unindexed object, which purge-temp
      // removes later. Never let one store error stop the purge (or its audit entry).
      if (!isNotFound(err)) log?.({ level: 'warn', msg: 'reference list not deleted; purge-temp will', snapshotId: r.id, error: (err as Error).message });
    }
    purged.push({ customerId: r.customer_id, id: r.id });
  }
  return purged;
}
