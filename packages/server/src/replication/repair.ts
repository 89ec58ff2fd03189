import type { ServerKeys } from '../auth/server-key.js';
import { getSiteState } from '../db/queries/replication.js';
import type { ObjectStore } from '../store/object-store.js';
import type { CustomerId } from '../types.js';
import { receivePackCopy } from './pack-copy.js';
import { peerOfState } from './pull.js';

/**
 * On a replica: replaces a damaged or missing pack object with the primary's copy, checked
 * byte by byte on receipt (nothing replaced unless the copy is sound). False when this site
 * is not a replica (the primary repairs from its replica by hand, docs/CONTINUITY.md).
 */
export async function repairPackFromPeer(ctx: { db: Parameters<typeof getSiteState>[0]; store: ObjectStore; keys: ServerKeys }, customerId: CustomerId, packId: string, size: number): Promise<boolean> {
  const state = await getSiteState(ctx.db);
  if (state?.role !== 'replica') return false;
  const peer = peerOfState(state, ctx.keys);
  try {
    const body = await peer.stream('GET', `/replication/customers/${customerId}/packs/${packId}`);
    await receivePackCopy(ctx.store, customerId, packId, size, body);
    return true;
  } finally {
    peer.close();
  }
}
