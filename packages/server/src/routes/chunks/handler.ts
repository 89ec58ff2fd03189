import type { ChunkIdsRequest, ChunksExistResponse, ChunksLocateResponse } from '@coffre/core';
import { existingChunksTouched, locateChunks } from '../../db/queries/packs.js';
import { openUploadSession } from '../../db/queries/upload-sessions.js';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { existsSchema, locateSchema } from './schema.js';

/** Batch lookups; answers are in request order, one per id (ids may repeat). */
export function registerChunkRoutes(app: App, deps: Deps): void {
  /**
   * A chunk answered "exists" is not uploaded and is referenced by a commit to come: it is
   * touched, and the machine's upload session opened first, so GC keeps it (docs/GC.md).
   */
  app.post<{ Body: ChunkIdsRequest }>('/chunks/exists', { schema: existsSchema, config: { action: 'chunks:read' } }, async (req): Promise<ChunksExistResponse> => {
    const p = machineOf(req);
    await openUploadSession(deps.db, p.customerId, p.machineId, deps.clock());
    const found = await existingChunksTouched(deps.db, p.customerId, req.body.ids, deps.clock());
    return { exists: req.body.ids.map((id) => found.has(id)) };
  });

  app.post<{ Body: ChunkIdsRequest }>('/chunks/locate', { schema: locateSchema, config: { action: 'chunks:read' } }, async (req): Promise<ChunksLocateResponse> => {
    const found = await locateChunks(deps.db, machineOf(req).customerId, req.body.ids);
    return { locations: req.body.ids.map((id) => found.get(id) ?? null) };
  });
}
