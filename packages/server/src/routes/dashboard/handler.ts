import { type CustomerSummary, type DashboardResponse, type OrgSnapshotListResponse, type TierListResponse, type TierRecord, type UsageResponse } from '@coffre/core';
import { findTier, listTiers } from '../../db/queries/tiers.js';
import type { TiersTable } from '../../db/schema.js';
import type { Database } from '../../db/database.js';
import { openAlertCounts } from '../../db/queries/alerts.js';
import { liveSnapshotsForConsole, packBytesPerDayOfCustomer, snapshotSizesOfCustomer } from '../../db/queries/dashboard.js';
import { listOrgs, subtreeIds, type OrgRow } from '../../db/queries/orgs.js';
import { protectedBytes, storedBytes } from '../../db/queries/usage.js';
import { targetOrgOf, userOf, type App, type Deps } from '../../http/context.js';
import { customerRollup, machineStates, type MachineState } from '../../observatory/machine-states.js';
import { graceMs } from '../../observatory/alerts.js';
import { dashboardSchema, orgSnapshotsSchema, orgUsageSchema, tiersSchema } from './schema.js';

async function summary(db: Database, c: OrgRow, parents: Map<string, OrgRow>, states: readonly MachineState[], openAlerts: number): Promise<CustomerSummary> {
  const { status, lastSuccessAt, activeMachines } = customerRollup(states);
  const tier = c.tier_id ? await findTier(db, c.tier_id) : undefined;
  const parent = c.parent_id ? parents.get(c.parent_id) : undefined;
  return {
    id: c.id,
    name: c.name,
    parentId: c.parent_id,
    parentName: parent?.name ?? null,
    orgStatus: c.status,
    backupStatus: status,
    lastSuccessAt,
    machines: activeMachines,
    protectedBytes: await protectedBytes(db, c.id),
    storedBytes: await storedBytes(db, c.id),
    tier: tier ? presentTier(tier) : null,
    openAlerts,
  };
}

export function presentTier(t: TiersTable): TierRecord {
  return { id: t.id, name: t.name, limitBytes: Number(t.limit_bytes), monthlyPriceCents: t.monthly_price_cents };
}

export function registerDashboardRoutes(app: App, deps: Deps): void {
  app.get('/tiers', { schema: tiersSchema, config: { auth: 'user', action: 'orgs:read', tenant: 'subtree' } }, async (): Promise<TierListResponse> => {
    return { tiers: (await listTiers(deps.db)).map(presentTier) };
  });

  app.get('/dashboard', { schema: dashboardSchema, config: { auth: 'user', action: 'orgs:read', tenant: 'subtree' } }, async (req): Promise<DashboardResponse> => {
    const orgs = await listOrgs(deps.db, await subtreeIds(deps.db, userOf(req).orgId));
    const byId = new Map(orgs.map((o) => [o.id as string, o]));
    const now = deps.clock();
    const customerOrgs = orgs.filter((o) => o.type === 'customer');
    const ids = customerOrgs.map((c) => c.id as string);
    const states = await machineStates(deps.db, ids, now, graceMs(deps));
    const alerts = new Map((await openAlertCounts(deps.db, ids)).map((r) => [r.customerId, r.n]));
    const customers = await Promise.all(
      customerOrgs.map((c) => summary(deps.db, c, byId, states.filter((s) => (s.machine.customer_id as string) === c.id), alerts.get(c.id) ?? 0)),
    );
    return { generatedAt: now.toISOString(), customers };
  });

  app.get<{ Querystring: { machineId?: string } }>(
    '/orgs/:orgId/snapshots',
    { schema: orgSnapshotsSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } },
    async (req): Promise<OrgSnapshotListResponse> => {
      const org = targetOrgOf(req);
      const rows = await liveSnapshotsForConsole(deps.db, org.id, req.query.machineId, 1000);
      return {
        snapshots: rows.map((r) => ({ id: r.id, time: r.time, machineId: r.machine_id, machineName: r.machine_name, logicalSize: r.logical_size, chunks: r.ref_count, parent: r.parent })),
      };
    },
  );

  app.get('/orgs/:orgId/usage', { schema: orgUsageSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } }, async (req): Promise<UsageResponse> => {
    const org = targetOrgOf(req);
    // Stored: cumulative size of packs by day of upload. Protected: per day, the newest snapshot of each machine.
    const packs = await packBytesPerDayOfCustomer(deps.db, org.id);
    let cumulative = 0;
    const stored = packs.map((p) => ({ date: p.day, bytes: (cumulative += p.bytes) }));
    const snaps = await snapshotSizesOfCustomer(deps.db, org.id);
    const latest = new Map<string, number>();
    const byDay = new Map<string, number>();
    for (const s of snaps) {
      latest.set(s.machine_id, Number(s.logical_size));
      byDay.set(s.time.slice(0, 10), [...latest.values()].reduce((a, b) => a + b, 0));
    }
    return { stored, protected: [...byDay.entries()].map(([date, bytes]) => ({ date, bytes })) };
  });
}
