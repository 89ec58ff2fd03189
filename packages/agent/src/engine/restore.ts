import { chmodSync, closeSync, constants, ftruncateSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { basename, join as joinPath, resolve as resolvePath } from 'node:path';
import {
  CoffreError,
  decodeRefs,
  isCoffreError,
  nodeNameBytes,
  sha256Hex,
  symlinkTargetBytes,
  type ChunkId,
  type ChunkLocation,
  type SnapshotRecord,
  type TreeNode,
} from '@coffre/core';
import { availableParallelism } from 'node:os';
import { PathFilter } from './filter.js';
import type { RestoreTask, RestoreTaskResult } from './restore-worker.js';
import { TaskPool } from './task-pool.js';
import { canChown, setOwner, setTimes } from './fsmeta.js';
import type { Repository } from './repo.js';

export interface RestoreProgress {
  readonly files: number;
  readonly totalFiles: number;
  readonly bytes: number;
  readonly totalBytes: number;
}
export interface RestoreReporter {
  progress?(p: RestoreProgress): void;
}
export interface RestoreOptions {
  readonly snapshot: SnapshotRecord;
  readonly target: string;
  readonly includes?: readonly string[];
  /** Exactly these paths instead of `includes` (the restore test's sample). */
  readonly select?: PathSelector;
  readonly reporter?: RestoreReporter;
  /**
   * As root, guard against other local users changing the target tree while it is restored
   * (default: when running as root). The restore test restores into its own root-only
   * temporary directory and turns it off.
   */
  readonly guardTarget?: boolean;
}
/** What a restore restores: a PathFilter of --include patterns, or a set of exact paths. */
export interface PathSelector {
  /** True when everything is restored. */
  readonly empty: boolean;
  /** True if this path (as stored, '/'-separated) is to be restored, with everything below it. */
  matches(path: string): boolean;
  /** True if something below this directory may be restored. */
  couldMatchBelow(dirPath: string): boolean;
}
export interface RestoreProblem {
  readonly path: string;
  readonly message: string;
}
export interface RestoreResult {
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly bytes: number;
  /** Files that could not be restored intact; they are removed, never left corrupt. */
  readonly damaged: readonly RestoreProblem[];
  readonly errors: readonly RestoreProblem[];
  /**
   * Where the tree was restored: the target, or — as root, when another user could change a
   * directory of the target tree — a fresh directory in the target readable by root only.
   */
  readonly restoredInto: string;
}

type FsPath = string | Buffer;

function join(dir: FsPath, name: Buffer): FsPath {
  const s = name.toString('utf8');
  if (typeof dir === 'string' && Buffer.from(s, 'utf8').equals(name)) return `${dir}/${s}`;
  return Buffer.concat([typeof dir === 'string' ? Buffer.from(dir) : dir, Buffer.from('/'), name]);
}
const show = (p: FsPath) => (typeof p === 'string' ? p : p.toString('utf8'));

interface PlannedFile {
  readonly path: FsPath;
  readonly display: string;
  readonly node: TreeNode;
  remaining: number;
  damaged: string | null;
  linkTo: PlannedFile | null;
}

/**
 * Restores a snapshot (or the parts matching --include) under `target`, re-creating
 * the original absolute paths below it (like restic). Names come from authenticated
 * trees that were validated (no "..", no "/"), and nothing is ever created through an
 * existing symbolic link, so a crafted tree cannot write outside the target.
 */
export async function restore(repo: Repository, opts: RestoreOptions): Promise<RestoreResult> {
  const absolute = resolvePath(opts.target);
  mkdirSync(absolute, { recursive: true });
  if (!(opts.guardTarget ?? canChown)) return restoreInto(repo, opts, absolute, () => absolute);
  // As root: work from the target as a pinned working directory, with relative paths, so
  // that no rename or symbolic link above or inside it redirects what root writes.
  // The way to the target: no directory on it (as given, and once symbolic links are
  // resolved) may be changeable by another user, else the target could be moved elsewhere.
  const real = realpathSync(absolute);
  for (const p of [absolute, real]) {
    const unsafe = changeableOnTheWay(p);
    if (unsafe) throw new CoffreError('CONFLICT', `the way to ${absolute} goes through ${unsafe}, which another user can change: restore into a directory whose parents only root can change, then move the files`);
  }
  const back = process.cwd();
  process.chdir(absolute);
  try {
    const here = statSync('.');
    const named = statSync(real);
    if (!named.isDirectory() || named.dev !== here.dev || named.ino !== here.ino) {
      throw new CoffreError('CONFLICT', `the target ${absolute} changed while the restore started (a symbolic link or a rename): nothing was restored`);
    }
    return await restoreInto(repo, opts, '.', (untrusted) => {
      if (!untrusted) return absolute;
      // Another user can change a directory on the way: restore into a fresh directory that
      // only root can enter, and work from inside it.
      const fresh = mkdtempSync(`coffre-restore-${opts.snapshot.id.slice(0, 8)}-`);
      process.chdir(fresh);
      // What we entered must be what mkdtemp made: root's, 0700, empty (not a swapped-in directory).
      const st = statSync('.');
      if (st.uid !== 0 || (st.mode & 0o777) !== 0o700 || readdirSync('.').length !== 0) {
        throw new CoffreError('CONFLICT', `the fresh directory ${fresh} in ${absolute} was replaced while the restore started: nothing was restored`);
      }
      return joinPath(real, basename(fresh));
    });
  } finally {
    try {
      process.chdir(back);
    } catch {
      process.chdir('/'); // the directory it was started in is gone: the result still counts
    }
  }
}

/** True when no user but root can add, rename or replace entries of this directory. */
function rootOnly(st: Stats): boolean {
  return st.uid === 0 && (st.mode & 0o022) === 0;
}

/**
 * The first entry on the way to `path` (its parents, not itself) that another user could
 * replace: an entry not root's, or one in a directory others may write — unless that
 * directory is sticky and the entry root's (others cannot rename or remove it, as in /tmp).
 */
function changeableOnTheWay(path: string): string | null {
  const parts = path.split('/').filter(Boolean);
  let parent = lstatSync('/');
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    cur += `/${parts[i]}`;
    const st = lstatSync(cur);
    const last = i === parts.length - 1;
    const containerOk = rootOnly(parent) || (parent.uid === 0 && (parent.mode & 0o1000) !== 0 && st.uid === 0);
    if (!containerOk || (!last && st.uid !== 0)) return last ? cur.slice(0, cur.lastIndexOf('/')) || '/' : cur;
    if (!last) parent = statSync(cur);
  }
  return null;
}

