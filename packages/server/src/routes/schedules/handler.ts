import { isCoffreError, parseSchedule, type AlertListResponse, type MachineJobRecord } from '@coffre/core';
import { subtreeIds } from '../../db/queries/orgs.js';
import { apiError } from '../../errors.js';
import { machineOf, targetOrgOf, type App, type Deps } from '../../http/context.js';
import { listAlerts } from '../../observatory/alerts.js';
import { isoNow } from '../../types.js';
import { listAlertsSchema, reportJobsSchema } from './schema.js';

export function registerScheduleRoutes(app: App, deps: Deps): void {
  // Agents: replace the machine's list of scheduled jobs (idempotent).
  app.put<{ Body: { jobs: MachineJobRecord[] } }>('/jobs', { schema: reportJobsSchema, config: { action: 'jobs:write' } }, async (req) => {
    const m = machineOf(req);
    const jobs: MachineJobRecord[] = [];
    const names = new Set<string>();
    for (const j of req.body.jobs) {
      if (names.has(j.name)) throw apiError('badRequest', { job: j.name, reason: 'duplicate job name' });
      names.add(j.name);
      try {
        jobs.push({ name: j.name, schedule: parseSchedule(j.schedule, j.timezone), timezone: j.timezone });
      } catch (e) {
        if (isCoffreError(e)) throw apiError('badSchedule', { job: j.name, reason: e.message });
        throw e;
      }
    }
    const now = isoNow(deps.clock);
    await deps.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('machines').select('schedule_since').where('id', '=', m.machineId).executeTakeFirstOrThrow();
      await trx.deleteFrom('machine_jobs').where('machine_id', '=', m.machineId).execute();
      if (jobs.length > 0) await trx.insertInto('machine_jobs').values(jobs.map((j) => ({ machine_id: m.machineId, ...j }))).execute();
      await trx
        .updateTable('machines')
        .set({ schedule_reported_at: now, schedule_since: jobs.length === 0 ? null : (current.schedule_since ?? now) })
        .where('id', '=', m.machineId)
        .execute();
    });
    return { jobs };
  });

  // People: the alerts of the customers they look after.
  app.get<{ Querystring: { state?: 'open' | 'all' } }>(
    '/orgs/:orgId/alerts',
    { schema: listAlertsSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } },
    async (req): Promise<AlertListResponse> => {
      const ids = await subtreeIds(deps.db, targetOrgOf(req).id);
      return { alerts: await listAlerts(deps.db, ids as string[], { openOnly: (req.query.state ?? 'open') === 'open', limit: 500 }) };
    },
  );
}
