import { isCoffreError } from '@coffre/core';
import type { ApiClient } from './client.js';
import { backup, type BackupOptions, type BackupResult, type BackupWarning } from './engine/backup.js';
import type { Repository } from './engine/repo.js';

/**
 * Backup runs as the server's observatory learns them (POST /runs): counts, result, an
 * error code of the agent's catalogue, the job and what started it — never a path or a
 * message that could carry a file name. Shared by `coffre backup` and `coffre daemon`.
 */
export type RunResult = 'success' | 'partial' | 'failed';
export type RunTrigger = 'manual' | 'schedule' | 'retry';

export interface RunRecord {
  readonly startedAt: Date;
  /** Defaults to the time of the report. */
  readonly finishedAt?: Date;
  readonly result: RunResult;
  readonly files: number;
  readonly bytes: number;
  readonly addedBytes: number;
  readonly warnings: number;
  readonly snapshotId?: string;
  readonly errorCode?: string;
  readonly job?: string;
  readonly trigger?: RunTrigger;
}

const ERROR_CODE_RE = /^[A-Z_]{2,40}$/;

/** The code the server may store for an error: the catalogue's code, a system code (ENOSPC), else ERROR. */
export function runErrorCode(e: unknown): string {
  if (isCoffreError(e)) return e.code;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && ERROR_CODE_RE.test(code) ? code : 'ERROR';
}

/**
 * Sends a run report. Best effort: returns the server's run id, or null when the report
 * could not be sent (the server may be the very reason the run failed); `onError` hears why.
 * A report never changes a run's outcome or exit code.
 */
export async function reportRun(api: ApiClient, r: RunRecord, onError?: (e: unknown) => void): Promise<string | null> {
  const errorCode = r.errorCode === undefined ? undefined : ERROR_CODE_RE.test(r.errorCode) ? r.errorCode : 'ERROR';
  const body = {
    startedAt: r.startedAt.toISOString(),
    finishedAt: (r.finishedAt ?? new Date()).toISOString(),
    result: r.result,
    files: r.files,
    bytes: r.bytes,
    addedBytes: r.addedBytes,
    warnings: r.warnings,
    ...(r.snapshotId ? { snapshotId: r.snapshotId } : {}),
    ...(errorCode ? { errorCode } : {}),
    ...(r.job ? { job: r.job } : {}),
    ...(r.trigger ? { trigger: r.trigger } : {}),
  };
  try {
    const res = await api.json<{ id?: string }>('POST', '/runs', body);
    return typeof res?.id === 'string' ? res.id : null;
  } catch (e) {
    onError?.(e);
    return null;
  }
}

/** A backup's outcome before it is reported: the engine's result, or the error that stopped it. */
export type BackupOutcome =
  | { readonly ok: true; readonly result: BackupResult; readonly incomplete: boolean; readonly record: RunRecord }
  | { readonly ok: false; readonly error: unknown; readonly record: RunRecord };

/**
 * Runs one backup and describes it as a run, without printing and without reporting: the
 * caller reports it (after its post command, for the daemon). A snapshot with unreadable or
 * ever-changing files is `partial`; an error is `failed` with the error's code.
 */
export async function backupRun(repo: Repository, opts: BackupOptions, meta: { readonly job?: string; readonly trigger: RunTrigger }): Promise<BackupOutcome> {
  const startedAt = new Date();
  const warnings: BackupWarning[] = [];
  const reporter = opts.reporter;
  const tag = { ...(meta.job ? { job: meta.job } : {}), trigger: meta.trigger };
  try {
    const result = await backup(repo, {
      ...opts,
      reporter: {
        ...(reporter?.progress ? { progress: (p) => reporter.progress!(p) } : {}),
        warning: (w) => {
          warnings.push(w);
          reporter?.warning?.(w);
        },
      },
    });
    const incomplete = result.warnings.some((w) => w.kind === 'unreadable' || w.kind === 'changed');
    const s = result.stats;
    return {
      ok: true,
      result,
      incomplete,
      record: { startedAt, result: incomplete ? 'partial' : 'success', files: s.files, bytes: s.bytes, addedBytes: s.addedBytes, warnings: result.warnings.length, snapshotId: result.snapshot.id, ...tag },
    };
  } catch (error) {
    return { ok: false, error, record: { startedAt, result: 'failed', files: 0, bytes: 0, addedBytes: 0, warnings: warnings.length, errorCode: runErrorCode(error), ...tag } };
  }
}

/** What the server learns of a restore test (POST /restore-tests): counts only, never a path. */
export interface RestoreTestRecord {
  readonly snapshotId: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly result: 'success' | 'failed';
  readonly sampledFiles: number;
  readonly comparedFiles: number;
  readonly bytes: number;
  readonly mismatches: number;
  readonly errorCode?: string;
}

/** Sends a restore test's report; returns the server's id. Throws when it could not be sent. */
export async function reportRestoreTest(api: ApiClient, r: RestoreTestRecord): Promise<string> {
  const errorCode = r.errorCode === undefined ? undefined : ERROR_CODE_RE.test(r.errorCode) ? r.errorCode : 'ERROR';
  const res = await api.json<{ id: string }>('POST', '/restore-tests', {
    snapshotId: r.snapshotId,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt.toISOString(),
    result: r.result,
    sampledFiles: r.sampledFiles,
    comparedFiles: r.comparedFiles,
    bytes: r.bytes,
    mismatches: r.mismatches,
    ...(errorCode ? { errorCode } : {}),
  });
  return res.id;
}
