import { sha256Hex, decodeRefs, isCoffreError, nodeNameBytes, packHeaderSize, packIdOf, parsePackHeader, type ChunkId, type SnapshotRecord } from '@coffre/core';
import type { Repository } from './repo.js';

export interface VerifyProblem {
  readonly snapshot: string | null;
  /** Files (snapshot paths) affected, when known. */
  readonly paths: readonly string[];
  readonly message: string;
}
export interface VerifyProgress {
  readonly phase: 'snapshots' | 'trees' | 'data';
  readonly done: number;
  readonly total: number;
}
export interface VerifyResult {
  readonly snapshots: number;
  readonly trees: number;
  readonly chunks: number;
  readonly packsRead: number;
  readonly bytesRead: number;
  readonly problems: readonly VerifyProblem[];
}

const MAX_PATHS = 5;

/**
 * Checks every snapshot of the customer: manifest MAC, reference list, every tree
 * (read from the server, authenticated; only with the read key), and that every chunk is stored. With
 * `readData`, downloads every pack and checks each blob's SHA-256, authentication tag
 * and keyed id; damaged chunks are reported with the files that use them.
 */
export async function verify(repo: Repository, opts: { readData: boolean; progress?: (p: VerifyProgress) => void }): Promise<VerifyResult> {
  repo.serverTreesOnly = true;
  const problems: VerifyProblem[] = [];
  const snapshots = await repo.listSnapshots();
  const users = new Map<string, { snapshot: string; paths: string[] }>();
  const use = (id: string, snapshot: string, path: string) => {
    let u = users.get(id);
    if (!u) users.set(id, (u = { snapshot, paths: [] }));
    if (u.paths.length < MAX_PATHS && !u.paths.includes(path)) u.paths.push(path);
  };
  let trees = 0;
  const seenTrees = new Set<string>();

  for (const [i, s] of snapshots.entries()) {
    opts.progress?.({ phase: 'trees', done: i, total: snapshots.length });
    await verifySnapshot(s);
  }

  async function verifySnapshot(s: SnapshotRecord): Promise<void> {
    const short = s.id.slice(0, 8);
    let root: ChunkId | null = null;
    try {
      // Without the read key (a format-2 machine): the MAC and the reference list, not the trees.
      if (repo.canRead) root = repo.open(s).root;
      else repo.checkMac(s);
    } catch (e) {
      problems.push({ snapshot: s.id, paths: [], message: `snapshot ${short}: ${(e as Error).message}` });
      return;
    }
    let refs: Set<string>;
    try {
      const raw = await repo.api.getBinary(`/snapshots/${s.id}/refs`);
      if (sha256Hex(raw) !== s.manifest.refsSha256) throw new Error('reference list does not match the manifest');
      refs = new Set(decodeRefs(raw));
    } catch (e) {
      problems.push({ snapshot: s.id, paths: [], message: `snapshot ${short}: ${(e as Error).message}` });
      refs = new Set();
    }
    const walk = async (treeId: ChunkId, path: string): Promise<void> => {
      use(treeId, s.id, path || '/');
      if (!refs.has(treeId)) problems.push({ snapshot: s.id, paths: [path || '/'], message: `snapshot ${short}: tree of ${path || '/'} is not in the reference list` });
      if (seenTrees.has(treeId)) return; // identical subtree already checked (and its users recorded)
      let nodes;
      try {
        nodes = (await repo.loadTree(treeId)).nodes;
        trees++;
      } catch (e) {
        problems.push({ snapshot: s.id, paths: [path || '/'], message: `snapshot ${short}: directory ${path || '/'} cannot be read: ${(e as Error).message}` });
        return;
      }
      seenTrees.add(treeId);
      for (const n of nodes) {
        const p = `${path}/${nodeNameBytes(n).toString('utf8')}`;
        if (n.type === 'dir') await walk(n.subtree!, p);
        else if (n.type === 'file') {
          for (const [id] of n.content ?? []) {
            use(id, s.id, p);
            if (!refs.has(id)) problems.push({ snapshot: s.id, paths: [p], message: `snapshot ${short}: ${p} uses a chunk missing from the reference list` });
          }
        }
      }
    };
    if (root) await walk(root, '');
    else for (const id of refs) use(id, s.id, `(snapshot ${short})`);
  }

  // Every chunk must be indexed on the server.
  const ids = [...users.keys()];
  const locs = await repo.locate(ids);
  const byPack = new Map<string, { id: string; offset: number; length: number }[]>();
  ids.forEach((id, i) => {
    const loc = locs[i];
    if (!loc) {
      const u = users.get(id)!;
      problems.push({ snapshot: u.snapshot, paths: u.paths, message: `chunk ${id.slice(0, 12)} is missing on the server; affects ${u.paths.join(', ')}` });
      return;
    }
    let l = byPack.get(loc.pack);
    if (!l) byPack.set(loc.pack, (l = []));
    l.push({ id, offset: loc.offset, length: loc.length });
  });

  let packsRead = 0;
  let bytesRead = 0;
  if (opts.readData) {
    let done = 0;
    for (const [pack, list] of byPack) {
      opts.progress?.({ phase: 'data', done: done++, total: byPack.size });
      let data: Buffer;
      try {
        data = await repo.api.getBinary(`/packs/${pack}`);
      } catch (e) {
        if (isCoffreError(e, 'UNAUTHORIZED') || isCoffreError(e, 'UNREACHABLE')) throw e;
        for (const b of list) report(b.id, `pack ${pack.slice(0, 12)} cannot be read: ${(e as Error).message}`);
        continue;
      }
      packsRead++;
      bytesRead += data.length;
      let header: Map<string, string> | null = null;
      try {
        const entries = parsePackHeader(data, data.length);
        if (packIdOf(data.subarray(0, packHeaderSize(entries.length))) !== pack) throw new Error('its header does not match its name');
        header = new Map(entries.map((e) => [e.id, e.sha256]));
      } catch (e) {
        problems.push({ snapshot: null, paths: [], message: `pack ${pack.slice(0, 12)}: ${(e as Error).message}` });
      }
      for (const b of list) {
        const blob = data.subarray(b.offset, b.offset + b.length);
        if (blob.length !== b.length) {
          report(b.id, `blob truncated in pack ${pack.slice(0, 12)}`);
          continue;
        }
        if (header && header.get(b.id) !== sha256Hex(blob)) {
          report(b.id, `blob does not match its recorded SHA-256 in pack ${pack.slice(0, 12)}`);
          continue;
        }
        try {
          repo.codec.decode(b.id as ChunkId, blob, Math.max(repo.config.chunker.max, 256 * 1024 * 1024), repo.keys.chunkId);
        } catch (e) {
          report(b.id, (e as Error).message);
        }
      }
    }
  }

  function report(id: string, why: string): void {
    const u = users.get(id)!;
    problems.push({ snapshot: u.snapshot, paths: u.paths, message: `chunk ${id.slice(0, 12)} is damaged (${why}); affects ${u.paths.join(', ')}` });
  }

  return { snapshots: snapshots.length, trees, chunks: ids.length, packsRead, bytesRead, problems };
}
