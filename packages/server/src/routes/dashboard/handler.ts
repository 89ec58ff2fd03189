import type { BackupStatus, CustomerSummary, DashboardResponse, OrgSnapshotListResponse, TierListResponse, TierRecord, UsageResponse } from '@coffre/core';
import { listTiers } from '../../db/queries/tiers.js';
import type { TiersTable } from '../../db/schema.js';
import { sql } from 'kysely';
import type { Database } from '../../db/database.js';
import { listOrgs, subtreeIds, type OrgRow } from '../../db/queries/orgs.js';
import { targetOrgOf, userOf, type App, type Deps } from '../../http/context.js';
import { dashboardSchema, orgSnapshotsSchema, orgUsageSchema, tiersSchema } from './schema.js';

/**
 * Backup status of a customer until per-job schedules exist (issue 5's daemon reports
 * them): the terms' default is one backup a day, so a customer whose newest snapshot is
 * older than 26 hours is late; one without any snapshot was never backed up.
 */
export const DAILY_GRACE_HOURS = 26;
export type { BackupStatus };

/** Failed when a machine's latest reported run failed; otherwise by the newest snapshot's age. */
export function backupStatus(lastSuccessAt: string | null, anyLatestRunFailed: boolean, now: Date): BackupStatus {
  if (anyLatestRunFailed) return 'failed';
  if (lastSuccessAt === null) return 'never';
  return now.getTime() - Date.parse(lastSuccessAt) <= DAILY_GRACE_HOURS * 3_600_000 ? 'ok' : 'late';
}

/** The result of each machine's newest run report. */
async function latestRunResults(db: Database, customerId: string): Promise<string[]> {
  const rows = await sql<{ result: string }>`
    select r.result from backup_runs r
    where r.customer_id = ${customerId}
      and r.received_at = (select max(r2.received_at) from backup_runs r2 where r2.machine_id = r.machine_id)`.execute(db);
  return rows.rows.map((r) => r.result);
}


/** Protected volume: the logical size of each machine's newest snapshot, summed. */
async function protectedBytes(db: Database, customerId: string): Promise<number> {
  const rows = await sql<{ total: number | null }>`
    select sum(s.logical_size) as total from snapshots s
    where s.customer_id = ${customerId}
      and s.time = (select max(s2.time) from snapshots s2 where s2.customer_id = s.customer_id and s2.machine_id = s.machine_id)`.execute(db);
  return Number(rows.rows[0]?.total ?? 0);
}

async function summary(db: Database, c: OrgRow, parents: Map<string, OrgRow>, now: Date): Promise<CustomerSummary> {
  const last = await db.selectFrom('snapshots').select((eb) => eb.fn.max('time').as('t')).where('customer_id', '=', c.id).executeTakeFirst();
  const machines = await db.selectFrom('machines').select((eb) => eb.fn.countAll<number>().as('n')).where('customer_id', '=', c.id).where('revoked_at', 'is', null).executeTakeFirstOrThrow();
  const stored = await db.selectFrom('packs').select((eb) => eb.fn.sum<number>('size').as('s')).where('customer_id', '=', c.id).executeTakeFirst();
  const lastSuccessAt = (last?.t as string | null | undefined) ?? null;
  const tier = c.tier_id ? await db.selectFrom('tiers').selectAll().where('id', '=', c.tier_id).executeTakeFirst() : undefined;
  const parent = c.parent_id ? parents.get(c.parent_id) : undefined;
  return {
    id: c.id,
    name: c.name,
    parentId: c.parent_id,
    parentName: parent?.name ?? null,
    orgStatus: c.status,
    backupStatus: backupStatus(lastSuccessAt, (await latestRunResults(db, c.id)).includes('failed'), now),
    lastSuccessAt,
    machines: Number(machines.n),
    protectedBytes: await protectedBytes(db, c.id),
    storedBytes: Number(stored?.s ?? 0),
    tier: tier ? presentTier(tier) : null,
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
    const customers = await Promise.all(orgs.filter((o) => o.type === 'customer').map((c) => summary(deps.db, c, byId, now)));
    return { generatedAt: now.toISOString(), customers };
  });

  app.get<{ Querystring: { machineId?: string } }>(
    '/orgs/:orgId/snapshots',
    { schema: orgSnapshotsSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } },
    async (req): Promise<OrgSnapshotListResponse> => {
      const org = targetOrgOf(req);
      let q = deps.db
        .selectFrom('snapshots as s')
        .innerJoin('machines as m', 'm.id', 's.machine_id')
        .select(['s.id', 's.time', 's.machine_id', 'm.name as machine_name', 's.logical_size', 's.ref_count', 's.parent'])
        .where('s.customer_id', '=', org.id);
      if (req.query.machineId) q = q.where('s.machine_id', '=', req.query.machineId);
      const rows = await q.orderBy('s.time', 'desc').limit(1000).execute();
      return {
        snapshots: rows.map((r) => ({ id: r.id, time: r.time, machineId: r.machine_id, machineName: r.machine_name, logicalSize: Number(r.logical_size), chunks: Number(r.ref_count), parent: r.parent })),
      };
    },
  );

  app.get('/orgs/:orgId/usage', { schema: orgUsageSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } }, async (req): Promise<UsageResponse> => {
    const org = targetOrgOf(req);
    // Stored: cumulative size of packs by day of upload. Protected: per day, the newest snapshot of each machine.
    const packs = await deps.db
      .selectFrom('packs')
      .select([sql<string>`substr(created_at, 1, 10)`.as('day'), (eb) => eb.fn.sum<number>('size').as('bytes')])
      .where('customer_id', '=', org.id)
      .groupBy(sql`substr(created_at, 1, 10)`)
      .orderBy('day')
      .execute();
    let cumulative = 0;
    const stored = packs.map((p) => ({ date: p.day, bytes: (cumulative += Number(p.bytes)) }));
    const snaps = await deps.db.selectFrom('snapshots').select(['time', 'machine_id', 'logical_size']).where('customer_id', '=', org.id).orderBy('time').execute();
    const latest = new Map<string, number>();
    const byDay = new Map<string, number>();
    for (const s of snaps) {
      latest.set(s.machine_id, Number(s.logical_size));
      byDay.set(s.time.slice(0, 10), [...latest.values()].reduce((a, b) => a + b, 0));
    }
    return { stored, protected: [...byDay.entries()].map(([date, bytes]) => ({ date, bytes })) };
  });
}
