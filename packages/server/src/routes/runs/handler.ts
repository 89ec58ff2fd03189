import { randomUUID } from 'node:crypto';
import type { RunListResponse } from '@coffre/core';
import type { RunResult, RunTrigger } from '../../db/schema.js';
import { machineOf, targetOrgOf, type App, type Deps } from '../../http/context.js';
import { isoNow } from '../../types.js';
import { listRunsSchema, reportRunSchema } from './schema.js';

interface RunBody {
  startedAt: string;
  finishedAt: string;
  result: RunResult;
  files: number;
  bytes: number;
  addedBytes: number;
  warnings: number;
  snapshotId?: string;
  errorCode?: string;
  job?: string;
  trigger?: RunTrigger;
}

export function registerRunRoutes(app: App, deps: Deps): void {
  // Agents: append-only, their own machine only.
  app.post<{ Body: RunBody }>('/runs', { schema: reportRunSchema, config: { action: 'runs:write' } }, async (req, reply) => {
    const m = machineOf(req);
    const b = req.body;
    const id = randomUUID();
    await deps.db
      .insertInto('backup_runs')
      .values({
        id,
        customer_id: m.customerId,
        machine_id: m.machineId,
        started_at: new Date(b.startedAt).toISOString(),
        finished_at: new Date(b.finishedAt).toISOString(),
        received_at: isoNow(deps.clock),
        result: b.result,
        files: b.files,
        bytes: b.bytes,
        added_bytes: b.addedBytes,
        warnings: b.warnings,
        snapshot_id: b.snapshotId ?? null,
        error_code: b.errorCode ?? null,
        job_name: b.job ?? null,
        trigger: b.trigger ?? null,
      })
      .execute();
    void reply.code(201);
    return { id };
  });

  // People: the runs of a customer they look after.
  app.get<{ Querystring: { machineId?: string } }>('/orgs/:orgId/runs', { schema: listRunsSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } }, async (req): Promise<RunListResponse> => {
    const org = targetOrgOf(req);
    let q = deps.db
      .selectFrom('backup_runs as r')
      .innerJoin('machines as m', 'm.id', 'r.machine_id')
      .select(['r.id', 'r.machine_id', 'm.name as machine_name', 'r.started_at', 'r.finished_at', 'r.received_at', 'r.result', 'r.files', 'r.bytes', 'r.added_bytes', 'r.warnings', 'r.snapshot_id', 'r.error_code', 'r.job_name', 'r.trigger'])
      .where('r.customer_id', '=', org.id);
    if (req.query.machineId) q = q.where('r.machine_id', '=', req.query.machineId);
    const rows = await q.orderBy('r.received_at', 'desc').limit(500).execute();
    return {
      runs: rows.map((r) => ({
        id: r.id,
        machineId: r.machine_id,
        machineName: r.machine_name,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
        receivedAt: r.received_at,
        durationMs: Math.max(0, Date.parse(r.finished_at) - Date.parse(r.started_at)),
        result: r.result,
        files: Number(r.files),
        bytes: Number(r.bytes),
        addedBytes: Number(r.added_bytes),
        warnings: Number(r.warnings),
        snapshotId: r.snapshot_id,
        errorCode: r.error_code,
        job: r.job_name,
        trigger: r.trigger,
      })),
    };
  });
}
