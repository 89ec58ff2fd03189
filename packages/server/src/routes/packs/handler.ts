import { Readable } from 'node:stream';
import { isCoffreError, MAX_PACK_SIZE, type PackEntry, type PackUploadResponse } from '@coffre/core';
import { existingChunksTouched, findPack, indexPack, isPackTombstoned, PackTombstonedError } from '../../db/queries/packs.js';
import { findTombstone } from '../../db/queries/tombstones.js';
import { openUploadSession } from '../../db/queries/upload-sessions.js';
import { apiError } from '../../errors.js';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { packKey } from '../../object-keys.js';
import { isNotFound, type ObjectUpload } from '../../store/object-store.js';
import { isoNow, type CustomerId } from '../../types.js';
import { parseRange } from './range.js';
import { getPackSchema, putPackSchema } from './schema.js';
import { PackStreamVerifier } from './stream-verifier.js';

/** Pack format errors (core's CoffreError) as API errors; anything else is left as is. */
function toPackError(err: unknown): unknown {
  if (isCoffreError(err, 'INTEGRITY')) return apiError('packIntegrity', { reason: err.message });
  if (isCoffreError(err, 'FORMAT')) return apiError('badPackFormat', { reason: err.message });
  if (isCoffreError(err, 'TOO_LARGE')) return apiError('tooLarge');
  if (err instanceof PackTombstonedError) return packCollected(err.packId);
  return err;
}

/** GC removed this pack id from the index (docs/GC.md): it is never indexed again. */
function packCollected(id: string): unknown {
  return apiError('packCollected', { id });
}

/**
 * Where the verified bytes of one upload go. Decided once the header is verified: if the
 * pack is already indexed the body is still verified but not stored (idempotent retry);
 * otherwise it streams into a store upload, published only by `finish`.
 */
class PackSink {
  private upload: ObjectUpload | null = null;
  private known: boolean | null = null;

  constructor(
    private readonly deps: Deps,
    private readonly customerId: CustomerId,
    private readonly id: string,
  ) {}

  async write(parts: readonly Buffer[], size: number): Promise<void> {
    if (this.known === null) {
      // Indexed already, or removed by GC (never indexed again, see finish): verify the body, store nothing.
      this.known = (await findPack(this.deps.db, this.customerId, this.id)) !== null || (await isPackTombstoned(this.deps.db, this.customerId, this.id));
      if (!this.known) this.upload = await this.deps.store.createUpload(packKey(this.customerId, this.id), { size });
    }
    if (this.upload) for (const part of parts) await this.upload.write(part);
  }

  /**
   * Crash-safe order: the object is made durable (fsync, atomic rename) before any row goes
   * in, in one transaction. A pack already indexed is indexed again (idempotent): that
   * touches the chunks the agent will reference (GC) and restores rows GC deleted from it.
   */
  async finish(entries: readonly PackEntry[], size: number): Promise<PackUploadResponse> {
    if (this.upload) await this.upload.commit();
    try {
      const newChunks = await indexPack(this.deps.db, { customerId: this.customerId, packId: this.id, size, entries, now: isoNow(this.deps.clock) });
      return { id: this.id, chunks: entries.length, newChunks };
    } catch (err) {
      // GC removed this pack id meanwhile (e.g. repacked it while a retry was on its way):
      // fine if every chunk is still stored elsewhere — answered, and touched, as by /chunks/exists.
      if (!(err instanceof PackTombstonedError)) throw err;
      const ids = entries.map((e) => e.id);
      const present = await existingChunksTouched(this.deps.db, this.customerId, ids, this.deps.clock());
      if (ids.some((id) => !present.has(id))) throw err;
      return { id: this.id, chunks: entries.length, newChunks: 0 };
    }
  }

  /** Drops the upload (and its temp data); harmless once committed. */
  async abort(): Promise<void> {
    const upload = this.upload;
    this.upload = null;
    await upload?.abort();
  }
}

/**
 * Streams one pack body: verified as it arrives, written to a store upload, published and
 * indexed only when every blob and the exact length check out. Memory per upload is the
 * header plus the store's bounded write queue. After a failure the rest of the body is
 * read and discarded (at most MAX_PACK_SIZE more bytes), so the answer reaches the client
 * and the connection stays usable.
 */
