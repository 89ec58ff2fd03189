import { CoffreError, isCoffreError, type SnapshotRecord } from '@coffre/core';
import type { Repository } from './engine/repo.js';
import { restoreTest, type RestoreTestResult } from './engine/restore-test.js';
import type { RestoreReporter } from './engine/restore.js';
import { reportRestoreTest, runErrorCode } from './runs.js';

/**
 * A restore test as `coffre restore-test` and the daemon run it: pick the snapshot, test,
 * tell the server. Shared so that both report the same way. Never prints.
 */

/** `latest` (or nothing) is this machine's newest snapshot; otherwise an id or a unique prefix. */
export async function snapshotToTest(repo: Repository, ref?: string): Promise<SnapshotRecord> {
  if (ref !== undefined && ref !== 'latest') return repo.findSnapshot(ref);
  const mine = (await repo.listSnapshots()).filter((s) => s.machineId === repo.machineId);
  const newest = mine[mine.length - 1];
  if (!newest) throw new CoffreError('NOT_FOUND', 'this machine has no snapshot yet: nothing to test (give a snapshot id to test another machine\'s)');
  return newest;
}

export interface RestoreTestRun {
  readonly snapshot: SnapshotRecord;
  readonly result: RestoreTestResult;
  /** The server's id of the report, or null when it could not be sent. */
  readonly reportId: string | null;
  readonly reportError: unknown;
}

/** Errors that mean the server cannot hear about anything now: the report is not even tried. */
function serverGone(e: unknown): boolean {
  return isCoffreError(e, 'UNREACHABLE') || isCoffreError(e, 'UNAUTHORIZED') || isCoffreError(e, 'TLS_PIN_MISMATCH');
}

export async function runRestoreTest(repo: Repository, opts: { readonly snapshot: SnapshotRecord; readonly percent: number; readonly reporter?: RestoreReporter; readonly tmpParent?: string }): Promise<RestoreTestRun> {
  const startedAt = new Date();
  let result: RestoreTestResult;
  try {
    result = await restoreTest(repo, { snapshot: opts.snapshot, percent: opts.percent, ...(opts.reporter ? { reporter: opts.reporter } : {}), ...(opts.tmpParent ? { tmpParent: opts.tmpParent } : {}) });
  } catch (e) {
    // The test could not run to its end (no space for the temporary copy, damaged trees…):
    // that is a failed test too, and the server hears of it when it can.
    if (!serverGone(e)) {
      await reportRestoreTest(repo.api, {
        snapshotId: opts.snapshot.id,
        startedAt,
        finishedAt: new Date(),
        result: 'failed',
        sampledFiles: 0,
        comparedFiles: 0,
        bytes: 0,
        mismatches: 0,
        errorCode: runErrorCode(e),
      }).catch(() => undefined);
    }
    throw e;
  }
  let reportId: string | null = null;
  let reportError: unknown = null;
  try {
    reportId = await reportRestoreTest(repo.api, {
      snapshotId: result.snapshotId,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      result: result.ok ? 'success' : 'failed',
      sampledFiles: result.sampledFiles,
      comparedFiles: result.comparedFiles,
      bytes: result.bytes,
      mismatches: result.problems.length,
      ...(result.ok ? {} : { errorCode: 'INTEGRITY' }),
    });
  } catch (e) {
    reportError = e;
  }
  return { snapshot: opts.snapshot, result, reportId, reportError };
}
