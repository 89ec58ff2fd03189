import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BlobCodec,
  Chunker,
  CoffreError,
  DEFAULT_CHUNKER,
  isCoffreError,
  MAX_TREE_SIZE,
  chunkId,
  decodeTree,
  checkManifestMac,
  deriveReadKey,
  deriveSubkeys,
  deriveWriteKeys,
  newSealSession,
  sealManifest,
  sha256Hex,
  WRITE_ONLY_MESSAGE,
  encodeTree,
  isChunkId,
  openManifest,
  PACK_HEADER_FIXED,
  packEntryCount,
  packHeaderSize,
  packIdOf,
  parsePackHeader,
  type PackEntry,
  type ChunkId,
  type ChunkLocation,
  type ChunksExistResponse,
  type ChunksLocateResponse,
  type ManifestSecret,
  type ManifestUpload,
  type RepoConfig,
  type SealSession,
  type SnapshotListResponse,
  type SnapshotRecord,
  type SnapshotId,
  type Tree,
  type TreeNode,
  type WriteKeys,
} from '@coffre/core';
import type { ApiClient } from '../client.js';
import type { SharedIdSet } from './idset.js';

/** Ids per exists/locate request (the server accepts up to MAX_BATCH_IDS). */
const BATCH = 5000;


/** What the worker threads of a backup need to chunk, name and seal new data. */
export interface WriterInit {
  readonly chunkIdKey: Uint8Array;
  readonly gear: Int32Array;
  readonly v1Key: Uint8Array | null;
  readonly seal: { readonly ephemeral: Uint8Array; readonly key: Uint8Array } | null;
}

/**
 * An opened customer repository: keys, API, and the local caches.
 *
 * In storage format 2 a machine usually holds only `WriteKeys` (docs/FORMAT.md §2.4): it
 * chunks, names and seals new data to the customer's public read key, and reads nothing
 * stored (`canRead` false) unless the master key was opened for this command with the
 * passphrase or the recovery key. Its own trees are cached locally under its cache key,
 * which is how backups stay incremental without reading the server's copies.
 */
export class Repository {
  readonly api: ApiClient;
  readonly keys: WriteKeys;
  /** The master key, when opened for this command (or a format-1 repository's cached key). */
  readonly master: Buffer | null;
  readonly config: RepoConfig;
  /** Decodes what the keys held allow; encodes new blobs in the repository's format. */
  readonly codec: BlobCodec;
  readonly chunker: Chunker;
  readonly machineId: string;
  readonly cacheDir: string;
  private readonly session: SealSession | null;
  private readonly v1Key: Buffer | null;
  private readonly readKey: ReturnType<typeof deriveReadKey> | null;
  /** This machine's cache of its own trees, under its local cache key (format 1 for the local key). */
  private readonly local: BlobCodec;
  private readonly treeCache = new Map<string, Tree>();
  private readonly locCache = new Map<string, ChunkLocation>();
  /** When set, trees are always read from the server (verify must check the server's copy). */
  serverTreesOnly = false;
  private readonly headerCache = new Map<string, Promise<Map<string, PackEntry>>>();

  constructor(args: { api: ApiClient; master: Buffer | null; write?: WriteKeys; cacheKey?: Buffer; config: RepoConfig; machineId: string; cacheDir: string }) {
    this.api = args.api;
    this.master = args.master;
    this.config = args.config;
    const write = args.write ?? (args.master ? deriveWriteKeys(args.master) : null);
    if (!write) throw new CoffreError('NO_KEY', 'this machine holds no key for this repository; run a command with the passphrase once');
    this.keys = write;
    this.v1Key = args.master ? deriveSubkeys(args.master).encryption : null;
    this.readKey = args.master ? deriveReadKey(args.master) : null;
    if (args.config.v === 2) {
      // The server's copy of the read key is never adopted, only compared (a substituted key would capture new backups).
      if (!args.config.readKey || !Buffer.from(args.config.readKey, 'base64').equals(write.readPublic)) {
        throw new CoffreError('INTEGRITY', "the server's public read key differs from the one this machine derived from the passphrase: not writing to it (tampering, or another customer's repository)");
      }
      this.session = newSealSession(write.readPublic);
    } else {
      if (!this.v1Key) throw new CoffreError('NO_KEY', 'this format-1 repository needs the passphrase on this machine');
      this.session = null;
    }
    this.codec = new BlobCodec({ v1: this.v1Key ?? undefined, seal: this.session ?? undefined, read: this.readKey ?? undefined });
    this.chunker = new Chunker(write.gear, args.config.chunker ?? DEFAULT_CHUNKER);
    this.machineId = args.machineId;
    this.cacheDir = args.cacheDir;
    // Format 1 machines hold the master key anyway: their cache key is derived from it.
    this.local = new BlobCodec(args.cacheKey ?? deriveSubkeys(args.master!).encryption);
    mkdirSync(join(this.cacheDir, 'local-trees'), { recursive: true, mode: 0o700 });
  }

