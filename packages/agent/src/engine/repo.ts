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
  deriveSubkeys,
  sha256Hex,
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
  type RepoConfig,
  type SnapshotListResponse,
  type SnapshotRecord,
  type Subkeys,
  type Tree,
  type TreeNode,
} from '@coffre/core';
import type { ApiClient } from '../client.js';
import type { SharedIdSet } from './idset.js';

/** Ids per exists/locate request (the server accepts up to MAX_BATCH_IDS). */
const BATCH = 5000;

/** An opened customer repository: keys, API, and the local caches. */
export class Repository {
  readonly api: ApiClient;
  readonly keys: Subkeys;
  readonly master: Buffer;
  readonly config: RepoConfig;
  readonly codec: BlobCodec;
  readonly chunker: Chunker;
  readonly machineId: string;
  readonly cacheDir: string;
  private readonly treeCache = new Map<string, Tree>();
  private readonly locCache = new Map<string, ChunkLocation>();
  /** When set, trees are always read from the server (verify must check the server's copy). */
  serverTreesOnly = false;
  private readonly headerCache = new Map<string, Promise<Map<string, PackEntry>>>();

  constructor(args: { api: ApiClient; master: Buffer; config: RepoConfig; machineId: string; cacheDir: string }) {
    this.api = args.api;
    this.master = args.master;
    this.keys = deriveSubkeys(args.master);
    this.config = args.config;
    this.codec = new BlobCodec(this.keys.encryption);
    this.chunker = new Chunker(this.keys.gear, args.config.chunker ?? DEFAULT_CHUNKER);
    this.machineId = args.machineId;
    this.cacheDir = args.cacheDir;
    mkdirSync(join(this.cacheDir, 'trees'), { recursive: true, mode: 0o700 });
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

  cacheTreeBlob(id: string, blob: Buffer): void {
    const dir = join(this.cacheDir, 'trees', id.slice(0, 2));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const f = join(dir, id);
    if (existsSync(f)) return;
    const tmp = `${f}.${process.pid}.tmp`;
    writeFileSync(tmp, blob, { mode: 0o600 });
    renameSync(tmp, f);
  }

  /** Loads and authenticates a tree: memory cache, then local blob cache, then server. */
  async loadTree(id: ChunkId): Promise<Tree> {
    if (!isChunkId(id)) throw new CoffreError('FORMAT', 'invalid tree id');
    const hit = this.treeCache.get(id);
    if (hit) return hit;
    const f = join(this.cacheDir, 'trees', id.slice(0, 2), id);
    let plain: Buffer | null = null;
    if (!this.serverTreesOnly && existsSync(f)) {
      try {
        plain = this.codec.decode(id, readFileSync(f), MAX_TREE_SIZE, this.keys.chunkId);
      } catch {
        rmSync(f, { force: true }); // a damaged cache entry is refetched, never trusted
      }
    }
    if (!plain) {
      const [loc] = await this.locate([id]);
      if (!loc) throw new CoffreError('INTEGRITY', `tree ${id.slice(0, 12)} is not stored on the server`);
      const blob = await this.api.getBinary(`/packs/${loc.pack}`, { offset: loc.offset, length: loc.length });
      plain = this.codec.decode(id, blob, MAX_TREE_SIZE, this.keys.chunkId);
      this.cacheTreeBlob(id, blob);
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

  open(s: SnapshotRecord): ManifestSecret {
    return openManifest(this.keys, s.manifest, s.machineId);
  }

  /** Resolves "latest", a full id or a unique id prefix (≥ 4 hex digits). */
  async findSnapshot(ref: string, machine?: string): Promise<SnapshotRecord> {
    const all = await this.listSnapshots(machine);
    if (all.length === 0) throw new CoffreError('NOT_FOUND', 'there is no snapshot yet');
    if (ref === 'latest') return all[all.length - 1]!;
    if (!/^[0-9a-f]{4,32}$/.test(ref)) throw new CoffreError('BAD_REQUEST', `"${ref}" is not a snapshot id (hex) nor "latest"`);
    const m = all.filter((s) => s.id.startsWith(ref));
    if (m.length === 0) throw new CoffreError('NOT_FOUND', `no snapshot ${ref}`);
    if (m.length > 1) throw new CoffreError('BAD_REQUEST', `snapshot prefix ${ref} is ambiguous (${m.length} snapshots); give more digits`);
    return m[0]!;
  }
}
