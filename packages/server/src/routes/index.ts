import type { App, Deps } from '../http/context.js';
import { registerAccessReviewRoutes } from './access-review/handler.js';
import { registerAuditRoutes } from './audit/handler.js';
import { registerAuthRoutes } from './auth/handler.js';
import { registerChunkRoutes } from './chunks/handler.js';
import { registerDashboardRoutes } from './dashboard/handler.js';
import { registerEnrollRoutes } from './enroll/handler.js';
import { registerHealthRoutes } from './health/handler.js';
import { registerMachineRoutes } from './machines/handler.js';
import { registerMeRoutes } from './me/handler.js';
import { registerOpenApiRoutes } from './openapi/handler.js';
import { registerOrgRoutes } from './orgs/handler.js';
import { registerPackRoutes } from './packs/handler.js';
import { registerRepoRoutes } from './repo/handler.js';
import { registerRunRoutes } from './runs/handler.js';
import { registerDaemonRoutes } from './daemon/handler.js';
import { registerScheduleRoutes } from './schedules/handler.js';
import { registerSnapshotRoutes } from './snapshots/handler.js';
import { registerUserRoutes } from './users/handler.js';
import { registerReplicationRoutes } from './replication/handler.js';
import { registerSiteRoutes } from './site/handler.js';

/** Every API route, registered under API_PREFIX by the server. */
export async function registerRoutes(app: App, deps: Deps): Promise<void> {
  registerHealthRoutes(app);
  registerSiteRoutes(app, deps);
  registerReplicationRoutes(app, deps);
  registerEnrollRoutes(app, deps);
  registerRepoRoutes(app, deps);
  registerChunkRoutes(app, deps);
  await app.register(async (scope) => registerPackRoutes(scope, deps));
  registerSnapshotRoutes(app, deps);
  registerMachineRoutes(app, deps);
  registerRunRoutes(app, deps);
  registerScheduleRoutes(app, deps);
  registerDaemonRoutes(app, deps);
  // People (console and API): session cookie + CSRF, role and tenant policy.
  registerAuthRoutes(app, deps);
  registerMeRoutes(app, deps);
  registerOrgRoutes(app, deps);
  registerUserRoutes(app, deps);
  registerAccessReviewRoutes(app, deps);
  registerAuditRoutes(app, deps);
  registerDashboardRoutes(app, deps);
  registerOpenApiRoutes(app);
}
