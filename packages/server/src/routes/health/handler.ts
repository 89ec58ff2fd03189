import { COFFRE_VERSION, type HealthResponse } from '@coffre/core';
import type { App } from '../../http/context.js';
import { healthSchema } from './schema.js';

export function registerHealthRoutes(app: App): void {
  app.get('/health', { schema: healthSchema, config: { auth: 'none' } }, async (): Promise<HealthResponse> => ({ ok: true, version: COFFRE_VERSION }));
}