async function restoreInto(repo: Repository, opts: RestoreOptions, target: string, workRoot: (untrusted: boolean) => string): Promise<RestoreResult> {
  const filter: PathSelector = opts.select ?? new PathFilter(opts.includes ?? []);
  const secret = repo.open(opts.snapshot);

  const dirs: { path: FsPath; node: TreeNode; inc: boolean }[] = [];
  const files: PlannedFile[] = [];
  const links: { path: FsPath; node: TreeNode }[] = [];
  const errors: RestoreProblem[] = [];
  const inodes = new Map<string, PlannedFile>();
  let totalBytes = 0;

  // 1. Plan: walk the authenticated trees breadth-first, a whole level per request batch.
  const treeProblems: RestoreProblem[] = [];
  let level: { treeId: ChunkId; fsDir: FsPath; logical: string; covered: boolean }[] = [{ treeId: secret.root, fsDir: target, logical: '', covered: false }];
  while (level.length > 0) {
    const trees = await repo.loadTreesFromServer(level.map((l) => l.treeId));
    const nextLevel: typeof level = [];
    for (const { treeId, fsDir, logical, covered } of level) {
      const tree = trees.get(treeId)!;
      if (tree instanceof Error) {
        treeProblems.push({ path: logical || '/', message: `directory cannot be read, nothing below it restored: ${tree.message}` });
        continue;
      }
      for (const node of tree.nodes) {
        const name = nodeNameBytes(node);
        const lp = `${logical}/${name.toString('utf8')}`;
        const fp = join(fsDir, name);
        const inc = covered || filter.empty || filter.matches(lp);
        if (node.type === 'dir') {
          if (!inc && !filter.couldMatchBelow(lp)) continue;
          dirs.push({ path: fp, node, inc });
          nextLevel.push({ treeId: node.subtree!, fsDir: fp, logical: lp, covered: inc });
        } else if (!inc) {
          continue;
        } else if (node.type === 'symlink') {
          links.push({ path: fp, node });
        } else {
          const f: PlannedFile = { path: fp, display: lp, node, remaining: node.size ?? 0, damaged: null, linkTo: null };
          if ((node.nlink ?? 1) > 1 && node.ino !== undefined && node.dev !== undefined) {
            const key = `${node.dev}:${node.ino}`;
            const first = inodes.get(key);
            if (first && first.node.size === node.size) {
              f.linkTo = first;
              f.remaining = 0;
            } else inodes.set(key, f);
          }
          if (!f.linkTo) totalBytes += node.size ?? 0;
          files.push(f);
        }
      }
    }
    level = nextLevel;
  }

  // Only directories that lead to something restored are created (selective restore).
  const needed = filter.empty ? dirs : pruneDirs(dirs, files, links);

  // As root, the target tree must be root's alone (else restore elsewhere, see workRoot).
  let untrusted = false;
  if (target === '.') {
    untrusted = !rootOnly(statSync('.'));
    for (const d of needed) {
      if (untrusted) break;
      const st = lstatSync(d.path, { throwIfNoEntry: false });
      if (st && st.isDirectory() && !rootOnly(st)) untrusted = true; // a symbolic link is refused below
    }
  }
  const restoredInto = workRoot(untrusted);

  // 2. Directories, refusing to pass through anything that is not a real directory.
  for (const d of needed) {
    const st = lstatSync(d.path, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      if (st.isSymbolicLink()) throw new CoffreError('CONFLICT', `refusing to restore through the existing symbolic link ${show(d.path)}`);
      rmSync(d.path, { force: true });
    }
    if (!st || !st.isDirectory()) mkdirSync(d.path, { mode: 0o700 });
  }

  // 3. Files: create each at its final size (holes for zero ranges), then fill.
  const byChunk = new Map<string, { file: PlannedFile; offset: number }[]>();
  for (const f of files) {
    if (f.linkTo) continue;
    removeExisting(f.path);
    const fd = openSync(f.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
    try {
      ftruncateSync(fd, f.node.size ?? 0);
    } finally {
      closeSync(fd);
    }
    let off = 0;
    for (const [id, len] of f.node.content ?? []) {
      let l = byChunk.get(id);
      if (!l) byChunk.set(id, (l = []));
      l.push({ file: f, offset: off });
      off += len;
    }
  }

  let doneBytes = 0;
  let doneFiles = files.filter((f) => f.remaining === 0 && !f.linkTo).length;
  let last = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 200) return;
    last = now;
    opts.reporter?.progress?.({ files: doneFiles, totalFiles: files.length, bytes: doneBytes, totalBytes });
  };

  const damage = (ids: readonly string[], why: string) => {
    for (const id of ids) for (const d of byChunk.get(id) ?? []) d.file.damaged ??= why;
  };

  const ids = [...byChunk.keys()];
  const locs = await repo.locate(ids);
  const byPack = new Map<string, { id: ChunkId; loc: ChunkLocation }[]>();
  ids.forEach((id, i) => {
    const loc = locs[i];
    if (!loc) {
      damage([id], `chunk ${id.slice(0, 12)} is missing on the server`);
      return;
    }
    let l = byPack.get(loc.pack);
    if (!l) byPack.set(loc.pack, (l = []));
    l.push({ id: id as ChunkId, loc });
  });

  // Fetch ranges pack by pack (adjacent blobs merged), a few requests in flight.
  const jobs: { pack: string; start: number; end: number; blobs: { id: ChunkId; loc: ChunkLocation }[] }[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.loc.offset - b.loc.offset);
    let cur: (typeof jobs)[number] | null = null;
    for (const b of list) {
      const end = b.loc.offset + b.loc.length;
      if (cur && b.loc.offset - cur.end <= 256 * 1024 && end - cur.start <= 8 * 1024 * 1024) {
        cur.end = end;
        cur.blobs.push(b);
      } else {
        cur = { pack, start: b.loc.offset, end, blobs: [b] };
        jobs.push(cur);
      }
    }
  }
  // Verification, decryption, decompression and writing run in worker threads; the
  // main thread fetches ranges (a few in flight) and keeps the books.
  const pool = new TaskPool<RestoreTask, RestoreTaskResult>(new URL('./restore-worker.js', import.meta.url), Math.max(1, availableParallelism()), {
    master: new Uint8Array(repo.requireMaster()),
    maxPlain: repo.config.chunker.max,
  });
  let next = 0;
  const fetcher = async () => {
    while (next < jobs.length) {
      const j = jobs[next++]!;
      let data: Buffer;
      const blobs: RestoreTask['blobs'][number][] = [];
      try {
        const header = await repo.packHeader(j.pack);
        for (const b of j.blobs) {
          const h = header.get(b.id);
          if (!h || h.offset !== b.loc.offset || h.length !== b.loc.length) {
            damage([b.id], `chunk ${b.id.slice(0, 12)} does not match the header of pack ${j.pack.slice(0, 12)}`);
            continue;
          }
          const dests = byChunk.get(b.id)!.filter((d) => !d.file.damaged).map((d) => ({ path: d.file.path, offset: d.offset }));
          blobs.push({ id: b.id, offset: b.loc.offset - j.start, length: b.loc.length, sha256: h.sha256, dests });
        }
        data = await repo.api.getBinary(`/packs/${j.pack}`, { offset: j.start, length: j.end - j.start });
      } catch (e) {
        if (isCoffreError(e, 'UNAUTHORIZED') || isCoffreError(e, 'UNREACHABLE') || isCoffreError(e, 'TLS_PIN_MISMATCH')) throw e;
        damage(j.blobs.map((b) => b.id), `pack ${j.pack.slice(0, 12)} could not be read: ${(e as Error).message}`);
        continue;
      }
      // Transfer needs a buffer that owns its memory (small Buffers share a pool).
      const own = data.byteOffset === 0 && data.buffer.byteLength === data.length ? data : Buffer.from(Uint8Array.prototype.slice.call(data));
      const res = await pool.run({ data: own, blobs }, [own.buffer as ArrayBuffer]);
      res.results.forEach((r, i) => {
        const b = blobs[i]!;
        if (!r.ok) {
          damage([b.id], r.message);
          return;
        }
        for (const d of byChunk.get(b.id)!) {
          if (d.file.damaged) continue;
          d.file.remaining -= r.length;
          doneBytes += r.length;
          if (d.file.remaining === 0) doneFiles++;
        }
      });
      report();
    }
  };
  try {
    await Promise.all([fetcher(), fetcher(), fetcher()]);
  } finally {
    await pool.close();
  }

  // 4. Metadata, hard links, symlinks; then directories deepest first.
  const damaged: RestoreProblem[] = [];
  const problems: RestoreProblem[] = [];
  try {
    const raw = await repo.api.getBinary(`/snapshots/${opts.snapshot.id}/refs`);
    if (sha256Hex(raw) !== opts.snapshot.manifest.refsSha256) throw new Error('it does not match the manifest');
    decodeRefs(raw);
  } catch (e) {
    if (isCoffreError(e, 'UNAUTHORIZED') || isCoffreError(e, 'UNREACHABLE')) throw e;
    problems.push({ path: '/', message: `the snapshot's reference list on the server is damaged (${(e as Error).message}); the restored data itself was checked` });
  }
  let restoredFiles = 0;
  let hardlinks = 0;
  let bytes = 0;
  for (const f of files) {
    if (f.linkTo) continue;
    if (f.damaged || f.remaining !== 0) {
      damaged.push({ path: f.display, message: f.damaged ?? 'incomplete content' });
      rmSync(f.path, { force: true });
      continue;
    }
    applyMeta(f.path, f.node, false, errors);
    restoredFiles++;
    bytes += f.node.size ?? 0;
  }
  for (const f of files) {
    if (!f.linkTo) continue;
    if (f.linkTo.damaged) {
      damaged.push({ path: f.display, message: f.linkTo.damaged });
      continue;
    }
    removeExisting(f.path);
    linkSync(f.linkTo.path, f.path);
    hardlinks++;
    restoredFiles++;
  }
  for (const l of links) {
    removeExisting(l.path);
    try {
      symlinkSync(symlinkTargetBytes(l.node) as unknown as string, l.path);
      applyMeta(l.path, l.node, true, errors);
    } catch (e) {
      errors.push({ path: show(l.path), message: (e as Error).message });
    }
  }
  for (const d of [...needed].reverse()) applyMeta(d.path, d.node, false, errors);
  report(true);
  return { files: restoredFiles, dirs: needed.length, symlinks: links.length, hardlinks, bytes, damaged: [...damaged, ...treeProblems, ...problems], errors, restoredInto };
}