async function receivePack(deps: Deps, customerId: CustomerId, id: string, body: Readable, declaredLength: number | undefined): Promise<PackUploadResponse> {
  const verifier = new PackStreamVerifier(id, declaredLength);
  const sink = new PackSink(deps, customerId, id);
  let failure: { readonly err: unknown } | null = null;
  let discarded = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (failure === null) {
        try {
          const parts = verifier.push(chunk);
          if (parts.length > 0) await sink.write(parts, verifier.size);
        } catch (err) {
          failure = { err };
          await sink.abort();
        }
      } else if ((discarded += chunk.length) > MAX_PACK_SIZE) {
        break; // a client that keeps sending after an error loses its connection
      }
    }
  } catch {
    // The body stream itself failed: the client aborted or the request timed out.
    await sink.abort();
    if (failure) throw toPackError(failure.err);
    throw apiError('badRequest', { reason: 'the request body was cut off' });
  }
  if (failure) throw toPackError(failure.err);
  try {
    return await sink.finish(verifier.end(), verifier.size);
  } catch (err) {
    await sink.abort();
    throw toPackError(err);
  }
}

/** Registered in its own plugin scope so only this route takes octet-stream bodies, as a stream. */
export async function registerPackRoutes(app: App, deps: Deps): Promise<void> {
  // No buffering: the handler reads the request stream itself. Only a Content-Length over
  // the limit is refused here, before any byte is read (as Fastify's own body limit does).
  app.addContentTypeParser('application/octet-stream', (req, payload, done) => {
    if (Number(req.headers['content-length'] ?? 0) > MAX_PACK_SIZE) done(apiError('tooLarge'), undefined);
    else done(null, payload);
  });

  /**
   * PUT /packs/:id — streamed: verify while receiving into a temp object, make it durable
   * and publish it atomically, and only then index it in one transaction. A crash in
   * between leaves an unindexed object (garbage for GC, rewritten by a retry), never an
   * index entry without its bytes; a failed upload leaves nothing.
   */
  app.put<{ Params: { id: string }; Body: unknown }>(
    '/packs/:id',
    { schema: putPackSchema, config: { action: 'packs:write' } },
    async (req): Promise<PackUploadResponse> => {
      const p = machineOf(req);
      if (!(req.body instanceof Readable)) throw apiError('unsupportedMediaType', { expected: 'application/octet-stream' });
      // Before any chunk is touched: GC keeps what this backup touches until it commits.
      await openUploadSession(deps.db, p.customerId, p.machineId, deps.clock());
      const length = req.headers['content-length'];
      return receivePack(deps, p.customerId, req.params.id, req.body, length === undefined ? undefined : Number(length));
    },
  );

  /**
   * GET /packs/:id — whole pack (200) or one byte range (206); only the caller's customer's
   * packs. A pack GC has just repacked is still served until its object is deleted (after
   * a delay, docs/GC.md), so restores that located chunks before the move still work.
   * Streamed from the store, never buffered: the store checks the object and the range
   * before the first byte (so 404/416 can still be answered), and exactly Content-Length
   * bytes follow, or the connection is cut.
   */
  app.get<{ Params: { id: string } }>('/packs/:id', { schema: getPackSchema, config: { action: 'packs:read' } }, async (req, reply) => {
    const p = machineOf(req);
    let pack: { size: number } | null = await findPack(deps.db, p.customerId, req.params.id);
    if (!pack) {
      const t = await findTombstone(deps.db, p.customerId, req.params.id);
      if (t && t.objectDeletedAt === null) pack = { size: t.size };
    }
    if (!pack) throw apiError('packNotFound');
    const range = parseRange(req.headers.range, pack.size);
    void reply.header('accept-ranges', 'bytes').type('application/octet-stream');
    if (range === undefined) {
      void reply.header('content-range', `bytes */${pack.size}`);
      throw apiError('badRange', { size: pack.size });
    }
    const key = packKey(p.customerId, req.params.id);
    // The whole pack is read as the range of its indexed size, so the body always matches
    // the Content-Length sent (an object shorter than its index entry fails before any byte).
    const wanted = range ?? { offset: 0, length: pack.size };
    let body: Readable;
    try {
      body = await deps.store.getStream(key, wanted);
    } catch (err) {
      if (isNotFound(err)) throw apiError('packNotFound'); // deleted by GC meanwhile
      throw err;
    }
    void reply.header('content-length', String(wanted.length));
    if (range === null) return reply.send(body);
    return reply.code(206).header('content-range', `bytes ${range.offset}-${range.offset + range.length - 1}/${pack.size}`).send(body);
  });
}
