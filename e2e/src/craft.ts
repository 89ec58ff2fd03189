import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BlobCodec,
  PackBuilder,
  chunkId,
  encodeRefs,
  newSealSession,
  encodeTree,
  newSnapshotId,
  sealManifest,
  type ChunkId,
  type SnapshotCommitResponse,
  type TreeNode,
} from '@coffre/core';
import { ApiClient } from '@coffre/agent';

/**
 * Builds and commits a snapshot whose trees were crafted by an attacker who holds what a
 * machine keeps (a compromised machine of the same customer: its write keys, storage format
 * 2): the restorer must still refuse to write outside its target. Uses the agent's own state
 * directory for keys and credential.
 */
export async function commitCraftedSnapshot(configDir: string, build: (file: (content: string) => TreeNode['content'], tree: (nodes: TreeNode[]) => ChunkId) => ChunkId): Promise<string> {
  const cfg = JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8')) as { server: string; certPem: string; fingerprint: string; credential: string; machineId: string };
  const w = JSON.parse(readFileSync(join(configDir, 'write-key'), 'utf8')) as { chunkId: string; manifestMac: string; readPublic: string };
  const keys = { chunkId: Buffer.from(w.chunkId, 'base64'), manifestMac: Buffer.from(w.manifestMac, 'base64'), readPublic: Buffer.from(w.readPublic, 'base64') };
  const codec = new BlobCodec({ seal: newSealSession(keys.readPublic) });
  const pack = new PackBuilder();
  const refs: ChunkId[] = [];
  const add = (plain: Buffer): ChunkId => {
    const id = chunkId(keys.chunkId, plain);
    pack.add(id, codec.encode(id, plain));
    refs.push(id);
    return id;
  };
  const root = build(
    (content) => {
      const b = Buffer.from(content);
      return [[add(b), b.length]];
    },
    (nodes) => add(encodeTree(nodes)),
  );
  const api = new ApiClient({ server: cfg.server, certPem: cfg.certPem, fingerprint: cfg.fingerprint, credential: cfg.credential });
  try {
    const p = pack.finish();
    await api.putBinary(`/packs/${p.id}`, p.data);
    const id = newSnapshotId();
    const refBytes = encodeRefs(refs);
    const manifest = sealManifest(keys, {
      id,
      machineId: cfg.machineId,
      parent: null,
      refs: refBytes,
      logicalSize: 1,
      secret: {
        v: 1,
        root,
        hostname: 'attacker',
        paths: ['/'],
        tags: [],
        clientTime: new Date().toISOString(),
        stats: { files: 1, dirs: 1, symlinks: 0, bytes: 1, newFiles: 1, changedFiles: 0, unchangedFiles: 0, addedChunks: 1, addedBytes: 1, skipped: 0, durationMs: 1 },
        agentVersion: 'crafted',
      },
    });
    const r = await api.json<SnapshotCommitResponse>('POST', '/snapshots', { manifest, refs: refBytes.toString('base64') });
    return r.id;
  } finally {
    api.close();
  }
}

export const fileNode = (name: string, content: TreeNode['content'], size: number): TreeNode => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0', size, content: content! });
export const dirNode = (name: string, subtree: ChunkId): TreeNode => ({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', subtree });
