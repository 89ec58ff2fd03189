import { PACK_HEADER_FIXED, packEntryCount, packHeaderSize } from '@coffre/core';
import type { ObjectStore } from './object-store.js';

/** A stored pack's whole header (its fixed part says how long it is), read with two ranged gets, never the whole pack. */
export async function readStoredPackHeader(store: ObjectStore, key: string): Promise<Buffer> {
  const fixed = await store.get(key, { offset: 0, length: PACK_HEADER_FIXED });
  return store.get(key, { offset: 0, length: packHeaderSize(packEntryCount(fixed)) });
}