function removeExisting(p: FsPath): void {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return;
  if (st.isDirectory()) throw new CoffreError('CONFLICT', `cannot restore the file ${show(p)}: a directory is in the way`);
  unlinkSync(p);
}

function applyMeta(p: FsPath, n: TreeNode, symlink: boolean, errors: RestoreProblem[]): void {
  try {
    // Owner, then mode (a chown clears set-user-ID bits). Safe by path: the parent directory
    // is still root's (directories get their owner last, deepest first).
    setOwner(p, n.uid, n.gid);
    if (!symlink) chmodSync(p, n.mode & 0o7777);
    setTimes(p, n.atime ?? n.mtime, n.mtime, symlink);
  } catch (e) {
    errors.push({ path: show(p), message: `metadata not restored: ${(e as Error).message}` });
  }
}

function pruneDirs(dirs: { path: FsPath; node: TreeNode; inc: boolean }[], files: { path: FsPath }[], links: { path: FsPath }[]) {
  const keep = new Set<string>();
  const mark = (p: FsPath) => {
    let s = Buffer.isBuffer(p) ? p.toString('latin1') : Buffer.from(p).toString('latin1');
    for (let i = s.lastIndexOf('/'); i > 0; i = s.lastIndexOf('/')) {
      s = s.slice(0, i);
      if (keep.has(s)) break;
      keep.add(s);
    }
  };
  files.forEach((f) => mark(f.path));
  links.forEach((l) => mark(l.path));
  const key = (p: FsPath) => (Buffer.isBuffer(p) ? p.toString('latin1') : Buffer.from(p).toString('latin1'));
  // A directory matched by --include is restored even when empty.
  return dirs.filter((d) => d.inc || keep.has(key(d.path)));
}
