import { sql } from 'kysely';
import type { AuditEntry } from '../../audit/chain.js';
import type { Database } from '../database.js';
import type { AuditLogTable } from '../schema.js';

/**
 * The audit trail's table (`audit_log`) and its anchor (`audit_anchor`): platform-wide by
 * nature, one chain for the whole installation; tenants see it through `AuditFilter.orgIds`.
 * Appending and purging run in a transaction holding `LockName.AUDIT` (audit/log.ts).
 */

export interface AuditFilter {
  /** Only entries about these organisations (a tenant's subtree); null = all. */
  readonly orgIds: readonly string[] | null;
  /** Substring of the actor's label (email, machine name) or id. */
  readonly actor?: string;
  /** Action, or action prefix ending with "." (e.g. "auth."). */
  readonly action?: string;
  readonly outcome?: string;
  /** ISO times, inclusive lower bound, exclusive upper bound. */
  readonly since?: string;
  readonly until?: string;
}

export interface AuditLink {
  readonly seq: number;
  readonly hash: string;
}

/** The newest entry's link, or null when the table is empty. */
export async function lastAuditLink(db: Database): Promise<AuditLink | null> {
  const last = await db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return last ? { seq: Number(last.seq), hash: last.hash } : null;
}

/** The hash of the entry at `seq`, or null when there is none. */
export async function auditHashAt(db: Database, seq: number): Promise<string | null> {
  const r = await db.selectFrom('audit_log').select('hash').where('seq', '=', seq).executeTakeFirst();
  return r ? r.hash : null;
}

/** The last purged link (the chain continues from it), or null when nothing was ever purged. */
export async function auditAnchor(db: Database): Promise<AuditLink | null> {
  const anchor = await db.selectFrom('audit_anchor').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  return anchor ? { seq: Number(anchor.seq), hash: anchor.hash } : null;
}

export async function insertAuditEntry(trx: Database, e: AuditEntry): Promise<void> {
  await trx
    .insertInto('audit_log')
    .values({
      seq: e.seq,
      time: e.time,
      actor_type: e.actorType,
      actor_id: e.actorId,
      actor_label: e.actorLabel,
      org_id: e.orgId,
      action: e.action,
      target: e.target,
      ip: e.ip,
      user_agent: e.userAgent,
      request_id: e.requestId,
      outcome: e.outcome,
      details_json: e.details === null ? null : JSON.stringify(e.details),
      prev_hash: e.prevHash,
      hash: e.hash,
    })
    .execute();
}

/** Every entry after `afterSeq`, in chain order, at most `limit`. */
export async function auditRowsAfter(db: Database, afterSeq: number, limit: number): Promise<AuditLogTable[]> {
  return db.selectFrom('audit_log').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
}

/** Entries matching the filter before `beforeSeq` (if given), newest first, at most `limit`. */
export async function auditRowsPage(db: Database, filter: AuditFilter, limit: number, beforeSeq?: number): Promise<AuditLogTable[]> {
  let q = filtered(db, filter);
  if (beforeSeq !== undefined) q = q.where('seq', '<', beforeSeq);
  return q.orderBy('seq', 'desc').limit(limit).execute();
}

/** Entries matching the filter after `afterSeq`, oldest first, at most `limit`. */
export async function auditRowsMatchingAfter(db: Database, filter: AuditFilter, afterSeq: number, limit: number): Promise<AuditLogTable[]> {
  return filtered(db, filter).where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
}

const likeEscaped = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function filtered(db: Database, f: AuditFilter) {
  let q = db.selectFrom('audit_log').selectAll();
  if (f.orgIds !== null) {
    if (f.orgIds.length === 0) q = q.where(sql<boolean>`1 = 0`);
    else q = q.where('org_id', 'in', [...f.orgIds]);
  }
  if (f.actor) {
    // Case-insensitive on every engine (SQLite's LIKE folds ASCII case, PostgreSQL's does not).
    const pattern = `%${likeEscaped(f.actor)}%`;
    q = q.where((eb) => eb.or([eb(eb.fn('lower', ['actor_label']), 'like', sql<string>`lower(${pattern}) escape '\\'`), eb('actor_id', '=', f.actor!)]));
  }
  if (f.action) {
    q = f.action.endsWith('.')
      ? q.where(sql<string>`lower(action)`, 'like', sql<string>`lower(${`${f.action.replace(/[\\%_]/g, '')}%`})`)
      : q.where('action', '=', f.action);
  }
  if (f.outcome) q = q.where('outcome', '=', f.outcome);
  if (f.since) q = q.where('time', '>=', f.since);
  if (f.until) q = q.where('time', '<', f.until);
  return q;
}

/**
 * Retention: removes entries older than `before`, keeping the last removed link as the
 * anchor (inside the transaction holding `LockName.AUDIT`). Returns how many went and the
 * new anchor (null when nothing went).
 */
export async function purgeAuditBefore(trx: Database, before: string, now: string): Promise<{ purged: number; anchor: AuditLink | null }> {
  const last = await trx.selectFrom('audit_log').select(['seq', 'hash']).where('time', '<', before).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  if (!last) return { purged: 0, anchor: null };
  // Never purge the newest entry: the chain needs a row to continue from in the database.
  const newest = await trx.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
  if (Number(newest.seq) === Number(last.seq)) return { purged: 0, anchor: null };
  const res = await trx.deleteFrom('audit_log').where('seq', '<=', last.seq).executeTakeFirst();
  await trx
    .insertInto('audit_anchor')
    .values({ id: 1, seq: last.seq, hash: last.hash, purged_at: now })
    .onConflict((oc) => oc.column('id').doUpdateSet({ seq: last.seq, hash: last.hash, purged_at: now }))
    .execute();
  return { purged: Number(res.numDeletedRows), anchor: { seq: Number(last.seq), hash: last.hash } };
}
