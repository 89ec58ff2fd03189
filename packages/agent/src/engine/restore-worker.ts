import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { BlobCodec, MAX_CHUNK_SIZE_LIMIT, deriveReadKey, deriveSubkeys, type ChunkId } from '@coffre/core';

/**
 * Restore worker: checks each blob of a fetched pack range against its header SHA-256,
 * authenticates, decompresses and re-hashes it, and writes it at its offsets in every
 * file that uses it (skipping zero blocks so sparse files stay sparse). Files were
 * created at their final size by the main thread; they are opened without following
 * symbolic links.
 */
export interface RestoreTask {
  readonly id: number;
  readonly data: Uint8Array;
  readonly blobs: readonly { readonly id: ChunkId; readonly offset: number; readonly length: number; readonly sha256: string; readonly dests: readonly { readonly path: string | Uint8Array; readonly offset: number }[] }[];
}
export interface RestoreTaskResult {
  readonly id: number;
  /** Per blob: plaintext length written, or the error. */
  readonly results: readonly ({ readonly ok: true; readonly length: number } | { readonly ok: false; readonly message: string })[];
}

const { master, maxPlain } = workerData as { master: Uint8Array; maxPlain: number };
const keys = deriveSubkeys(Buffer.from(master));
const codec = new BlobCodec({ v1: keys.encryption, read: deriveReadKey(Buffer.from(master)) });
const ZERO = Buffer.alloc(MAX_CHUNK_SIZE_LIMIT);
const BLOCK = 64 * 1024;

function writeAt(path: string | Uint8Array, plain: Buffer, offset: number): void {
  const p = typeof path === 'string' ? path : Buffer.from(path.buffer, path.byteOffset, path.byteLength);
  const fd = openSync(p, constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0));
  try {
    for (let i = 0; i < plain.length; i += BLOCK) {
      const end = Math.min(plain.length, i + BLOCK);
      let j = end;
      if (plain.subarray(i, end).equals(ZERO.subarray(0, end - i))) continue;
      // Extend the run over following non-zero blocks: one write per run.
      while (j < plain.length) {
        const e = Math.min(plain.length, j + BLOCK);
        if (plain.subarray(j, e).equals(ZERO.subarray(0, e - j))) break;
        j = e;
      }
      let w = i;
      while (w < j) w += writeSync(fd, plain, w, j - w, offset + w);
      i = j - BLOCK;
    }
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', (t: RestoreTask) => {
  const data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const results = t.blobs.map((b) => {
    try {
      const blob = data.subarray(b.offset, b.offset + b.length);
      if (blob.length !== b.length || createHash('sha256').update(blob).digest('hex') !== b.sha256) {
        return { ok: false as const, message: `chunk ${b.id.slice(0, 12)} does not match its pack header` };
      }
      const plain = codec.decode(b.id, blob, maxPlain, keys.chunkId);
      for (const d of b.dests) writeAt(d.path, plain, d.offset);
      return { ok: true as const, length: plain.length };
    } catch (e) {
      return { ok: false as const, message: (e as Error).message };
    }
  });
  const out: RestoreTaskResult = { id: t.id, results };
  parentPort!.postMessage(out);
});
