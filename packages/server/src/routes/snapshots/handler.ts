import { decodeRefs, isCoffreError, sha256Hex, type ChunkId, type SnapshotCommitRequest, type SnapshotCommitResponse, type SnapshotListResponse, type SnapshotRecord } from '@coffre/core';
import { LockName, writeTransaction } from '../../db/engine.js';
import { gcEpoch } from '../../db/queries/gc.js';
import { existingChunks } from '../../db/queries/packs.js';
import { closeUploadSession } from '../../db/queries/upload-sessions.js';
import { getSnapshot, insertSnapshot, listSnapshots, snapshotExists } from '../../db/queries/snapshots.js';
import { auditRequest } from '../../audit/record.js';
import { getRepoConfig } from '../../db/queries/repo.js';
import { apiError } from '../../errors.js';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { snapshotRefsKey } from '../../object-keys.js';
import { isoNow } from '../../types.js';
import { presentSnapshot } from './presenter.js';
import { commitSnapshotSchema, getSnapshotRefsSchema, getSnapshotSchema, listSnapshotsSchema } from './schema.js';

/** How many missing ids a MISSING_CHUNKS answer lists (the count is always complete). */
export const MAX_MISSING_LISTED = 1000;

function decodeBase64(s: string): Buffer | null {
  const buf = Buffer.from(s, 'base64');
  return buf.toString('base64') === s ? buf : null;
}

function parseRefs(refs: string): { bytes: Buffer; ids: ChunkId[] } {
  const bytes = decodeBase64(refs);
  if (!bytes) throw apiError('badRefs', { reason: 'refs is not canonical base64' });
  try {
    return { bytes, ids: decodeRefs(bytes) };
  } catch (err) {
    if (isCoffreError(err, 'FORMAT')) throw apiError('badRefs', { reason: err.message });
    throw err;
  }
}

export function registerSnapshotRoutes(app: App, deps: Deps): void {
  /**
   * POST /snapshots — commits only if every referenced chunk is stored for this customer,
   * so no dangling reference can ever be committed. The time is the server's, never the
   * client's. Refs object first, row second (a crash leaves an orphan object, not a
   * snapshot without refs); the per-id lock keeps a racing commit of the same id from
   * overwriting the winner's refs object.
   *
   * Against GC (docs/GC.md §Commit race), which deletes chunk rows while commits run: the
   * chunks are checked outside any transaction (the slow part), then the row is inserted
   * in a transaction that first compares the customer's GC epoch with the one read before
   * the check. GC bumps it in every transaction that deletes chunk rows, and re-reads the
   * snapshot rows in that same transaction; both hold the customer's lock, so
   * either GC sees this snapshot before deleting anything, or this commit sees the epoch
   * moved and checks its chunks again, under the lock, and refuses if one is gone.
   */
  app.post<{ Body: SnapshotCommitRequest }>('/snapshots', { schema: commitSnapshotSchema, config: { action: 'snapshots:write' } }, async (req, reply) => {
    const p = machineOf(req);
    const { manifest } = req.body;
    return deps.locks.run(`snapshot/${p.customerId}/${manifest.id}`, async (): Promise<SnapshotCommitResponse> => {
      if (await snapshotExists(deps.db, p.customerId, manifest.id)) throw apiError('snapshotExists', { id: manifest.id });
      // A format-2 repository takes only sealed manifests: an agent still holding the master key must be updated.
      if (manifest.v === 1 && (await getRepoConfig(deps.db, p.customerId))?.v === 2) throw apiError('manifestFormatOld');
      const refs = parseRefs(req.body.refs);
      if (sha256Hex(refs.bytes) !== manifest.refsSha256) throw apiError('refsIntegrity', { reason: 'SHA-256 of refs differs from manifest.refsSha256' });
      if (refs.ids.length !== manifest.refCount) throw apiError('refsIntegrity', { reason: `refs holds ${refs.ids.length} ids, manifest.refCount is ${manifest.refCount}` });
      if (manifest.parent !== null && !(await snapshotExists(deps.db, p.customerId, manifest.parent))) {
        throw apiError('unknownParent', { parent: manifest.parent });
      }
      const missingOf = (present: Set<string>): string[] => refs.ids.filter((id) => !present.has(id));
      const refuse = (missing: readonly string[]) => apiError('missingChunks', { missing: missing.slice(0, MAX_MISSING_LISTED), missingCount: missing.length });
      const epoch = await gcEpoch(deps.db, p.customerId);
      const missing = missingOf(await existingChunks(deps.db, p.customerId, refs.ids));
      if (missing.length > 0) throw refuse(missing);

      const refsKey = snapshotRefsKey(p.customerId, manifest.id);
      await deps.store.put(refsKey, refs.bytes);
      const time = isoNow(deps.clock);
      // The customer's index: ordered with GC's deleting transactions (docs/GC.md §Commit race).
      const outcome = await writeTransaction(deps.db, [LockName.customer(p.customerId)], async (trx): Promise<{ missing: string[] } | { exists: true } | { ok: true }> => {
        if ((await gcEpoch(trx, p.customerId)) !== epoch) {
          // GC deleted chunk rows since the check: check again, under the customer's lock.
          const gone = missingOf(await existingChunks(trx, p.customerId, refs.ids));
          if (gone.length > 0) return { missing: gone };
        }
        if (!(await insertSnapshot(trx, { customerId: p.customerId, machineId: p.machineId, manifest, time }))) return { exists: true };
        // The machine's backup is over: what it touched is now referenced by this snapshot.
        await closeUploadSession(trx, p.customerId, p.machineId);
        return { ok: true };
      });
      if ('missing' in outcome) {
        await deps.store.delete(refsKey).catch(() => undefined); // no row: the refs object is not needed
        throw refuse(outcome.missing);
      }
      if ('exists' in outcome) throw apiError('snapshotExists', { id: manifest.id });
      void reply.code(201);
      return { id: manifest.id, time };
    });
  });

  app.get<{ Querystring: { machine?: string } }>('/snapshots', { schema: listSnapshotsSchema, config: { action: 'snapshots:read' } }, async (req): Promise<SnapshotListResponse> => {
    const rows = await listSnapshots(deps.db, machineOf(req).customerId, req.query.machine);
    return { snapshots: rows.map(presentSnapshot) };
  });

  app.get<{ Params: { id: string } }>('/snapshots/:id', { schema: getSnapshotSchema, config: { action: 'snapshots:read' } }, async (req): Promise<SnapshotRecord> => {
    const row = await getSnapshot(deps.db, machineOf(req).customerId, req.params.id);
    if (!row) throw apiError('snapshotNotFound');
    return presentSnapshot(row);
  });

  app.get<{ Params: { id: string } }>('/snapshots/:id/refs', { schema: getSnapshotRefsSchema, config: { action: 'snapshots:read' } }, async (req, reply) => {
    // Data access (R18): a restore, an ls of file contents or a verify starts here.
    await auditRequest(deps, req, { action: 'snapshot.read', outcome: 'success', target: `snapshot:${req.params.id}` });
    const p = machineOf(req);
    // A snapshot in the recycle bin is invisible to agents, its reference list too.
    if (!(await getSnapshot(deps.db, p.customerId, req.params.id))) throw apiError('snapshotNotFound');
    const data = await deps.store.get(snapshotRefsKey(p.customerId, req.params.id));
    return reply.type('application/octet-stream').send(data);
  });
}
