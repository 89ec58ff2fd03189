import { customerStatus, machineStatus, worstStatus, type BackupStatus, type MachineJobRecord, type MachineStatus, type RestoreTestSummary } from '@coffre/core';
import type { Database } from '../db/database.js';
import { jobsOfMachines } from '../db/queries/machine-jobs.js';
import { machinesOfCustomers, type MachineRow } from '../db/queries/machines.js';
import { latestRestoreTestPerMachine } from '../db/queries/restore-tests.js';
import { failedLatestRunPerJob, latestRunPerMachine, runTimesPerJob } from '../db/queries/runs.js';
import { latestSnapshotTimePerMachine } from '../db/queries/snapshots.js';

/** What the observatory, the dashboard and the customer page know about one machine. */
export interface MachineState {
  readonly machine: MachineRow;
  readonly jobs: readonly MachineJobRecord[];
  /** Server time of its newest snapshot. */
  readonly lastSuccessAt: string | null;
  /** Its newest reported run. */
  readonly latestRun: { readonly result: string; readonly finishedAt: string; readonly errorCode: string | null } | null;
  readonly status: MachineStatus;
  readonly lastRestoreTest: RestoreTestSummary | null;
}

/**
 * The state of every machine of the given customers, in a fixed number of queries whatever
 * their count. Revoked machines owe no backup: their status keeps the failed/never/ok of
 * their history but never turns late.
 */
export async function machineStates(db: Database, customerIds: readonly string[], now: Date, graceMs: number): Promise<MachineState[]> {
  if (customerIds.length === 0) return [];
  const machines = await machinesOfCustomers(db, customerIds);
  if (machines.length === 0) return [];
  const jobs = await jobsOfMachines(db, machines.map((m) => m.id as string));
  const lastOf = await latestSnapshotTimePerMachine(db, customerIds);
  const latest = await latestRunPerMachine(db, customerIds);
  // Per job: its newest run (and whether it failed) and its newest success, by server time.
  const perJob = await runTimesPerJob(db, customerIds);
  const failedRuns = await failedLatestRunPerJob(db, customerIds);
  const testOf = await latestRestoreTestPerMachine(db, customerIds);

  const jobsOf = new Map<string, MachineJobRecord[]>();
  for (const j of jobs) {
    const list = jobsOf.get(j.machine_id) ?? [];
    list.push({ name: j.name, schedule: j.schedule, timezone: j.timezone });
    jobsOf.set(j.machine_id, list);
  }
  const runOf = new Map(latest.map((r) => [r.machine_id, r]));
  return machines.map((m) => {
    const machineJobs = jobsOf.get(m.id) ?? [];
    const lastSuccessAt = lastOf.get(m.id) ?? null;
    const run = runOf.get(m.id);
    const since = new Date(m.schedule_since ?? m.created_at);
    const schedules = m.revoked_at === null ? machineJobs : [];
    const mineJobs = perJob.filter((r) => r.machine_id === m.id);
    // A machine whose runs name their job (the daemon) is judged job by job, so a frequent
    // job cannot hide a missed or failed one; one without (manual backups, older agents) by
    // its newest snapshot and newest run, as a whole.
    const byJob = mineJobs.some((r) => r.job_name !== null);
    let status: MachineStatus;
    if (!byJob || schedules.length === 0) {
      status = machineStatus({ schedules, lastSuccessAt: lastSuccessAt === null ? null : new Date(lastSuccessAt), latestRunFailed: run?.result === 'failed', since, graceMs, now });
    } else {
      const manual = mineJobs.find((r) => r.job_name === null);
      const each = schedules.map((j) => {
        const mine = mineJobs.find((r) => r.job_name === j.name);
        // The newest run of this job or of a manual backup decides "failed".
        const newest = [mine, manual].filter((x) => x !== undefined).sort((a, b) => (a!.last_received < b!.last_received ? 1 : -1))[0];
        const newestFailed = newest !== undefined && failedRuns.some((f) => f.machine_id === m.id && f.job_name === newest.job_name && f.received_at === newest.last_received);
        return machineStatus({ schedules: [j], lastSuccessAt: mine?.last_success ? new Date(mine.last_success) : null, latestRunFailed: newestFailed, since, graceMs, now });
      });
      const worst = worstStatus(each.map((e) => e.status));
      const missed = each.filter((e) => e.missedAt !== null).map((e) => e.missedAt!.getTime());
      const next = each.filter((e) => e.nextExpectedAt !== null).map((e) => e.nextExpectedAt!.getTime());
      status = {
        // A machine with snapshots is not "never backed up" because one job has not run yet.
        status: worst === 'never' && lastSuccessAt !== null ? (each.some((e) => e.overdue) ? 'late' : 'ok') : worst,
        overdue: each.some((e) => e.overdue),
        missedAt: missed.length ? new Date(Math.min(...missed)) : null,
        nextExpectedAt: next.length ? new Date(Math.min(...next)) : null,
      };
    }
    return {
      machine: m,
      jobs: machineJobs,
      lastSuccessAt,
      latestRun: run ? { result: run.result, finishedAt: run.finished_at, errorCode: run.error_code } : null,
      lastRestoreTest: testOf.get(m.id) ?? null,
      // A revoked machine owes nothing: never "no schedule" or late.
      status: m.revoked_at !== null && status.status === 'no_schedule' ? { ...status, status: lastSuccessAt ? 'ok' : 'never' } : status,
    };
  });
}

/** What a customer's machines add up to: its status (active machines only), newest success, active machines. */
export function customerRollup(states: readonly MachineState[]): { status: BackupStatus; lastSuccessAt: string | null; activeMachines: number } {
  return {
    status: customerStatus(states.map((s) => ({ revoked: s.machine.revoked_at !== null, status: s.status.status, lastSuccessAt: s.lastSuccessAt }))),
    lastSuccessAt: states.reduce<string | null>((a, s) => (s.lastSuccessAt !== null && (a === null || s.lastSuccessAt > a) ? s.lastSuccessAt : a), null),
    activeMachines: states.filter((s) => s.machine.revoked_at === null).length,
  };
}
