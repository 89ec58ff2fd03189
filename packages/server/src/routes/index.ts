import type { App, Deps } from '../http/context.js';
import { registerChunkRoutes } from './chunks/handler.js';
import { registerEnrollRoutes } from './enroll/handler.js';
import { registerHealthRoutes } from './health/handler.js';
import { registerMachineRoutes } from './machines/handler.js';
import { registerPackRoutes } from './packs/handler.js';
import { registerRepoRoutes } from './repo/handler.js';
import { registerSnapshotRoutes } from './snapshots/handler.js';

/** Every API route, registered under API_PREFIX by the server. */
export async function registerRoutes(app: App, deps: Deps): Promise<void> {
  registerHealthRoutes(app);
  registerEnrollRoutes(app, deps);
  registerRepoRoutes(app, deps);
  registerChunkRoutes(app, deps);
  await app.register(async (scope) => registerPackRoutes(scope, deps));
  registerSnapshotRoutes(app, deps);
  registerMachineRoutes(app, deps);
}
