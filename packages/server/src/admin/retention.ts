import { retentionPolicyArgs, type RetentionPolicy } from '@coffre/core';
import { customerPolicyByName, machinePoliciesOfCustomer, setCustomerPolicy, setMachinePolicyOfCustomer, snapshotIdsByPrefixOfCustomer } from '../db/queries/retention.js';
import { apiError } from '../errors.js';
import { effectivePolicy, listBin, moveToBin, planCustomer, restoreFromBin, type BinEntry, type CustomerPlan } from '../retention/retention.js';
import type { AdminContext } from './index.js';

async function customerOf(ctx: AdminContext, name: string): Promise<{ id: string; name: string; retention_json: string | null }> {
  const c = await customerPolicyByName(ctx.db, name);
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
  const machines = await machinePoliciesOfCustomer(ctx.db, c.id);
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
    await setCustomerPolicy(ctx.db, c.id, json, ctx.clock().toISOString());
  } else {
    if (!(await setMachinePolicyOfCustomer(ctx.db, c.id, machineName, json))) throw apiError('machineNotFound', { name: machineName });
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
  const ids = await snapshotIdsByPrefixOfCustomer(ctx.db, customerId, prefix, binned, 2);
  if (ids.length === 0) throw apiError(binned ? 'snapshotNotInBin' : 'snapshotNotFound', { id: prefix });
  if (ids.length > 1) throw apiError('badRequest', { reason: `the prefix ${prefix} is ambiguous` });
  return ids[0]!;
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
