import { isCoffreError, MAX_PACK_SIZE, verifyPack, type PackEntry, type PackUploadResponse } from '@coffre/core';
import { findPack, indexPack } from '../../db/queries/packs.js';
import { apiError } from '../../errors.js';
import { principalOf, type App, type Deps } from '../../http/context.js';
import { packKey } from '../../object-keys.js';
import { isoNow } from '../../types.js';
import { parseRange } from './range.js';
import { getPackSchema, putPackSchema } from './schema.js';

function verify(data: Buffer, id: string): PackEntry[] {
  try {
    return verifyPack(data, id);
  } catch (err) {
    if (isCoffreError(err, 'INTEGRITY')) throw apiError('packIntegrity', { reason: err.message });
    if (isCoffreError(err, 'FORMAT')) throw apiError('badPackFormat', { reason: err.message });
    if (isCoffreError(err, 'TOO_LARGE')) throw apiError('tooLarge');
    throw err;
  }
}

/** Registered in its own plugin scope so only this route accepts 256 MiB octet-stream bodies. */
export async function registerPackRoutes(app: App, deps: Deps): Promise<void> {
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_PACK_SIZE }, (_req, body, done) => done(null, body));

  /**
   * PUT /packs/:id — crash-safe order: verify fully, make the object durable, and only
   * then index it in one transaction. A crash in between leaves an unindexed object
   * (garbage for GC, rewritten by a retry), never an index entry without its bytes.
   */
  app.put<{ Params: { id: string }; Body: Buffer }>(
    '/packs/:id',
    { schema: putPackSchema, bodyLimit: MAX_PACK_SIZE, config: { action: 'packs:write' } },
    async (req): Promise<PackUploadResponse> => {
      const p = principalOf(req);
      const { id } = req.params;
      if (!Buffer.isBuffer(req.body)) throw apiError('unsupportedMediaType', { expected: 'application/octet-stream' });
      const entries = verify(req.body, id);
      if (await findPack(deps.db, p.customerId, id)) return { id, chunks: entries.length, newChunks: 0 };
      await deps.store.put(packKey(p.customerId, id), req.body);
      const newChunks = await indexPack(deps.db, { customerId: p.customerId, packId: id, size: req.body.length, entries, now: isoNow(deps.clock) });
      return { id, chunks: entries.length, newChunks };
    },
  );

  /** GET /packs/:id — whole pack (200) or one byte range (206); only the caller's customer's packs. */
  app.get<{ Params: { id: string } }>('/packs/:id', { schema: getPackSchema, config: { action: 'packs:read' } }, async (req, reply) => {
    const p = principalOf(req);
    const pack = await findPack(deps.db, p.customerId, req.params.id);
    if (!pack) throw apiError('packNotFound');
    const range = parseRange(req.headers.range, pack.size);
    void reply.header('accept-ranges', 'bytes').type('application/octet-stream');
    if (range === undefined) {
      void reply.header('content-range', `bytes */${pack.size}`);
      throw apiError('badRange', { size: pack.size });
    }
    const key = packKey(p.customerId, req.params.id);
    if (range === null) return reply.send(await deps.store.get(key));
    const data = await deps.store.get(key, range);
    return reply
      .code(206)
      .header('content-range', `bytes ${range.offset}-${range.offset + range.length - 1}/${pack.size}`)
      .send(data);
  });
}