  /** True when stored data can be decrypted (the master key is open). */
  get canRead(): boolean {
    return this.master !== null;
  }

  /** The master key, or NO_KEY: restore and the restore test need it. */
  requireMaster(): Buffer {
    if (!this.master) throw new CoffreError('NO_KEY', WRITE_ONLY_MESSAGE);
    return this.master;
  }

  writerInit(): WriterInit {
    return {
      chunkIdKey: new Uint8Array(this.keys.chunkId),
      gear: this.keys.gear,
      v1Key: this.session ? null : new Uint8Array(this.v1Key!),
      seal: this.session ? { ephemeral: new Uint8Array(this.session.ephemeral), key: new Uint8Array(this.session.key) } : null,
    };
  }

  sealManifest(args: Parameters<typeof sealManifest>[1]): ManifestUpload {
    return sealManifest(this.session ? { readPublic: this.keys.readPublic, manifestMac: this.keys.manifestMac } : { encryption: this.v1Key!, manifestMac: this.keys.manifestMac }, args);
  }

  // ---- this machine's snapshot roots (format 2: what lets a write-only machine find its parent) ----

  private get rootsFile(): string {
    return join(this.cacheDir, 'roots.bin');
  }

  /** Roots of this machine's snapshots, as recorded when it made them (authenticated with the cache key). */
  localRoots(): Map<string, { root: ChunkId; paths: string[] }> {
    const out = new Map<string, { root: ChunkId; paths: string[] }>();
    if (!existsSync(this.rootsFile)) return out;
    try {
      // File: keyed id of the plaintext (32 bytes) || the blob, as for a tree.
      const raw = readFileSync(this.rootsFile);
      const plain = this.local.decode(raw.toString('hex', 0, 32) as ChunkId, raw.subarray(32), 16 * 1024 * 1024, this.keys.chunkId);
      for (const [id, v] of Object.entries(JSON.parse(plain.toString('utf8')) as Record<string, { root: ChunkId; paths: string[] }>)) out.set(id, v);
    } catch {
      rmSync(this.rootsFile, { force: true }); // damaged: the next backup reads every file again
    }
    return out;
  }

  recordRoot(snapshot: SnapshotId, root: ChunkId, paths: string[]): void {
    const all = this.localRoots();
    all.set(snapshot, { root, paths });
    const keep = [...all.entries()].slice(-200);
    const plain = Buffer.from(JSON.stringify(Object.fromEntries(keep)), 'utf8');
    const tmp = `${this.rootsFile}.${process.pid}.tmp`;
    const id = chunkId(this.keys.chunkId, plain);
    writeFileSync(tmp, Buffer.concat([Buffer.from(id, 'hex'), this.local.encode(id, plain, { level: 3 })]), { mode: 0o600 });
    renameSync(tmp, this.rootsFile);
  }

  // ---- chunk-id cache: ids known to be indexed on the server (append-only file) ----

  private get knownFile(): string {
    return join(this.cacheDir, 'known-chunks.bin');
  }

  loadKnown(into: SharedIdSet): number {
    if (!existsSync(this.knownFile)) return 0;
    const b = readFileSync(this.knownFile);
    const n = Math.floor(b.length / 32);
    for (let i = 0; i < n; i++) into.addBytes(b.subarray(i * 32, i * 32 + 32));
    return n;
  }

  /** Called once a pack is indexed (or the server said the ids exist): crash-safe. */
  recordKnown(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const b = Buffer.allocUnsafe(ids.length * 32);
    ids.forEach((id, i) => b.write(id, i * 32, 'hex'));
    appendFileSync(this.knownFile, b, { mode: 0o600 });
  }

  dropKnown(): void {
    rmSync(this.knownFile, { force: true });
  }

  // ---- server calls ----

  async exists(ids: readonly string[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      const r = await this.api.json<ChunksExistResponse>('POST', '/chunks/exists', { ids: ids.slice(i, i + BATCH) });
      out.push(...r.exists);
    }
    return out;
  }

  async locate(ids: readonly string[]): Promise<(ChunkLocation | null)[]> {
    const out: (ChunkLocation | null)[] = new Array(ids.length).fill(null);
    const todo: number[] = [];
    ids.forEach((id, i) => {
      const c = this.locCache.get(id);
      if (c) out[i] = c;
      else todo.push(i);
    });
    for (let i = 0; i < todo.length; i += BATCH) {
      const part = todo.slice(i, i + BATCH);
      const r = await this.api.json<ChunksLocateResponse>('POST', '/chunks/locate', { ids: part.map((j) => ids[j]) });
      part.forEach((j, k) => {
        const loc = r.locations[k] ?? null;
        out[j] = loc;
        if (loc) this.locCache.set(ids[j]!, loc);
      });
    }
    return out;
  }

