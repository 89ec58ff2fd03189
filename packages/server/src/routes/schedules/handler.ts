import { isCoffreError, parseSchedule, type AlertListResponse, type MachineJobRecord } from '@coffre/core';
import { LockName, writeTransaction } from '../../db/engine.js';
import { listAlerts } from '../../db/queries/alerts.js';
import { replaceMachineJobs } from '../../db/queries/machine-jobs.js';
import { subtreeIds } from '../../db/queries/orgs.js';
import { apiError } from '../../errors.js';
import { machineOf, targetOrgOf, type App, type Deps } from '../../http/context.js';
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
    // The machine's jobs, replaced as a whole: two reports at once must not mix their lists.
    await writeTransaction(deps.db, [LockName.machine(m.machineId)], (trx) => replaceMachineJobs(trx, m.machineId, jobs, now));
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
