import type { Readable } from 'node:stream';
import { parsePackHeader, type PackEntry } from '@coffre/core';
import { readStoredPackHeader } from '../store/pack-header.js';
import type { Database } from '../db/database.js';
import { indexPack } from '../db/queries/packs.js';
import { packKey } from '../object-keys.js';
import { PackStreamVerifier } from '../routes/packs/stream-verifier.js';
import type { ObjectStore } from '../store/object-store.js';
import type { CustomerId } from '../types.js';

/**
 * Receives one pack from another site into this site's store: every byte checked as it
 * streams (the id is SHA-256 of the header, which holds each blob's SHA-256), written to a
 * store upload published only when all of it matched, and only then indexed. Nothing is
 * decrypted. A failure leaves nothing behind (the upload is aborted). Returns the entries.
 */
export async function receivePackCopy(store: ObjectStore, customerId: CustomerId, id: string, size: number, body: Readable): Promise<PackEntry[]> {
  const verifier = new PackStreamVerifier(id, size);
  const upload = await store.createUpload(packKey(customerId, id), { size });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      for (const part of verifier.push(chunk)) await upload.write(part);
    }
    const entries = verifier.end();
    await upload.commit();
    return entries;
  } catch (err) {
    body.destroy();
    await upload.abort();
    throw err;
  }
}

/** Reads a stored pack's header and indexes it again (chunks indexed elsewhere are left as they are). */
export async function reindexStoredPack(db: Database, store: ObjectStore, customerId: CustomerId, id: string, size: number, now: string): Promise<void> {
  const head = await readStoredPackHeader(store, packKey(customerId, id));
  await indexPack(db, { customerId, packId: id, size, entries: parsePackHeader(head, size), now });
}

/**
 * A pack object this site already holds but has not indexed (a pass killed between the two,
 * or an old primary re-joining): read and checked whole like a received one, then indexed.
 * Null when it is missing, of another size, or damaged (then it is fetched again).
 */
export async function adoptStoredPack(db: Database, store: ObjectStore, customerId: CustomerId, id: string, size: number, now: string): Promise<PackEntry[] | null> {
  const st = await store.stat(packKey(customerId, id));
  if (!st || st.size !== size) return null;
  const verifier = new PackStreamVerifier(id, size);
  try {
    const body = await store.getStream(packKey(customerId, id));
    for await (const chunk of body as AsyncIterable<Buffer>) verifier.push(chunk);
    const entries = verifier.end();
    await indexPack(db, { customerId, packId: id, size, entries, now });
    return entries;
  } catch {
    return null;
  }
}