  /**
   * The clear header of a pack, read with two small ranged requests. Restore checks
   * every blob it reads against it, so damage anywhere in a pack is reported.
   */
  async packHeader(pack: string): Promise<Map<string, PackEntry>> {
    let h = this.headerCache.get(pack);
    if (!h) {
      h = this.fetchPackHeader(pack);
      this.headerCache.set(pack, h);
      h.catch(() => this.headerCache.delete(pack));
    }
    return h;
  }

  private async fetchPackHeader(pack: string): Promise<Map<string, PackEntry>> {
    const fixed = await this.api.getBinary(`/packs/${pack}`, { offset: 0, length: PACK_HEADER_FIXED });
    const n = packEntryCount(fixed);
    const head = await this.api.getBinary(`/packs/${pack}`, { offset: 0, length: packHeaderSize(n) });
    // The pack id is the hash of its header: a damaged header is caught here.
    if (packIdOf(head) !== pack) throw new CoffreError('INTEGRITY', `the header of pack ${pack.slice(0, 12)} does not match its id`);
    return new Map(parsePackHeader(head).map((e) => [e.id, e]));
  }

  /**
   * Reads blobs of one pack with one ranged request and checks each against the pack
   * header (offset, length, SHA-256). Returns the raw blob or the error, per id.
   */
  async readVerifiedRange(pack: string, items: readonly { id: string; loc: ChunkLocation }[], header: Map<string, PackEntry>): Promise<Map<string, Buffer | Error>> {
    const out = new Map<string, Buffer | Error>();
    const start = Math.min(...items.map((i) => i.loc.offset));
    const end = Math.max(...items.map((i) => i.loc.offset + i.loc.length));
    let data: Buffer;
    try {
      data = await this.api.getBinary(`/packs/${pack}`, { offset: start, length: end - start });
    } catch (e) {
      if (isCoffreError(e, 'UNAUTHORIZED') || isCoffreError(e, 'UNREACHABLE') || isCoffreError(e, 'TLS_PIN_MISMATCH')) throw e;
      for (const i of items) out.set(i.id, e as Error);
      return out;
    }
    for (const { id, loc } of items) {
      const blob = data.subarray(loc.offset - start, loc.offset - start + loc.length);
      const h = header.get(id);
      if (!h || h.offset !== loc.offset || h.length !== loc.length || sha256Hex(blob) !== h.sha256) {
        out.set(id, new CoffreError('INTEGRITY', `chunk ${id.slice(0, 12)} does not match the header of pack ${pack.slice(0, 12)}`));
      } else out.set(id, blob);
    }
    return out;
  }

  // ---- trees ----

  /** Encodes a directory's tree; returns its id and blob (the caller stores it). */
  sealTree(nodes: TreeNode[]): { id: ChunkId; plain: Buffer } {
    const plain = encodeTree(nodes);
    return { id: chunkId(this.keys.chunkId, plain), plain };
  }

