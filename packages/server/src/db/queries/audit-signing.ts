import type { SignedCheckpoint } from '../../audit/checkpoint.js';
import type { Database } from '../database.js';
import type { AuditCheckpointsTable } from '../schema.js';

/**
 * The audit chain's signatures (audit/checkpoint.ts, ADR 0011): the installation's recorded
 * audit public key (`audit_signing_key`, one row) and the signed checkpoints and purge marker
 * (`audit_checkpoints`). Platform-wide, like the chain itself.
 */

export interface RecordedAuditKey {
  readonly keyId: string;
  readonly publicKey: string;
  readonly createdAt: string;
}

export async function recordedAuditKey(db: Database): Promise<RecordedAuditKey | null> {
  const r = await db.selectFrom('audit_signing_key').selectAll().where('id', '=', 1).executeTakeFirst();
  return r ? { keyId: r.key_id, publicKey: r.public_key, createdAt: r.created_at } : null;
}

/** Records the installation's key unless one already is (two instances starting at once: the first wins); returns the recorded one. */
export async function recordAuditKey(db: Database, k: RecordedAuditKey): Promise<RecordedAuditKey> {
  await db
    .insertInto('audit_signing_key')
    .values({ id: 1, key_id: k.keyId, public_key: k.publicKey, created_at: k.createdAt })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  return (await recordedAuditKey(db))!;
}

function toCheckpoint(r: AuditCheckpointsTable): SignedCheckpoint {
  return {
    kind: r.kind,
    seq: Number(r.seq),
    hash: r.hash,
    time: r.time,
    installation: r.installation_id,
    purgeBefore: r.purge_before,
    retentionDays: r.retention_days === null ? null : Number(r.retention_days),
    keyId: r.key_id,
    signature: r.signature,
  };
}

export async function insertCheckpoint(trx: Database, c: SignedCheckpoint): Promise<void> {
  await trx
    .insertInto('audit_checkpoints')
    .values({
      kind: c.kind,
      seq: c.seq,
      hash: c.hash,
      time: c.time,
      installation_id: c.installation,
      purge_before: c.purgeBefore,
      retention_days: c.retentionDays,
      key_id: c.keyId,
      signature: c.signature,
    })
    .onConflict((oc) => oc.columns(['kind', 'seq']).doNothing())
    .execute();
}

/** The newest checkpoint (kind 'checkpoint'), or null. */
export async function lastCheckpoint(db: Database): Promise<SignedCheckpoint | null> {
  const r = await db.selectFrom('audit_checkpoints').selectAll().where('kind', '=', 'checkpoint').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return r ? toCheckpoint(r) : null;
}

/** Checkpoints after `afterSeq`, in chain order, at most `limit` (up to `toSeq` when given). */
export async function checkpointsAfter(db: Database, afterSeq: number, limit: number, toSeq?: number): Promise<SignedCheckpoint[]> {
  let q = db.selectFrom('audit_checkpoints').selectAll().where('kind', '=', 'checkpoint').where('seq', '>', afterSeq);
  if (toSeq !== undefined) q = q.where('seq', '<=', toSeq);
  return (await q.orderBy('seq').limit(limit).execute()).map(toCheckpoint);
}

/** The signed purge marker of the retention anchor, or null. */
export async function purgeMarker(db: Database): Promise<SignedCheckpoint | null> {
  const r = await db.selectFrom('audit_checkpoints').selectAll().where('kind', '=', 'purge').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return r ? toCheckpoint(r) : null;
}

/** After a purge up to `seq`: the checkpoints it covered go, and the purge marker replaces the previous one (inside the purge's transaction). */
export async function replacePurgeMarker(trx: Database, marker: SignedCheckpoint): Promise<void> {
  await trx.deleteFrom('audit_checkpoints').where('seq', '<=', marker.seq).where('kind', '=', 'checkpoint').execute();
  await trx.deleteFrom('audit_checkpoints').where('kind', '=', 'purge').execute();
  await insertCheckpoint(trx, marker);
}
