import { randomUUID } from 'node:crypto';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { apiError } from '../../errors.js';
import { recordHeartbeat } from '../../db/queries/machines.js';
import { insertRestoreTest } from '../../db/queries/restore-tests.js';
import { getSnapshot } from '../../db/queries/snapshots.js';
import { isoNow } from '../../types.js';
import { heartbeatSchema, reportRestoreTestSchema } from './schema.js';

interface RestoreTestBody {
  snapshotId: string;
  startedAt: string;
  finishedAt: string;
  result: 'success' | 'failed';
  sampledFiles: number;
  comparedFiles: number;
  bytes: number;
  mismatches: number;
  errorCode?: string;
}

export function registerDaemonRoutes(app: App, deps: Deps): void {
  app.post<{ Body: { agentVersion: string; startedAt?: string } }>('/heartbeat', { schema: heartbeatSchema, config: { action: 'heartbeat:write' } }, async (req) => {
    const m = machineOf(req);
    const now = isoNow(deps.clock);
    await recordHeartbeat(deps.db, m.machineId, now, req.body.agentVersion);
    return { serverTime: now };
  });

  app.post<{ Body: RestoreTestBody }>('/restore-tests', { schema: reportRestoreTestSchema, config: { action: 'restore-tests:write' } }, async (req, reply) => {
    const m = machineOf(req);
    const b = req.body;
    // Only a live snapshot of this customer can have been restored (possibly another
    // machine's: restoring on another computer proves it too, R1).
    const snap = await getSnapshot(deps.db, m.customerId, b.snapshotId);
    if (!snap) throw apiError('snapshotNotFound');
    if (b.result === 'success' && b.mismatches > 0) throw apiError('badRequest', { reason: 'a restore test with mismatches cannot be a success' });
    const id = randomUUID();
    await insertRestoreTest(deps.db, m.customerId, {
      id,
      machine_id: m.machineId,
      snapshot_id: b.snapshotId,
      started_at: new Date(b.startedAt).toISOString(),
      finished_at: new Date(b.finishedAt).toISOString(),
      received_at: isoNow(deps.clock),
      result: b.result,
      sampled_files: b.sampledFiles,
      compared_files: b.comparedFiles,
      bytes: b.bytes,
      mismatches: b.mismatches,
      error_code: b.errorCode ?? null,
    });
    void reply.code(201);
    return { id };
  });
}
