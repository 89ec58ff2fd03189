import { sql } from 'kysely';
import type { Database } from '../database.js';
import type { BackupRunsTable, RunResult } from '../schema.js';

/** Backup runs reported by agents (`backup_runs`): append-only, scoped to customers. */

/** Records a run one of the customer's machines reports. */
export async function insertBackupRun(db: Database, customerId: string, run: Omit<BackupRunsTable, 'customer_id'>): Promise<void> {
  await db
    .insertInto('backup_runs')
    .values({ ...run, customer_id: customerId })
    .execute();
}

export interface RunListRow {
  readonly id: string;
  readonly machine_id: string;
  readonly machine_name: string;
  readonly started_at: string;
  readonly finished_at: string;
  readonly received_at: string;
  readonly result: RunResult;
  readonly files: number;
  readonly bytes: number;
  readonly added_bytes: number;
  readonly warnings: number;
  readonly snapshot_id: string | null;
  readonly error_code: string | null;
  readonly job_name: string | null;
  readonly trigger: BackupRunsTable['trigger'];
}

/** The customer's runs (optionally one machine's), newest received first, at most `limit`. */
export async function runsOfCustomer(db: Database, customerId: string, machineId: string | undefined, limit: number): Promise<RunListRow[]> {
  let q = db
    .selectFrom('backup_runs as r')
    .innerJoin('machines as m', 'm.id', 'r.machine_id')
    .select(['r.id', 'r.machine_id', 'm.name as machine_name', 'r.started_at', 'r.finished_at', 'r.received_at', 'r.result', 'r.files', 'r.bytes', 'r.added_bytes', 'r.warnings', 'r.snapshot_id', 'r.error_code', 'r.job_name', 'r.trigger'])
    .where('r.customer_id', '=', customerId);
  if (machineId) q = q.where('r.machine_id', '=', machineId);
  const rows = await q.orderBy('r.received_at', 'desc').limit(limit).execute();
  return rows.map((r) => ({ ...r, files: Number(r.files), bytes: Number(r.bytes), added_bytes: Number(r.added_bytes), warnings: Number(r.warnings) }));
}

/** How many of the customer's runs were received since `since`, per result. */
export async function runCountsOfCustomerSince(db: Database, customerId: string, since: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('backup_runs')
    .select(['result', (eb) => eb.fn.countAll<number>().as('n')])
    .where('customer_id', '=', customerId)
    .where('received_at', '>=', since)
    .groupBy('result')
    .execute();
  return new Map(rows.map((r) => [r.result, Number(r.n)]));
}

/** Each machine's newest run (by server time), over the given customers' machines. */
export async function latestRunPerMachine(db: Database, customerIds: readonly string[]): Promise<{ machine_id: string; result: string; finished_at: string; error_code: string | null }[]> {
  const r = await sql<{ machine_id: string; result: string; finished_at: string; error_code: string | null }>`
    select r.machine_id, r.result, r.finished_at, r.error_code from backup_runs r
    where r.customer_id in (${sql.join(customerIds)})
      and r.received_at = (select max(r2.received_at) from backup_runs r2 where r2.machine_id = r.machine_id)`.execute(db);
  return r.rows;
}

/** Per machine and job name (null: runs that name no job), its newest run and its newest success, by server time. */
export async function runTimesPerJob(db: Database, customerIds: readonly string[]): Promise<{ machine_id: string; job_name: string | null; last_received: string; last_success: string | null }[]> {
  const r = await sql<{ machine_id: string; job_name: string | null; last_received: string; last_success: string | null }>`
    select r.machine_id, r.job_name, max(r.received_at) as last_received,
           max(case when r.result in ('success', 'partial') then r.received_at end) as last_success
    from backup_runs r where r.customer_id in (${sql.join(customerIds)})
    group by r.machine_id, r.job_name`.execute(db);
  return r.rows;
}

/** Per machine and job name, its newest run when that run failed. */
export async function failedLatestRunPerJob(db: Database, customerIds: readonly string[]): Promise<{ machine_id: string; job_name: string | null; received_at: string }[]> {
  // `is not distinct from`: the null-safe equality (runs that name no job form one group), on both engines.
  const r = await sql<{ machine_id: string; job_name: string | null; received_at: string }>`
    select r.machine_id, r.job_name, r.received_at from backup_runs r
    where r.customer_id in (${sql.join(customerIds)}) and r.result = 'failed'
      and r.received_at = (select max(r2.received_at) from backup_runs r2 where r2.machine_id = r.machine_id and r2.job_name is not distinct from r.job_name)`.execute(db);
  return r.rows;
}
