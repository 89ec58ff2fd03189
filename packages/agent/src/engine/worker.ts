import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { BlobCodec, Chunker, chunkId, type ChunkId, type ChunkerParams } from '@coffre/core';
import type { WriterInit } from './repo.js';
import { SharedIdSet } from './idset.js';
import type { FileJob, FileResult, WorkerIn, WorkerOut } from './worker-protocol.js';

/**
 * Backup worker thread: reads files with synchronous fs calls (much faster than
 * fs.promises for many small files), chunks them, computes keyed ids, and encodes
 * (zstd + AES-GCM) only chunks not already known. Blobs are posted to the main thread
 * before the batch result, so the main thread has every new blob a result refers to.
 */
interface Init {
  /** Write keys only: a backup worker never holds a key that decrypts stored data (format 2). */
  readonly writer: WriterInit;
  readonly chunker: ChunkerParams;
  readonly level: number;
  readonly known: SharedArrayBuffer;
}

const init = workerData as Init;
const w = init.writer;
const keys = { chunkId: Buffer.from(w.chunkIdKey) };
const chunker = new Chunker(w.gear, init.chunker);
const codec = new BlobCodec(w.seal ? { seal: { ephemeral: Buffer.from(w.seal.ephemeral), key: Buffer.from(w.seal.key) } } : { v1: Buffer.from(w.v1Key!) });
let known = new SharedIdSet(init.known);
const sentHere = new Set<string>();
const buf = Buffer.allocUnsafeSlow(init.chunker.max * 2);
const port = parentPort!;

// New blobs are posted in groups (one message per ~4 MiB or per batch), always before
// the batch result that refers to them.
let outbox: { id: ChunkId; blob: Buffer }[] = [];
let outboxBytes = 0;
function sendBlobs(): void {
  if (outbox.length === 0) return;
  // SHA-256 of each blob for the pack header, computed here where CPU is spare.
  const hashes = Buffer.allocUnsafeSlow(outbox.length * 32);
  outbox.forEach((b, i) => createHash('sha256').update(b.blob).digest().copy(hashes, i * 32));
  const msg: WorkerOut = { type: 'blobs', ids: outbox.map((b) => b.id), blobs: outbox.map((b) => b.blob), hashes };
  port.postMessage(msg, [...outbox.map((b) => b.blob.buffer as ArrayBuffer), hashes.buffer as ArrayBuffer]);
  outbox = [];
  outboxBytes = 0;
}

const O_NOATIME = (constants as Record<string, number>).O_NOATIME ?? 0;

function openForRead(p: string | Uint8Array): number {
  const path = typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (O_NOATIME) {
    try {
      return openSync(path, constants.O_RDONLY | O_NOATIME);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e; // O_NOATIME needs ownership
    }
  }
  return openSync(path, 'r');
}

function sameVersion(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

function readOnce(fd: number): { content: [ChunkId, number][]; bytes: number } {
  const content: [ChunkId, number][] = [];
  let pos = 0;
  let end = 0;
  let eof = false;
  let total = 0;
  const max = init.chunker.max;
  for (;;) {
    if (!eof && end - pos < max) {
      if (pos > 0) {
        buf.copy(buf, 0, pos, end);
        end -= pos;
        pos = 0;
      }
      while (end < buf.length) {
        const n = readSync(fd, buf, end, buf.length - end, null);
        if (n === 0) {
          eof = true;
          break;
        }
        end += n;
      }
    }
    if (pos === end) break;
    const len = chunker.findCut(buf, pos, end);
    const data = buf.subarray(pos, pos + len);
    const id = chunkId(keys.chunkId, data);
    content.push([id, len]);
    if (!sentHere.has(id) && !known.has(id)) {
      const blob = codec.encode(id, data, { level: init.level });
      if (sentHere.size > 100_000) sentHere.clear();
      sentHere.add(id);
      outbox.push({ id, blob });
      outboxBytes += blob.length;
      if (outboxBytes >= 4 * 1024 * 1024) sendBlobs();
    }
    pos += len;
    total += len;
  }
  return { content, bytes: total };
}

function processFile(job: FileJob): FileResult {
  let fd: number;
  try {
    fd = openForRead(job.path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { ok: false, kind: err.code === 'ENOENT' ? 'vanished' : 'unreadable', message: `${err.code ?? 'error'}: ${err.message}` };
  }
  try {
    // A file that changes while it is read is read again (twice at most), then reported:
    // a torn copy is never stored silently.
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = fstatSync(fd, { bigint: true });
      if (!before.isFile()) return { ok: false, kind: 'special', message: 'not a regular file any more' };
      const { content, bytes } = readOnce(fd);
      const after = fstatSync(fd, { bigint: true });
      if (sameVersion(before, after) && BigInt(bytes) === after.size) {
        return {
          ok: true,
          content,
          size: bytes,
          mode: Number(after.mode),
          uid: Number(after.uid),
          gid: Number(after.gid),
          mtime: after.mtimeNs.toString(),
          ctime: after.ctimeNs.toString(),
          ino: after.ino.toString(),
          dev: after.dev.toString(),
          nlink: Number(after.nlink),
        };
      }
      if (attempt < 2) {
        closeSync(fd);
        fd = openForRead(job.path);
      }
    }
    return { ok: false, kind: 'changed', message: 'the file kept changing while it was read; not stored' };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { ok: false, kind: 'unreadable', message: `${err.code ?? 'error'}: ${err.message}` };
  } finally {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }
}

port.on('message', (msg: WorkerIn) => {
  if (msg.type === 'known') {
    known = new SharedIdSet(msg.known);
    return;
  }
  const results = msg.files.map(processFile);
  sendBlobs();
  const out: WorkerOut = { type: 'done', id: msg.id, results };
  port.postMessage(out);
});
