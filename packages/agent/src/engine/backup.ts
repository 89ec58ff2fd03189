import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import {
  COFFRE_VERSION,
  CoffreError,
  MAX_TREE_SIZE,
  PackBuilder,
  TARGET_PACK_SIZE,
  encodeName,
  encodeRefs,
  newSnapshotId,
  nodeNameBytes,
  type ChunkId,
  type ManifestSecret,
  type PackUploadResponse,
  type SnapshotCommitResponse,
  type SnapshotRecord,
  type SnapshotStats,
  type TreeNode,
} from '@coffre/core';
import { ApiError } from '../client.js';
import { PathFilter } from './filter.js';
import { SharedIdSet } from './idset.js';
import type { Repository, WriterInit } from './repo.js';
import { TaskPool } from './task-pool.js';
import type { FileJob, FileResult, WorkerIn, WorkerOut } from './worker-protocol.js';

export type WarningKind = 'unreadable' | 'changed' | 'vanished' | 'special';
export interface BackupWarning {
  readonly path: string;
  readonly kind: WarningKind;
  readonly message: string;
}
export interface BackupProgress {
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly uploadedBytes: number;
  readonly currentPath: string;
}
/** The engine never prints: the CLI renders these. */
export interface BackupReporter {
  progress?(p: BackupProgress): void;
  warning?(w: BackupWarning): void;
}
export interface BackupOptions {
  readonly paths: readonly string[];
  readonly excludes?: readonly string[];
  readonly tags?: readonly string[];
  readonly compressionLevel?: number;
  readonly workers?: number;
  readonly reporter?: BackupReporter;
  /** Ignore the parent snapshot (re-read every file). */
  readonly force?: boolean;
}
export interface BackupResult {
  readonly snapshot: SnapshotRecord | { id: string; time: string };
  readonly parent: string | null;
  readonly stats: SnapshotStats;
  readonly warnings: readonly BackupWarning[];
}

type FsPath = string | Buffer;

/**
 * Entry names are strings when they are valid UTF-8 (nearly always: no conversions, no
 * allocations), raw Buffers otherwise; paths follow (a Buffer path once any component is).
 */
type Name = string | Buffer;

function joinPath(dir: FsPath, name: Name): FsPath {
  if (typeof dir === 'string' && typeof name === 'string') return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
  const d = typeof dir === 'string' ? Buffer.from(dir, 'utf8') : dir;
  const n = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  return Buffer.concat([d, Buffer.from(d[d.length - 1] === 0x2f ? '' : '/'), n]);
}

/** Lists a directory, falling back to raw bytes when some name is not valid UTF-8. */
function listDir(path: FsPath): Name[] {
  if (typeof path === 'string') {
    const names = readdirSync(path);
    if (!names.some((n) => n.includes('\uFFFD'))) return names;
  }
  return readdirSync(path, { encoding: 'buffer' }).map((b) => {
    const s = b.toString('utf8');
    return Buffer.from(s, 'utf8').equals(b) ? s : b;
  });
}

function nameFields(name: Name): { name: string } | { nameB64: string } {
  return typeof name === 'string' ? { name } : encodeName(name);
}

/** Map key of a name: the string itself, or a NUL-prefixed base64 (NUL never occurs in names). */
function nameKey(name: Name): string {
  return typeof name === 'string' ? name : `\0${name.toString('base64')}`;
}
function nodeKey(n: TreeNode): string {
  return n.nameB64 !== undefined ? nameKey(nodeNameBytes(n)) : (n.name ?? '');
}

function display(p: FsPath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}

/**
 * Metadata kept for an entry. Access times are deliberately not stored: reading a
 * directory updates them, so every backup would store new trees for unchanged data.
 */
function metaOf(st: BigIntStats): Pick<TreeNode, 'mode' | 'uid' | 'gid' | 'mtime' | 'ctime' | 'ino' | 'dev' | 'nlink'> {
  return {
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: st.mtimeNs.toString(),
    ctime: st.ctimeNs.toString(),
    ino: st.ino.toString(),
    dev: st.dev.toString(),
    nlink: Number(st.nlink),
  };
}

/**
 * A node whose content may still be in a worker. Boxed because an async function that
 * returned a bare promise would wait for it, serialising the whole walk.
 */
interface Pending {
  readonly node: Promise<TreeNode | null>;
}
const ready = (n: TreeNode | null): Pending => ({ node: Promise.resolve(n) });
/** Boxes a promise; its rejection surfaces where the parent awaits it, never as "unhandled". */
const later = (p: Promise<TreeNode | null>): Pending => {
  p.catch(() => undefined);
  return { node: p };
};

