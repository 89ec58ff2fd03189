import { getSiteState } from '../../db/queries/replication.js';
import type { App, Deps } from '../../http/context.js';
import type { SiteInfo } from '../../replication/wire.js';

/** GET /site adds, for auditors and the replica to pin, the audit public key this site signs its trail with (ADR 0011). */
export interface SiteInfoWithAuditKey extends SiteInfo {
  readonly auditKey: { readonly keyId: string; readonly publicKey: string } | null;
}

/**
 * GET /site — public: this site's name, role and fencing epoch. Agents ask it when their
 * primary cannot be reached (is another site now the primary?), and a primary coming back
 * asks its replica (was it promoted meanwhile?). Reveals nothing about customers. It also
 * publishes the audit public key (the key the running server signs with, not the database's
 * record of it).
 */
export function registerSiteRoutes(app: App, deps: Deps): void {
  app.get('/site', { schema: { summary: "This site's name, role and fencing epoch (public)", tags: ['sites'] }, config: { auth: 'none' } }, async (): Promise<SiteInfoWithAuditKey> => {
    const s = await getSiteState(deps.db);
    const k = deps.audit.signer;
    return { name: s?.self_name ?? 'primary', role: s?.role ?? 'primary', epoch: s?.epoch ?? 1, auditKey: k ? { keyId: k.keyId, publicKey: k.pem } : null };
  });
}
