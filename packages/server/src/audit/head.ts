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

/** The object key of the head in a shared store. */
export const AUDIT_HEAD_KEY = 'audit/head.json';

export function storeAuditHead(store: ObjectStore, describe: string): AuditHead {
  const where = `${describe} (${AUDIT_HEAD_KEY})`;
  return {
    where,
    async read() {
      try {
        return parseLink((await store.get(AUDIT_HEAD_KEY)).toString('utf8'), where);
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    async advance(link) {
      const current = await this.read();
      if (current && current.seq >= link.seq) return;
      await store.put(AUDIT_HEAD_KEY, Buffer.from(`${JSON.stringify(link)}\n`));
    },
  };
}