  /** Keeps this machine's copy of a tree it wrote (under the local cache key). */
  cacheTree(id: ChunkId, plain: Buffer): void {
    const dir = join(this.cacheDir, 'local-trees', id.slice(0, 2));
    const f = join(dir, id);
    if (existsSync(f)) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${f}.${process.pid}.tmp`;
    writeFileSync(tmp, this.local.encode(id, plain, { level: 3 }), { mode: 0o600 });
    renameSync(tmp, f);
  }

  /** Loads and authenticates a tree: memory cache, then this machine's cache, then server (with the read key). */
  async loadTree(id: ChunkId): Promise<Tree> {
    if (!isChunkId(id)) throw new CoffreError('FORMAT', 'invalid tree id');
    const hit = this.treeCache.get(id);
    if (hit) return hit;
    const f = join(this.cacheDir, 'local-trees', id.slice(0, 2), id);
    let plain: Buffer | null = null;
    if (!this.serverTreesOnly && existsSync(f)) {
      try {
        plain = this.local.decode(id, readFileSync(f), MAX_TREE_SIZE, this.keys.chunkId);
      } catch {
        rmSync(f, { force: true }); // a damaged cache entry is refetched, never trusted
      }
    }
    if (!plain) {
      if (!this.canRead) throw new CoffreError('NO_KEY', WRITE_ONLY_MESSAGE);
      const [loc] = await this.locate([id]);
      if (!loc) throw new CoffreError('INTEGRITY', `tree ${id.slice(0, 12)} is not stored on the server`);
      const blob = await this.api.getBinary(`/packs/${loc.pack}`, { offset: loc.offset, length: loc.length });
      // Not cached: a tree read with the passphrase (another machine's, an old one) must not
      // stay on this machine, readable with its write-key file.
      plain = this.codec.decode(id, blob, MAX_TREE_SIZE, this.keys.chunkId);
    }
    const tree = decodeTree(plain);
    if (this.treeCache.size > 4096) this.treeCache.clear();
    this.treeCache.set(id, tree);
    return tree;
  }

  /**
   * Loads many trees from the server at once: one locate call, then ranged reads merged
   * per pack. Used by restore, which must read the server's copy (not the local cache)
   * yet should not pay two round trips per directory. Failures are per tree.
   */
  async loadTreesFromServer(ids: readonly ChunkId[]): Promise<Map<string, Tree | Error>> {
    const out = new Map<string, Tree | Error>();
    const uniq = [...new Set(ids)];
    const locs = await this.locate(uniq);
    const byPack = new Map<string, { id: ChunkId; loc: ChunkLocation }[]>();
    uniq.forEach((id, i) => {
      const loc = locs[i];
      if (!loc) out.set(id, new CoffreError('INTEGRITY', `tree ${id.slice(0, 12)} is not stored on the server`));
      else {
        let l = byPack.get(loc.pack);
        if (!l) byPack.set(loc.pack, (l = []));
        l.push({ id, loc });
      }
    });
    for (const [pack, list] of byPack) {
      list.sort((a, b) => a.loc.offset - b.loc.offset);
      for (let i = 0; i < list.length; ) {
        let j = i + 1;
        const start = list[i]!.loc.offset;
        let end = start + list[i]!.loc.length;
        while (j < list.length && list[j]!.loc.offset - end < 64 * 1024 && list[j]!.loc.offset + list[j]!.loc.length - start < 32 * 1024 * 1024) {
          end = list[j]!.loc.offset + list[j]!.loc.length;
          j++;
        }
        let header: Map<string, PackEntry> | Error;
        try {
          header = await this.packHeader(pack);
        } catch (e) {
          if (isCoffreError(e, 'UNAUTHORIZED') || isCoffreError(e, 'UNREACHABLE')) throw e;
          header = e as Error;
        }
        const part = list.slice(i, j);
        const blobs = header instanceof Error ? new Map(part.map((p) => [p.id, header as Error])) : await this.readVerifiedRange(pack, part, header);
        for (const { id } of part) {
          const blob = blobs.get(id)!;
          if (blob instanceof Error) {
            out.set(id, blob);
            continue;
          }
          try {
            out.set(id, decodeTree(this.codec.decode(id, blob, MAX_TREE_SIZE, this.keys.chunkId)));
          } catch (e) {
            out.set(id, e as Error);
          }
        }
        i = j;
      }
    }
    return out;
  }

  // ---- snapshots ----

  async listSnapshots(machine?: string): Promise<SnapshotRecord[]> {
    const q = machine ? `?machine=${encodeURIComponent(machine)}` : '';
    const r = await this.api.json<SnapshotListResponse>('GET', `/snapshots${q}`);
    return [...r.snapshots];
  }

  /** The secret part of a manifest (NO_KEY without the read key). */
  open(s: SnapshotRecord): ManifestSecret {
    return openManifest({ encryption: this.v1Key ?? undefined, read: this.readKey ?? undefined, manifestMac: this.keys.manifestMac }, s.manifest, s.machineId);
  }

  /** Checks a manifest's MAC (the write keys suffice). */
  checkMac(s: SnapshotRecord): void {
    checkManifestMac(this.keys.manifestMac, s.manifest, s.machineId);
  }

  /**
   * Resolves "latest" (this machine's newest, or `machine`'s: another machine's data is never
   * taken by default), a full id or a unique id prefix (≥ 4 hex digits).
   */
  async findSnapshot(ref: string, machine?: string): Promise<SnapshotRecord> {
    const all = await this.listSnapshots(machine);
    if (ref === 'latest') {
      const mine = machine ? all : all.filter((s) => s.machineId === this.machineId);
      if (mine.length === 0) throw new CoffreError('NOT_FOUND', machine ? `machine ${machine} has no snapshot` : 'this machine has no snapshot yet; to restore another machine\'s, add --machine NAME');
      return mine[mine.length - 1]!;
    }
    if (all.length === 0) throw new CoffreError('NOT_FOUND', 'there is no snapshot yet');
    if (!/^[0-9a-f]{4,32}$/.test(ref)) throw new CoffreError('BAD_REQUEST', `"${ref}" is not a snapshot id (hex) nor "latest"`);
    const m = all.filter((s) => s.id.startsWith(ref));
    if (m.length === 0) throw new CoffreError('NOT_FOUND', `no snapshot ${ref}`);
    if (m.length > 1) throw new CoffreError('BAD_REQUEST', `snapshot prefix ${ref} is ambiguous (${m.length} snapshots); give more digits`);
    return m[0]!;
  }
}
