import type { MachineRecord } from '@coffre/core';
import type { MachineRow } from '../../db/queries/machines.js';

/** Never exposes the credential hash. */
export function presentMachine(m: MachineRow): MachineRecord {
  return { id: m.id, name: m.name, hostname: m.hostname, createdAt: m.created_at, lastSeenAt: m.last_seen_at, revoked: m.revoked_at !== null };
}
