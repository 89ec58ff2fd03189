import type { RestoreTestSummary } from '@coffre/core';
import { sql } from 'kysely';
import type { Database } from '../database.js';
import type { RestoreTestsTable } from '../schema.js';

/** Sampled restore tests reported by agents (`restore_tests`): append-only, scoped to customers. */

/** Records a restore test one of the customer's machines reports. */
export async function insertRestoreTest(db: Database, customerId: string, t: Omit<RestoreTestsTable, 'customer_id'>): Promise<void> {
  await db
    .insertInto('restore_tests')
    .values({ ...t, customer_id: customerId })
    .execute();
}

/** Each machine's newest restore test (by server time), over the given customers' machines. */
export async function latestRestoreTestPerMachine(db: Database, customerIds: readonly string[]): Promise<Map<string, RestoreTestSummary>> {
  const tests = await sql<{ machine_id: string; snapshot_id: string; finished_at: string; result: 'success' | 'failed'; sampled_files: number; compared_files: number; mismatches: number }>`
    select t.machine_id, t.snapshot_id, t.finished_at, t.result, t.sampled_files, t.compared_files, t.mismatches from restore_tests t
    where t.customer_id in (${sql.join(customerIds)})
      and t.received_at = (select max(t2.received_at) from restore_tests t2 where t2.machine_id = t.machine_id)`.execute(db);
  return new Map<string, RestoreTestSummary>(
    tests.rows.map((t) => [
      t.machine_id,
      { snapshotId: t.snapshot_id, finishedAt: t.finished_at, result: t.result, sampledFiles: Number(t.sampled_files), comparedFiles: Number(t.compared_files), mismatches: Number(t.mismatches) },
    ]),
  );
}
