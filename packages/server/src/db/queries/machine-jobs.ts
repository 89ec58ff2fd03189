import type { MachineJobRecord } from '@coffre/core';
import type { Database } from '../database.js';
import type { MachineJobsTable } from '../schema.js';

/** The scheduled jobs agents report for their machine (`machine_jobs`), and the schedule times on `machines`. */

/**
 * Replaces the machine's list of jobs (run inside a transaction holding
 * `LockName.machine(machineId)`): `schedule_since` keeps its first value while the machine
 * has jobs, and is cleared when it has none.
 */
export async function replaceMachineJobs(trx: Database, machineId: string, jobs: readonly MachineJobRecord[], now: string): Promise<void> {
  const current = await trx.selectFrom('machines').select('schedule_since').where('id', '=', machineId).executeTakeFirstOrThrow();
  await trx.deleteFrom('machine_jobs').where('machine_id', '=', machineId).execute();
  if (jobs.length > 0) await trx.insertInto('machine_jobs').values(jobs.map((j) => ({ machine_id: machineId, ...j }))).execute();
  await trx
    .updateTable('machines')
    .set({ schedule_reported_at: now, schedule_since: jobs.length === 0 ? null : (current.schedule_since ?? now) })
    .where('id', '=', machineId)
    .execute();
}

/** The jobs of the given machines, by name. */
export async function jobsOfMachines(db: Database, machineIds: readonly string[]): Promise<MachineJobsTable[]> {
  return db.selectFrom('machine_jobs').selectAll().where('machine_id', 'in', machineIds).orderBy('name').execute();
}
