import { getSiteState } from '../../db/queries/replication.js';
import type { App, Deps } from '../../http/context.js';
import type { SiteInfo } from '../../replication/wire.js';

/**
 * GET /site — public: this site's name, role and fencing epoch. Agents ask it when their
 * primary cannot be reached (is another site now the primary?), and a primary coming back
 * asks its replica (was it promoted meanwhile?). Reveals nothing about customers.
 */
export function registerSiteRoutes(app: App, deps: Deps): void {
  app.get('/site', { schema: { summary: "This site's name, role and fencing epoch (public)", tags: ['sites'] }, config: { auth: 'none' } }, async (): Promise<SiteInfo> => {
    const s = await getSiteState(deps.db);
    return { name: s?.self_name ?? 'primary', role: s?.role ?? 'primary', epoch: s?.epoch ?? 1 };
  });
}
