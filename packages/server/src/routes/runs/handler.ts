import { randomUUID } from 'node:crypto';
import type { RunListResponse } from '@coffre/core';
import { insertBackupRun, runsOfCustomer } from '../../db/queries/runs.js';
import { machineSnapshotExists } from '../../db/queries/snapshots.js';
import { apiError } from '../../errors.js';
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
    // The dashboard's "last success" rests on this: a success names the snapshot it committed,
    // and any snapshot named must be one this machine committed.
    if (b.result === 'success' && b.snapshotId === undefined) throw apiError('runSnapshotMissing');
    if (b.snapshotId !== undefined && !(await machineSnapshotExists(deps.db, m.customerId, m.machineId, b.snapshotId))) throw apiError('runSnapshotNotFound', { snapshotId: b.snapshotId });
    const id = randomUUID();
    await insertBackupRun(deps.db, m.customerId, {
      id,
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
    });
    void reply.code(201);
    return { id };
  });

  // People: the runs of a customer they look after.
  app.get<{ Querystring: { machineId?: string } }>('/orgs/:orgId/runs', { schema: listRunsSchema, config: { auth: 'user', action: 'machines:read', tenant: 'param:orgId' } }, async (req): Promise<RunListResponse> => {
    const org = targetOrgOf(req);
    const rows = await runsOfCustomer(deps.db, org.id, req.query.machineId, 500);
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
        files: r.files,
        bytes: r.bytes,
        addedBytes: r.added_bytes,
        warnings: r.warnings,
        snapshotId: r.snapshot_id,
        errorCode: r.error_code,
        job: r.job_name,
        trigger: r.trigger,
      })),
    };
  });
}
