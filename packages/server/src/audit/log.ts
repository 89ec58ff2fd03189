import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { AuditLogTable } from '../db/schema.js';
import { writeFileAtomic } from '../fsutil.js';
import type { Clock } from '../types.js';
import { chainNext, GENESIS_HASH, verifyChainAsync, type AuditEntry, type AuditRecord, type ChainVerdict } from './chain.js';

/** What callers give; the time is the server's. */
export type AuditInput = Omit<AuditRecord, 'time'>;

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

type Link = { seq: number; hash: string };

function toEntry(r: AuditLogTable): AuditEntry {
  return {
    seq: Number(r.seq),
    time: r.time,
    actorType: r.actor_type as AuditEntry['actorType'],
    actorId: r.actor_id,
    actorLabel: r.actor_label,
    orgId: r.org_id,
    action: r.action,
    target: r.target,
    ip: r.ip,
    userAgent: r.user_agent,
    requestId: r.request_id,
    outcome: r.outcome as AuditEntry['outcome'],
    details: r.details_json === null ? null : (JSON.parse(r.details_json) as Record<string, unknown>),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/**
 * The audit trail (R18): an append-only, hash-chained table. Appends from the server and
 * from CLI processes serialise on SQLite's write lock (BEGIN IMMEDIATE), so the chain never
 * forks. After each append the head (seq, hash) is also written to DIR/audit-head.json:
 * deleting the newest rows from the database is then detected too. Retention purges the
 * oldest entries and keeps the last purged link as the chain's anchor.
 */
export class AuditLog {
  private headWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly headFile: string,
    private readonly clock: Clock,
  ) {}

  async append(input: AuditInput): Promise<AuditEntry> {
    const rec: AuditRecord = { ...input, time: this.clock().toISOString() };
    const entry = await this.db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const last = await conn.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
        const anchor = last ? undefined : await conn.selectFrom('audit_anchor').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
        const e = chainNext(
          last ? { seq: Number(last.seq), hash: last.hash } : null,
          rec,
          anchor ? { seq: Number(anchor.seq), hash: anchor.hash } : undefined,
        );
        await conn
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
        await sql`commit`.execute(conn);
        return e;
      } catch (err) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw err;
      }
    });
    this.headWrite = this.headWrite.then(() => this.advanceHead({ seq: entry.seq, hash: entry.hash })).catch(() => undefined);
    await this.headWrite;
    return entry;
  }

  /** Moves the head file forward only (another process may have written a later one). */
  private async advanceHead(link: Link): Promise<void> {
    const current = await this.readHead();
    if (current && current.seq >= link.seq) return;
    await writeFileAtomic(this.headFile, `${JSON.stringify(link)}\n`, 0o600);
  }

  async readHead(): Promise<Link | null> {
    let text: string;
    try {
      text = await readFile(this.headFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const v = JSON.parse(text) as Partial<Link>;
    if (typeof v.seq !== 'number' || typeof v.hash !== 'string') throw new Error(`${this.headFile} is damaged`);
    return { seq: v.seq, hash: v.hash };
  }

  private async start(): Promise<Link> {
    const anchor = await this.db.selectFrom('audit_anchor').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
    return anchor ? { seq: Number(anchor.seq), hash: anchor.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  /** Every entry in chain order, read in pages (memory stays bounded whatever the trail's length). */
  async *all(pageSize = 1000): AsyncGenerator<AuditEntry> {
    let after = -1;
    for (;;) {
      const rows = await this.db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq').limit(pageSize).execute();
      for (const r of rows) yield toEntry(r);
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  async verify(): Promise<ChainVerdict> {
    return verifyChainAsync(this.all(), await this.start(), await this.readHead());
  }

  /** Newest first, `limit` entries before `beforeSeq` (cursor pagination). */
  async page(filter: AuditFilter, limit: number, beforeSeq?: number): Promise<AuditEntry[]> {
    let q = this.filtered(filter);
    if (beforeSeq !== undefined) q = q.where('seq', '<', beforeSeq);
    return (await q.orderBy('seq', 'desc').limit(limit).execute()).map(toEntry);
  }

  /** Oldest first, streamed in pages, for exports. */
  async *matching(filter: AuditFilter, pageSize = 1000): AsyncGenerator<AuditEntry> {
    let after = -1;
    for (;;) {
      const rows = await this.filtered(filter).where('seq', '>', after).orderBy('seq').limit(pageSize).execute();
      for (const r of rows) yield toEntry(r);
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  private filtered(f: AuditFilter) {
    let q = this.db.selectFrom('audit_log').selectAll();
    if (f.orgIds !== null) {
      if (f.orgIds.length === 0) q = q.where(sql<boolean>`1 = 0`);
      else q = q.where('org_id', 'in', [...f.orgIds]);
    }
    if (f.actor) {
      const pattern = `%${f.actor.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where((eb) => eb.or([eb('actor_label', 'like', sql<string>`${pattern} escape '\\'`), eb('actor_id', '=', f.actor!)]));
    }
    if (f.action) q = f.action.endsWith('.') ? q.where('action', 'like', `${f.action.replace(/[\\%_]/g, '')}%`) : q.where('action', '=', f.action);
    if (f.outcome) q = q.where('outcome', '=', f.outcome);
    if (f.since) q = q.where('time', '>=', f.since);
    if (f.until) q = q.where('time', '<', f.until);
    return q;
  }

  /** Retention: removes entries older than `before`, keeping the last removed link as the anchor. Returns how many went. */
  async purgeBefore(before: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const last = await trx.selectFrom('audit_log').select(['seq', 'hash']).where('time', '<', before).orderBy('seq', 'desc').limit(1).executeTakeFirst();
      if (!last) return 0;
      // Never purge the newest entry: the chain needs a row to continue from in the database.
      const newest = await trx.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      if (Number(newest.seq) === Number(last.seq)) return 0;
      const res = await trx.deleteFrom('audit_log').where('seq', '<=', last.seq).executeTakeFirst();
      await trx
        .insertInto('audit_anchor')
        .values({ id: 1, seq: last.seq, hash: last.hash, purged_at: this.clock().toISOString() })
        .onConflict((oc) => oc.column('id').doUpdateSet({ seq: last.seq, hash: last.hash, purged_at: this.clock().toISOString() }))
        .execute();
      return Number(res.numDeletedRows);
    });
  }
}
