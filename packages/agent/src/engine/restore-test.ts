import { createHash, randomInt } from 'node:crypto';
import { chmodSync, createReadStream, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { nodeNameBytes, type ChunkId, type SnapshotRecord, type TreeNode } from '@coffre/core';
import type { Repository } from './repo.js';
import { restore, type PathSelector, type RestoreReporter } from './restore.js';

/**
 * Restore test (R6): a random sample of a snapshot's regular files is restored to a fresh
 * private temporary directory and each restored file is compared, byte for byte (SHA-256),
 * with its source when the source is unchanged since the snapshot (same size and
 * modification time as recorded). A file changed at the source since then is restored
 * (its chunks are authenticated like any restore) but not compared. The temporary
 * directory is removed afterwards, whatever happens. Never prints.
 */
export const DEFAULT_SAMPLE_PERCENT = 5;
/** At most this many files per test, whatever the percentage. */
export const MAX_SAMPLE_FILES = 1000;
/** At most this many bytes restored per test (the temporary directory must fit on the disk). */
export const MAX_SAMPLE_BYTES = 2 * 1024 * 1024 * 1024;

export interface SampleLimits {
  readonly percent: number;
  readonly maxFiles: number;
  readonly maxBytes: number;
}

/**
 * Picks the sample: ceil(percent % of the files), at least one, at most `maxFiles`, in a
 * uniformly random order, skipping files that would take the total past `maxBytes`; if no
 * file fits the budget, the smallest one (a test always restores something). `random(n)`
 * returns an integer in [0, n). Pure: the caller's items are not reordered.
 */
export function pickSample<T extends { readonly size: number }>(items: readonly T[], limits: SampleLimits, random: (n: number) => number = randomInt): T[] {
  if (items.length === 0) return [];
  const want = Math.min(items.length, limits.maxFiles, Math.max(1, Math.ceil((items.length * limits.percent) / 100)));
  const order = items.map((_, i) => i);
  const picked: T[] = [];
  let bytes = 0;
  // Fisher–Yates, drawn lazily: only as many positions as needed are shuffled.
  for (let i = 0; i < order.length && picked.length < want; i++) {
    const j = i + random(order.length - i);
    [order[i], order[j]] = [order[j]!, order[i]!];
    const item = items[order[i]!]!;
    if (bytes + item.size > limits.maxBytes) continue;
    picked.push(item);
    bytes += item.size;
  }
  if (picked.length === 0) picked.push(items.reduce((a, b) => (b.size < a.size ? b : a)));
  return picked;
}

/** A regular file of the snapshot. */
export interface SnapshotFile {
  /** The path as stored ('/'-separated, names decoded as UTF-8 for display and matching). */
  readonly path: string;
  /** The exact path on this machine (raw bytes when a name is not valid UTF-8). */
  readonly fsPath: string | Buffer;
  readonly size: number;
  /** Nanoseconds since the epoch, as recorded. */
  readonly mtime: string;
}

export type SampleStatus = 'identical' | 'not-compared' | 'differs' | 'not-restored';
export interface SampleOutcome {
  readonly path: string;
  readonly status: SampleStatus;
  /** Why it was not compared, or what went wrong. */
  readonly reason?: string;
}

export interface RestoreTestOptions {
  readonly snapshot: SnapshotRecord;
  readonly percent?: number;
  readonly maxFiles?: number;
  readonly maxBytes?: number;
  /** Where the temporary directory goes (default: the system's temporary directory). */
  readonly tmpParent?: string;
  readonly random?: (n: number) => number;
  readonly reporter?: RestoreReporter;
}

export interface RestoreTestResult {
  readonly snapshotId: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** Regular files in the snapshot. */
  readonly totalFiles: number;
  readonly sampledFiles: number;
  /** Sampled files restored intact (their chunks authenticated). */
  readonly restoredFiles: number;
  /** Restored files compared byte for byte with an unchanged source. */
  readonly comparedFiles: number;
  /** Bytes restored. */
  readonly bytes: number;
  readonly files: readonly SampleOutcome[];
  /** Restored files that differ from their unchanged source, sampled files that could not be restored, and damage found on the way. */
  readonly problems: readonly { readonly path: string; readonly message: string }[];
  readonly ok: boolean;
}

/** The sample's exact paths (and their directories) as a restore selection. */
export class ExactPaths implements PathSelector {
  private readonly files: Set<string>;
  private readonly dirs = new Set<string>();
  constructor(paths: readonly string[]) {
    this.files = new Set(paths);
    for (const p of paths) {
      for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
        const d = p.slice(0, i);
        if (this.dirs.has(d)) break;
        this.dirs.add(d);
      }
    }
  }
  get empty(): boolean {
    return false;
  }
  matches(path: string): boolean {
    return this.files.has(path);
  }
  couldMatchBelow(dirPath: string): boolean {
    return dirPath === '' || this.dirs.has(dirPath);
  }
}

type FsPath = string | Buffer;
function joinFs(dir: FsPath, name: Buffer): FsPath {
  const s = name.toString('utf8');
  if (typeof dir === 'string' && Buffer.from(s, 'utf8').equals(name)) return `${dir}/${s}`;
  return Buffer.concat([typeof dir === 'string' ? Buffer.from(dir) : dir, Buffer.from('/'), name]);
}
function under(root: string, p: FsPath): FsPath {
  return typeof p === 'string' ? root + p : Buffer.concat([Buffer.from(root), p]);
}

