import type { ServerKeys } from '../auth/server-key.js';
import type { Database } from '../db/database.js';
import { findSite, getSiteState, listReplicationCredentials } from '../db/queries/replication.js';
import { PEER_CREDENTIAL_PURPOSE } from '../routes/replication/handler.js';
import type { ObjectStore } from '../store/object-store.js';
import type { CustomerId } from '../types.js';
import { PeerClient } from './client.js';
import { receivePackCopy } from './pack-copy.js';
import { peerOfState } from './pull.js';

/**
 * Replaces a damaged or missing pack object with the other site's copy, checked byte by
 * byte on receipt (nothing is replaced unless the copy is sound): a replica asks its
 * primary; a primary asks its replicas, with the credential each gave it when it joined.
 * Returns the site the copy came from, or null when there is no other site or none has a
 * sound copy.
 */
export async function repairPackFromPeer(ctx: { db: Database; store: ObjectStore; keys: ServerKeys }, customerId: CustomerId, packId: string, size: number): Promise<string | null> {
  const state = await getSiteState(ctx.db);
  if (!state) return null;
  const peers: { name: string; client: () => PeerClient }[] = [];
  if (state.role === 'replica') peers.push({ name: state.primary_name ?? 'primary', client: () => peerOfState(state, ctx.keys) });
  if (state.role === 'primary') {
    for (const c of await listReplicationCredentials(ctx.db)) {
      const site = await findSite(ctx.db, c.site_name);
      if (!c.peer_credential_sealed || !site?.url || !site.fingerprint) continue;
      const sealed = c.peer_credential_sealed;
      peers.push({ name: site.name, client: () => new PeerClient(site.url!, site.fingerprint!, ctx.keys.open(sealed, PEER_CREDENTIAL_PURPOSE).toString('utf8')) });
    }
  }
  let lastError: unknown = null;
  for (const p of peers) {
    const peer = p.client();
    try {
      const body = await peer.stream('GET', `/replication/customers/${customerId}/packs/${packId}`);
      await receivePackCopy(ctx.store, customerId, packId, size, body);
      return p.name;
    } catch (err) {
      lastError = err;
    } finally {
      peer.close();
    }
  }
  if (lastError) throw lastError;
  return null;
}