/** Worker threads doing the CPU work; batches of files, results in order. */
class ReaderPool {
  private readonly pool: TaskPool<Extract<WorkerIn, { type: 'batch' }>, Extract<WorkerOut, { type: 'done' }>>;
  private batch: { job: FileJob; resolve: (r: FileResult) => void; reject: (e: Error) => void }[] = [];
  private batchBytes = 0;
  private sentKnown: SharedArrayBuffer;
  private waiters: (() => void)[] = [];

  constructor(
    n: number,
    init: { writer: WriterInit; chunker: unknown; level: number },
    private readonly known: SharedIdSet,
    onBlob: (id: ChunkId, blob: Buffer, sha256: Buffer) => void,
  ) {
    this.sentKnown = known.buffer;
    this.pool = new TaskPool(new URL('./worker.js', import.meta.url), n, { writer: init.writer, chunker: init.chunker, level: init.level, known: known.buffer }, (msg) => {
      const m = msg as WorkerOut;
      if (m.type !== 'blobs') return;
      const hashes = Buffer.from(m.hashes.buffer, m.hashes.byteOffset, m.hashes.byteLength);
      m.ids.forEach((id, i) => onBlob(id, Buffer.from(m.blobs[i]!.buffer, m.blobs[i]!.byteOffset, m.blobs[i]!.byteLength), hashes.subarray(i * 32, i * 32 + 32)));
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** Queues a file; resolves when a worker has read it. Applies back-pressure. */
  async add(job: FileJob): Promise<{ result: Promise<FileResult> }> {
    while (this.pool.inflight >= this.pool.size * 2 && !this.pool.error) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.pool.error) throw this.pool.error;
    const p = new Promise<FileResult>((resolve, reject) => this.batch.push({ job, resolve, reject }));
    this.batchBytes += job.size;
    if (this.batch.length >= 64 || this.batchBytes >= 8 * 1024 * 1024) this.flush();
    return { result: p };
  }

  flush(): void {
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (this.known.buffer !== this.sentKnown) {
      this.sentKnown = this.known.buffer;
      this.pool.broadcast({ type: 'known', known: this.sentKnown } satisfies WorkerIn);
    }
    this.pool.run({ type: 'batch', files: items.map((x) => x.job) }).then(
      (done) => {
        done.results.forEach((r, i) => items[i]!.resolve(r));
        this.wake();
      },
      (e: Error) => {
        items.forEach((it) => it.reject(e));
        this.wake();
      },
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Collects new blobs, asks the server which it already has (other machines of the same
 * customer share the repository), packs the rest and uploads packs, two at a time.
 * Every byte offered is counted until it is uploaded or found on the server, and the
 * walker waits (drain) while more than MAX_PENDING bytes are in flight: memory stays
 * bounded even when the network or the server is slower than the readers.
 */
const MAX_PENDING = 24 * 1024 * 1024;
const PACK_TARGET = TARGET_PACK_SIZE;

class Uploader {
  private builder = new PackBuilder();
  private toCheck: { id: ChunkId; blob: Buffer; sha256: Buffer | undefined }[] = [];
  private toCheckBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private uploads = new Set<Promise<void>>();
  private error: Error | null = null;
  private pending = 0;
  private waiters: (() => void)[] = [];
  uploadedBytes = 0;
  addedChunks = 0;

  constructor(
    private readonly repo: Repository,
    private readonly known: SharedIdSet,
  ) {}

  /** Main thread: a new blob from a worker, or a tree. Duplicates are dropped here. */
  offer(id: ChunkId, blob: Buffer, sha256?: Buffer): void {
    if (!this.known.add(id)) return;
    this.pending += blob.length;
    this.toCheck.push({ id, blob, sha256 });
    this.toCheckBytes += blob.length;
    if (this.toCheck.length >= 512 || this.toCheckBytes >= 8 * 1024 * 1024) this.schedule();
  }

  private release(bytes: number): void {
    this.pending -= bytes;
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  private schedule(): void {
    if (this.toCheck.length === 0) return;
    const batch = this.toCheck;
    this.toCheck = [];
    this.toCheckBytes = 0;
    this.chain = this.chain.then(() => this.check(batch)).catch((e: Error) => this.fail(e));
  }

  private fail(e: Error): void {
    this.error ??= e;
    this.release(0);
  }

  private async check(batch: { id: ChunkId; blob: Buffer; sha256: Buffer | undefined }[]): Promise<void> {
    if (this.error) return;
    const exists = await this.repo.exists(batch.map((b) => b.id));
    const present: string[] = [];
    let freed = 0;
    for (let i = 0; i < batch.length; i++) {
      if (exists[i]) {
        present.push(batch[i]!.id);
        freed += batch[i]!.blob.length;
      } else {
        this.builder.add(batch[i]!.id, batch[i]!.blob, batch[i]!.sha256);
        if (this.builder.size >= PACK_TARGET) await this.sendPack();
      }
    }
    this.repo.recordKnown(present);
    this.release(freed);
  }

  private async sendPack(): Promise<void> {
    if (this.builder.count === 0) return;
    while (this.uploads.size >= 2) await Promise.race(this.uploads);
    const pack = this.builder.finishParts();
    const blobBytes = pack.parts.reduce((a, b, i) => (i === 0 ? a : a + b.length), 0);
    const p = this.repo.api
      .putBinary<PackUploadResponse>(`/packs/${pack.id}`, pack.parts)
      .then(() => {
        this.uploadedBytes += pack.size;
        this.addedChunks += pack.entries.length;
        this.repo.recordKnown(pack.entries.map((e) => e.id));
      })
      .catch((e: Error) => this.fail(e))
      .finally(() => {
        this.uploads.delete(p);
        this.release(blobBytes);
      });
    this.uploads.add(p);
  }

  /** Waits while too much data is in flight; rethrows an upload failure. */
  async drain(): Promise<void> {
    while (this.pending > MAX_PENDING && !this.error) {
      this.schedule();
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.error) throw this.error;
  }

  async finish(): Promise<void> {
    this.schedule();
    await this.chain;
    this.chain = this.chain.then(() => this.sendPack());
    await this.chain;
    await Promise.all(this.uploads);
    if (this.error) throw this.error;
  }
}

interface Trie {
  readonly children: Map<string, Trie>;
  target: string | null; // absolute path to back up entirely at this node
}

/** Runs one backup. Retries once from scratch if the server lost chunks the cache listed. */
export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  try {
    return await backupOnce(repo, opts, false);
  } catch (e) {
    if (e instanceof ApiError && e.apiCode === 'MISSING_CHUNKS') {
      repo.dropKnown();
      return await backupOnce(repo, { ...opts, force: true }, true);
    }
    throw e;
  }
}

async function backupOnce(repo: Repository, opts: BackupOptions, retry: boolean): Promise<BackupResult> {
  const started = Date.now();
  const paths = normalizeTargets(opts.paths);
  const excludes = new PathFilter(opts.excludes ?? []);
  const warnings: BackupWarning[] = [];
  const rep = opts.reporter ?? {};
  const warn = (w: BackupWarning) => {
    warnings.push(w);
    rep.warning?.(w);
  };

  // Parent: latest snapshot of this machine with the same paths, else its latest at all.
  let parent: SnapshotRecord | null = null;
  let parentRoot: ChunkId | null = null;
  if (!opts.force) {
    const mine = (await repo.listSnapshots()).filter((s) => s.machineId === repo.machineId);
    const key = JSON.stringify(paths);
    let fallback: { s: SnapshotRecord; root: ChunkId } | null = null;
    // A write-only machine knows the roots of the snapshots it made (its local record).
    const recorded = repo.localRoots();
    for (const s of [...mine].reverse()) {
      let sec: Pick<ManifestSecret, 'root' | 'paths'> | undefined;
      try {
        repo.checkMac(s);
        sec = recorded.get(s.id) ?? (repo.canRead ? repo.open(s) : undefined);
      } catch {
        continue; // an unreadable parent is simply not used
      }
      if (!sec) continue;
      fallback ??= { s, root: sec.root };
      if (JSON.stringify([...sec.paths].sort()) === key) {
        fallback = { s, root: sec.root };
        break;
      }
    }
    if (fallback) {
      parent = fallback.s;
      parentRoot = fallback.root;
    }
  }

  const known = new SharedIdSet(1 << 16);
  if (!retry) repo.loadKnown(known);
  const uploader = new Uploader(repo, known);
  const refs = new Set<string>();
  const stats = { files: 0, dirs: 0, symlinks: 0, bytes: 0, newFiles: 0, changedFiles: 0, unchangedFiles: 0, skipped: 0 };
  let current = '';
  let lastProgress = 0;
  const progress = (force = false) => {
    const now = Date.now();
    if (!force && now - lastProgress < 200) return;
    lastProgress = now;
    rep.progress?.({ files: stats.files, dirs: stats.dirs, bytes: stats.bytes, uploadedBytes: uploader.uploadedBytes, currentPath: current });
  };
  const ticker = setInterval(() => progress(), 500);

  const pool = new ReaderPool(
    Math.max(1, opts.workers ?? availableParallelism()),
    { writer: repo.writerInit(), chunker: repo.config.chunker, level: opts.compressionLevel ?? 3 },
    known,
    (id, blob, sha) => uploader.offer(id, blob, sha),
  );

  const storeTree = async (nodes: TreeNode[]): Promise<ChunkId> => {
    const { id, plain } = repo.sealTree(nodes);
    if (plain.length > MAX_TREE_SIZE) throw new CoffreError('TOO_LARGE', 'a directory has too many entries to store');
    refs.add(id);
    if (!known.has(id)) {
      uploader.offer(id, repo.codec.encode(id, plain, { level: opts.compressionLevel ?? 3 }));
    }
    repo.cacheTree(id, plain);
    return id;
  };

  /** The parent's node, reused as is when size, times and inode are unchanged: not re-read. */
  const unchangedNode = (name: Name, st: BigIntStats, prev: TreeNode | undefined): TreeNode | null => {
    if (
      !prev ||
      prev.type !== 'file' ||
      !prev.content ||
      prev.size !== Number(st.size) ||
      prev.mtime !== st.mtimeNs.toString() ||
      prev.ctime !== st.ctimeNs.toString() ||
      prev.ino !== st.ino.toString()
    ) {
      return null;
    }
    stats.unchangedFiles++;
    stats.bytes += prev.size;
    for (const [id] of prev.content) refs.add(id);
    return { ...nameFields(name), type: 'file', ...metaOf(st), size: prev.size, content: prev.content };
  };

  const readFile = async (path: FsPath, name: Name, st: BigIntStats, prev: TreeNode | undefined): Promise<Pending> => {
    stats.files++;
    const quick = unchangedNode(name, st, prev);
    if (quick) return ready(quick);
    if (prev) stats.changedFiles++;
    else stats.newFiles++;
    await uploader.drain();
    const { result } = await pool.add({ path, size: Number(st.size) });
    const node = result.then((r): TreeNode | null => {
      if (!r.ok) {
        stats.skipped++;
        stats.files--;
        warn({ path: display(path), kind: r.kind, message: r.message });
        return null;
      }
      stats.bytes += r.size;
      for (const [id] of r.content) refs.add(id);
      return {
        ...nameFields(name),
        type: 'file' as const,
        mode: r.mode & 0o7777,
        uid: r.uid,
        gid: r.gid,
        mtime: r.mtime,
        ctime: r.ctime,
        ino: r.ino,
        dev: r.dev,
        nlink: r.nlink,
        size: r.size,
        content: r.content,
      };
    });
    return later(node);
  };

  const childMap = async (prev: TreeNode | undefined): Promise<Map<string, TreeNode>> => {
    const m = new Map<string, TreeNode>();
    if (!prev || prev.type !== 'dir' || !prev.subtree) return m;
    try {
      const t = await repo.loadTree(prev.subtree);
      for (const n of t.nodes) m.set(nodeKey(n), n);
    } catch {
      /* parent tree unreadable: back up this directory without it */
    }
    return m;
  };

  /** Backs up one existing entry (file, dir or symlink); null if skipped. */
  const entry = async (path: FsPath, name: Name, prev: TreeNode | undefined, st: BigIntStats): Promise<Pending> => {
    current = display(path);
    if (st.isDirectory()) return dir(path, name, prev, st);
    if (st.isFile()) return readFile(path, name, st, prev);
    if (st.isSymbolicLink()) {
      try {
        const target = readlinkSync(path, { encoding: 'buffer' });
        stats.symlinks++;
        const t = encodeName(target);
        return ready({ ...nameFields(name), type: 'symlink' as const, ...metaOf(st), ...('name' in t ? { target: t.name } : { targetB64: t.nameB64 }) });
      } catch (e) {
        stats.skipped++;
        warn({ path: display(path), kind: 'unreadable', message: (e as Error).message });
        return ready(null);
      }
    }
    stats.skipped++;
    warn({ path: display(path), kind: 'special', message: 'special file (device, socket or FIFO) skipped' });
    return ready(null);
  };

  /**
   * Scans a directory and queues its files; returns at once with a pending node that
   * resolves when every entry is stored. The walk never waits for a directory's files,
   * so both workers stay busy across directories.
   */
  const dir = async (path: FsPath, name: Name, prev: TreeNode | undefined, st: BigIntStats): Promise<Pending> => {
    stats.dirs++;
    const prevChildren = await childMap(prev);
    let names: Name[] = [];
    try {
      names = listDir(path);
    } catch (e) {
      stats.skipped++;
      warn({ path: display(path), kind: 'unreadable', message: `directory not readable: ${(e as Error).message}` });
    }
    const pending: Pending[] = [];
    for (const n of names) {
      const p = joinPath(path, n);
      if (!excludes.empty && excludes.matches(display(p))) continue;
      let cst: BigIntStats | undefined;
      try {
        cst = lstatSync(p, { bigint: true, throwIfNoEntry: false });
      } catch (e) {
        stats.skipped++;
        warn({ path: display(p), kind: 'unreadable', message: (e as Error).message });
        continue;
      }
      if (!cst) continue; // vanished between readdir and lstat: nothing to keep
      pending.push(await entry(p, n, prevChildren.get(nameKey(n)), cst));
    }
    progress();
    const meta = metaOf(st);
    return later(
      Promise.all(pending.map((x) => x.node)).then(async (all) => {
        const nodes = all.filter((x): x is TreeNode => x !== null);
        return { ...nameFields(name), type: 'dir' as const, ...meta, subtree: await storeTree(nodes) };
      }),
    );
  };

  // The snapshot root mirrors absolute paths: "/srv/data" becomes root → srv → data.
  const trie: Trie = { children: new Map(), target: null };
  for (const p of paths) {
    let t = trie;
    for (const c of p.split('/').filter(Boolean)) {
      let next = t.children.get(c);
      if (!next) t.children.set(c, (next = { children: new Map(), target: null }));
      t = next;
    }
    t.target = p;
  }
  const virtual = async (t: Trie, absDir: string, prev: TreeNode | undefined): Promise<ChunkId> => {
    const prevChildren = await childMap(prev);
    const nodes: Pending[] = [];
    for (const [c, sub] of t.children) {
      const abs = absDir === '/' ? `/${c}` : `${absDir}/${c}`;
      const name = c;
      const st = lstatSync(abs, { bigint: true });
      const prevChild = prevChildren.get(nameKey(name));
      if (sub.target) nodes.push(await entry(abs, name, prevChild, st));
      else {
        stats.dirs++;
        const subtree = await virtual(sub, abs, prevChild);
        nodes.push(ready({ ...nameFields(name), type: 'dir' as const, ...metaOf(st), subtree }));
      }
    }
    pool.flush();
    return storeTree((await Promise.all(nodes.map((x) => x.node))).filter((x): x is TreeNode => x !== null));
  };

  let snapshot: SnapshotCommitResponse;
  let root: ChunkId;
  try {
    const rootPrev: TreeNode | undefined = parentRoot ? { type: 'dir', mode: 0, uid: 0, gid: 0, mtime: '0', subtree: parentRoot } : undefined;
    root = await virtual(trie, '/', rootPrev);
    await uploader.finish();
  } finally {
    clearInterval(ticker);
    await pool.close();
  }
  progress(true);

  const finalStats: SnapshotStats = {
    ...stats,
    addedChunks: uploader.addedChunks,
    addedBytes: uploader.uploadedBytes,
    durationMs: Date.now() - started,
  };
  const secret: ManifestSecret = {
    v: 1,
    root,
    hostname: hostname(),
    paths,
    tags: [...(opts.tags ?? [])],
    clientTime: new Date().toISOString(),
    stats: finalStats,
    agentVersion: COFFRE_VERSION,
  };
  const id = newSnapshotId();
  const refBytes = encodeRefs(refs as Set<ChunkId>);
  const manifest = repo.sealManifest({ id, machineId: repo.machineId, parent: parent?.id as never ?? null, refs: refBytes, logicalSize: stats.bytes, secret });
  try {
    snapshot = await repo.api.json<SnapshotCommitResponse>('POST', '/snapshots', { manifest, refs: refBytes.toString('base64') });
  } catch (e) {
    // A retried commit whose first attempt succeeded answers 409: check it is ours.
    if (e instanceof ApiError && e.apiCode === 'CONFLICT') {
      const again = (await repo.listSnapshots()).find((s) => s.id === id);
      if (!again) throw e;
      snapshot = { id, time: again.time };
    } else throw e;
  }
  repo.recordRoot(id, root, paths);
  return { snapshot, parent: parent?.id ?? null, stats: finalStats, warnings };
}

/** Absolute, normalised, without duplicates or paths nested in others. */
export function normalizeTargets(input: readonly string[]): string[] {
  if (input.length === 0) throw new CoffreError('BAD_REQUEST', 'give at least one path to back up');
  const abs = [...new Set(input.map((p) => resolvePath(p)))].sort();
  for (const p of abs) {
    try {
      lstatSync(p);
    } catch (e) {
      throw new CoffreError('NOT_FOUND', `cannot back up ${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
  }
  return abs.filter((p) => !abs.some((q) => q !== p && (q === '/' || p.startsWith(q + '/'))));
}