/** Every regular file of a snapshot, read from the server's copy of its trees. */
export async function listSnapshotFiles(repo: Repository, snapshot: SnapshotRecord): Promise<{ files: SnapshotFile[]; problems: { path: string; message: string }[] }> {
  const files: SnapshotFile[] = [];
  const problems: { path: string; message: string }[] = [];
  let level: { tree: ChunkId; fs: FsPath; path: string }[] = [{ tree: repo.open(snapshot).root, fs: '', path: '' }];
  while (level.length > 0) {
    const trees = await repo.loadTreesFromServer(level.map((l) => l.tree));
    const next: typeof level = [];
    for (const l of level) {
      const tree = trees.get(l.tree)!;
      if (tree instanceof Error) {
        problems.push({ path: l.path || '/', message: `directory cannot be read: ${tree.message}` });
        continue;
      }
      for (const n of tree.nodes as readonly TreeNode[]) {
        const name = nodeNameBytes(n);
        const path = `${l.path}/${name.toString('utf8')}`;
        const fs = joinFs(l.fs, name);
        if (n.type === 'dir') next.push({ tree: n.subtree!, fs, path });
        else if (n.type === 'file') files.push({ path, fsPath: fs, size: n.size ?? 0, mtime: n.mtime });
      }
    }
    level = next;
  }
  return { files, problems };
}

async function sha256File(p: FsPath): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Same size and modification time as recorded: the source is taken as unchanged. */
function unchangedSince(p: FsPath, f: SnapshotFile): string | null {
  let st;
  try {
    st = lstatSync(p, { bigint: true });
  } catch (e) {
    return `the source is gone (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (!st.isFile()) return 'the source is no longer a regular file';
  if (st.size !== BigInt(f.size) || st.mtimeNs.toString() !== f.mtime) return 'the source changed since the snapshot';
  return null;
}

/** Removes a restored tree, even where restored modes (read-only directories) forbid it. */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
    return;
  } catch {
    // fall through: make every directory writable, then try again
  }
  const open = (d: string) => {
    try {
      chmodSync(d, 0o700);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) open(joinPath(d, e.name));
    } catch {
      // best effort
    }
  };
  open(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** Runs one restore test. Throws only when the test could not run (server unreachable, no space…). */
export async function restoreTest(repo: Repository, opts: RestoreTestOptions): Promise<RestoreTestResult> {
  const startedAt = new Date();
  const { files: all, problems: listProblems } = await listSnapshotFiles(repo, opts.snapshot);
  const sample = pickSample(
    all,
    { percent: opts.percent ?? DEFAULT_SAMPLE_PERCENT, maxFiles: opts.maxFiles ?? MAX_SAMPLE_FILES, maxBytes: opts.maxBytes ?? MAX_SAMPLE_BYTES },
    opts.random,
  );
  const problems: { path: string; message: string }[] = [...listProblems];
  const outcomes: SampleOutcome[] = [];
  let compared = 0;
  let restored = 0;
  let bytes = 0;
  if (sample.length > 0) {
    const root = mkdtempSync(joinPath(opts.tmpParent ?? tmpdir(), 'coffre-restore-test-'));
    try {
      chmodSync(root, 0o700);
      const r = await restore(repo, { snapshot: opts.snapshot, target: root, guardTarget: false, select: new ExactPaths(sample.map((f) => f.path)), ...(opts.reporter ? { reporter: opts.reporter } : {}) });
      const damaged = new Map(r.damaged.map((d) => [d.path, d.message]));
      for (const [path, message] of damaged) if (!sample.some((f) => f.path === path)) problems.push({ path, message });
      for (const f of sample) {
        const copy = under(root, f.fsPath);
        const why = damaged.get(f.path);
        const st = why === undefined ? lstatSync(copy, { throwIfNoEntry: false }) : undefined;
        if (why !== undefined || !st || !st.isFile() || st.size !== f.size) {
          const message = why ?? (st ? `restored with ${st.size} bytes instead of ${f.size}` : 'not restored');
          outcomes.push({ path: f.path, status: 'not-restored', reason: message });
          problems.push({ path: f.path, message: `could not be restored: ${message}` });
          continue;
        }
        restored++;
        bytes += f.size;
        const changed = unchangedSince(f.fsPath, f);
        if (changed) {
          outcomes.push({ path: f.path, status: 'not-compared', reason: changed });
          continue;
        }
        let a: string;
        let b: string;
        try {
          chmodSync(copy, 0o600); // restored modes may forbid reading (a 0000 file)
          a = await sha256File(copy);
        } catch (e) {
          const message = `the restored copy cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
          outcomes.push({ path: f.path, status: 'not-restored', reason: message });
          problems.push({ path: f.path, message });
          restored--;
          bytes -= f.size;
          continue;
        }
        try {
          b = await sha256File(f.fsPath);
        } catch (e) {
          outcomes.push({ path: f.path, status: 'not-compared', reason: `the source cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
          continue;
        }
        // The source may have changed while it was read: then it proves nothing either way.
        const after = unchangedSince(f.fsPath, f);
        if (after) {
          outcomes.push({ path: f.path, status: 'not-compared', reason: after });
          continue;
        }
        compared++;
        if (a === b) outcomes.push({ path: f.path, status: 'identical' });
        else {
          outcomes.push({ path: f.path, status: 'differs', reason: 'the restored content differs from the unchanged source' });
          problems.push({ path: f.path, message: 'the restored content differs from the unchanged source' });
        }
      }
    } finally {
      removeTree(root);
    }
  }
  return {
    snapshotId: opts.snapshot.id,
    startedAt,
    finishedAt: new Date(),
    totalFiles: all.length,
    sampledFiles: sample.length,
    restoredFiles: restored,
    comparedFiles: compared,
    bytes,
    files: outcomes,
    problems,
    ok: problems.length === 0,
  };
}
