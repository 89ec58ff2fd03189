import { retentionPolicyArgs, type RetentionPolicy } from '@coffre/core';
import { apiError } from '../errors.js';
import { effectivePolicy, listBin, moveToBin, planCustomer, restoreFromBin, type BinEntry, type CustomerPlan } from '../retention/retention.js';
import type { AdminContext } from './index.js';

async function customerOf(ctx: AdminContext, name: string): Promise<{ id: string; name: string; retention_json: string | null }> {
  const c = await ctx.db.selectFrom('orgs').select(['id', 'name', 'retention_json']).where('name', '=', name).where('type', '=', 'customer').executeTakeFirst();
  if (!c) throw apiError('customerNotFound', { name });
  return c;
}

async function audit(ctx: AdminContext, orgId: string, action: string, target: string | null, details: Record<string, unknown>): Promise<void> {
  await ctx.audit.append({ actorType: 'cli', actorId: ctx.actor, actorLabel: `${ctx.actor} (command line)`, orgId, action, target, ip: null, userAgent: null, requestId: null, outcome: 'success', details });
}

export interface RetentionShow {
  readonly customer: string;
  /** The customer's own policy as options, or null for the default. */
  readonly customerPolicy: string[] | null;
  readonly machines: readonly { readonly name: string; readonly policy: string[]; readonly source: 'machine' | 'customer' | 'default' }[];
}

export async function adminRetentionShow(ctx: AdminContext, customerName: string): Promise<RetentionShow> {
  const c = await customerOf(ctx, customerName);
  const machines = await ctx.db.selectFrom('machines').select(['name', 'retention_json']).where('customer_id', '=', c.id).orderBy('name').execute();
  const own = effectivePolicy(null, c.retention_json);
  return {
    customer: c.name,
    customerPolicy: own.source === 'customer' ? retentionPolicyArgs(own.policy) : null,
    machines: machines.map((m) => {
      const e = effectivePolicy(m.retention_json, c.retention_json);
      return { name: m.name, policy: retentionPolicyArgs(e.policy), source: e.source };
    }),
  };
}

/** Sets (or with null, removes) the policy of a customer or of one of its machines. */
export async function adminRetentionSet(ctx: AdminContext, customerName: string, machineName: string | undefined, policy: RetentionPolicy | null): Promise<void> {
  const c = await customerOf(ctx, customerName);
  const json = policy === null ? null : JSON.stringify(policy);
  if (machineName === undefined) {
    await ctx.db.updateTable('orgs').set({ retention_json: json, updated_at: ctx.clock().toISOString() }).where('id', '=', c.id).execute();
  } else {
    const r = await ctx.db.updateTable('machines').set({ retention_json: json }).where('customer_id', '=', c.id).where('name', '=', machineName).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw apiError('machineNotFound', { name: machineName });
  }
  await audit(ctx, c.id, 'retention.set', machineName ? `machine:${machineName}` : null, { policy: policy === null ? 'default' : retentionPolicyArgs(policy).join(' ') });
}

export async function adminRetentionPlan(ctx: AdminContext, customerName: string): Promise<CustomerPlan> {
  const c = await customerOf(ctx, customerName);
  return planCustomer(ctx.db, c.id, ctx.clock(), ctx.dataDir.settings);
}

export async function adminBinList(ctx: AdminContext, customerName: string): Promise<BinEntry[]> {
  const c = await customerOf(ctx, customerName);
  return listBin(ctx.db, c.id, ctx.dataDir.settings.recycleBinDays);
}

/** A full snapshot id from a unique prefix (at least 8 hex digits) among the customer's snapshots. */
async function resolveId(ctx: AdminContext, customerId: string, prefix: string, binned: boolean): Promise<string> {
  if (!/^[0-9a-f]{8,32}$/.test(prefix)) throw apiError('badRequest', { reason: 'a snapshot id (at least its first 8 hex digits)' });
  const q = ctx.db.selectFrom('snapshots').select('id').where('customer_id', '=', customerId).where('id', 'like', `${prefix}%`);
  const rows = await (binned ? q.where('deleted_at', 'is not', null) : q.where('deleted_at', 'is', null)).limit(2).execute();
  if (rows.length === 0) throw apiError(binned ? 'snapshotNotInBin' : 'snapshotNotFound', { id: prefix });
  if (rows.length > 1) throw apiError('badRequest', { reason: `the prefix ${prefix} is ambiguous` });
  return rows[0]!.id;
}

/** Moves one snapshot to the recycle bin (refused inside the protection window). */
export async function adminSnapshotDelete(ctx: AdminContext, customerName: string, idPrefix: string): Promise<string> {
  const c = await customerOf(ctx, customerName);
  const id = await resolveId(ctx, c.id, idPrefix, false);
  await moveToBin(ctx.db, c.id, [id], { by: ctx.actor, reason: 'removed by an administrator', now: ctx.clock(), protectDays: ctx.dataDir.settings.protectDays, timeZone: ctx.dataDir.settings.retentionTimeZone });
  await audit(ctx, c.id, 'snapshot.bin', `snapshot:${id}`, { count: 1 });
  return id;
}

export async function adminBinRestore(ctx: AdminContext, customerName: string, idPrefix: string): Promise<string> {
  const c = await customerOf(ctx, customerName);
  const id = await resolveId(ctx, c.id, idPrefix, true);
  await restoreFromBin(ctx.db, c.id, id, new Date(ctx.clock().getTime() + ctx.dataDir.settings.recycleBinDays * 86_400_000));
  await audit(ctx, c.id, 'snapshot.bin.restore', `snapshot:${id}`, {});
  return id;
}
