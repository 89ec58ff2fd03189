import type { ChunkIdsRequest, ChunksExistResponse, ChunksLocateResponse } from '@coffre/core';
import { existingChunks, locateChunks } from '../../db/queries/packs.js';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { existsSchema, locateSchema } from './schema.js';

/** Batch lookups; answers are in request order, one per id (ids may repeat). */
export function registerChunkRoutes(app: App, deps: Deps): void {
  app.post<{ Body: ChunkIdsRequest }>('/chunks/exists', { schema: existsSchema, config: { action: 'chunks:read' } }, async (req): Promise<ChunksExistResponse> => {
    const found = await existingChunks(deps.db, machineOf(req).customerId, req.body.ids);
    return { exists: req.body.ids.map((id) => found.has(id)) };
  });

  app.post<{ Body: ChunkIdsRequest }>('/chunks/locate', { schema: locateSchema, config: { action: 'chunks:read' } }, async (req): Promise<ChunksLocateResponse> => {
    const found = await locateChunks(deps.db, machineOf(req).customerId, req.body.ids);
    return { locations: req.body.ids.map((id) => found.get(id) ?? null) };
  });
}
