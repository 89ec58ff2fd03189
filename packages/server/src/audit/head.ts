import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../fsutil.js';
import { isNotFound, type ObjectStore } from '../store/object-store.js';

/** The last audit entry written: {seq, hash}. */
export interface AuditLink {
  readonly seq: number;
  readonly hash: string;
}

/**
 * The audit chain's head kept OUTSIDE the database (audit/chain.ts): deleting the newest
 * entries from the database is then detected. It only moves forward; it may lag the
 * database (a crash between the commit and the head write, or instances writing at once),
 * which the verifier accepts.
 *
 * Embedded deployment: a file in the data directory. With PostgreSQL (several instances,
 * each with its own copy of the data directory): an object in the shared object store, so
 * every instance advances, and every `audit verify` reads, the same head.
 */
export interface AuditHead {
  read(): Promise<AuditLink | null>;
  /** Moves the head to `link` unless it is already there or further. */
  advance(link: AuditLink): Promise<void>;
  /** For messages: where the head is kept. */
  readonly where: string;
}

function parseLink(text: string, where: string): AuditLink {
  let v: Partial<AuditLink>;
  try {
    v = JSON.parse(text) as Partial<AuditLink>;
  } catch {
    throw new Error(`${where} is damaged`);
  }
  if (typeof v.seq !== 'number' || typeof v.hash !== 'string') throw new Error(`${where} is damaged`);
  return { seq: v.seq, hash: v.hash };
}

export function fileAuditHead(file: string): AuditHead {
  return {
    where: file,
    async read() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      return parseLink(text, file);
    },
    async advance(link) {
      const current = await this.read();
      if (current && current.seq >= link.seq) return;
      await writeFileAtomic(file, `${JSON.stringify(link)}\n`, 0o600);
    },
  };
}

/** Where the head was kept before per-writer heads (and what an earlier migrate-storage wrote): still read. */
export const AUDIT_HEAD_KEY = 'audit/head.json';
/** One head object per writing process: `audit/heads/<uuid>.json`. */
export const AUDIT_HEADS_PREFIX = 'audit/heads/';

/**
 * The head in the shared store, with several instances appending. A single object read and
 * then rewritten could move backwards (two instances interleaving); instead each process
 * writes its own object, and the head is the furthest of them. A process's first write
 * removes the heads it is ahead of (they are covered by its own), so the number of objects
 * stays about the number of processes appending at once.
 */
export function storeAuditHead(store: ObjectStore, describe: string, id: string = randomUUID()): AuditHead {
  const where = `${describe} (${AUDIT_HEADS_PREFIX})`;
  const own = `${AUDIT_HEADS_PREFIX}${id}.json`;
  let written = -1;
  const readOne = async (key: string): Promise<AuditLink | null> => {
    try {
      return parseLink((await store.get(key)).toString('utf8'), `${describe} (${key})`);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  };
  const heads = async (): Promise<{ key: string; link: AuditLink }[]> => {
    const out: { key: string; link: AuditLink }[] = [];
    const keys = [AUDIT_HEAD_KEY];
    for await (const o of store.list(AUDIT_HEADS_PREFIX)) keys.push(o.key);
    for (const key of keys) {
      const link = await readOne(key);
      if (link) out.push({ key, link });
    }
    return out;
  };
  return {
    where,
    async read() {
      let best: AuditLink | null = null;
      for (const h of await heads()) if (!best || h.link.seq > best.seq) best = h.link;
      return best;
    },
    async advance(link) {
      if (link.seq <= written) return;
      const first = written < 0;
      await store.put(own, Buffer.from(`${JSON.stringify(link)}\n`));
      written = link.seq;
      if (!first) return;
      for (const h of await heads()) if (h.key !== own && h.link.seq < link.seq) await store.delete(h.key);
    },
  };
}
