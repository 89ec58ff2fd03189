import type { SnapshotRecord } from '@coffre/core';
import type { SnapshotRow } from '../../db/queries/snapshots.js';

export function presentSnapshot(s: SnapshotRow): SnapshotRecord {
  return { id: s.id, time: s.time, machineId: s.machineId, machineName: s.machineName, manifest: s.manifest };
}
