import type { Database } from '../db/database.js';
import { LockName, writeTransaction } from '../db/engine.js';
import { auditAnchor, auditRowsAfter, auditRowsMatchingAfter, auditRowsPage, insertAuditEntry, lastAuditLink, purgeAuditBefore, type AuditFilter } from '../db/queries/audit.js';
import type { AuditLogTable } from '../db/schema.js';
import type { Clock } from '../types.js';
import type { AuditHead, AuditLink } from './head.js';
import { errorFields, stderrLog, type LogSink } from '../log.js';
import { chainNext, GENESIS_HASH, verifyChainAsync, type AuditEntry, type AuditRecord, type ChainVerdict } from './chain.js';

export type { AuditFilter };

/** What callers give; the time is the server's. */
export type AuditInput = Omit<AuditRecord, 'time'>;

type Link = AuditLink;

/** A database row as a chain entry (also used to check a replicated chain). */
export function toEntry(r: AuditLogTable): AuditEntry {
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
 * The audit trail (R18): an append-only, hash-chained table. Appends from the server, from
 * CLI processes and from other server instances serialise on `LockName.AUDIT` (SQLite: its
 * write lock, BEGIN IMMEDIATE), so the chain never forks. After each append the head (seq,
 * hash) is also written outside the database (audit/head.ts: DIR/audit-head.json, or an
 * object in the shared store with PostgreSQL), after the transaction: deleting the newest
 * rows from the database is then detected too. Retention purges the
 * oldest entries and keeps the last purged link as the chain's anchor.
 */
export class AuditLog {
  private headWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly head: AuditHead,
    private readonly clock: Clock,
    /** Where a failure to write the head is reported (the chain itself is committed; the head then lags). */
    private readonly log: LogSink = stderrLog,
  ) {}

  async append(input: AuditInput): Promise<AuditEntry> {
    const rec: AuditRecord = { ...input, time: this.clock().toISOString() };
    // The chain: the next link is computed from the newest one, so two appends must never interleave.
    const entry = await writeTransaction(this.db, [LockName.AUDIT], async (trx) => {
      const last = await lastAuditLink(trx);
      const anchor = last ? null : await auditAnchor(trx);
      const e = chainNext(last, rec, anchor ?? undefined);
      await insertAuditEntry(trx, e);
      return e;
    });
    // Moves forward only (another process may have written a later one); a failure here
    // leaves the head lagging, which verification accepts.
    this.headWrite = this.headWrite
      .then(() => this.head.advance({ seq: entry.seq, hash: entry.hash }))
      .catch((err: unknown) => this.log({ level: 'warn', msg: 'audit head not written (verification will accept the lag; truncation of the newest entries goes unnoticed until it is)', where: this.head.where, ...errorFields(err) }));
    await this.headWrite;
    return entry;
  }

  async readHead(): Promise<Link | null> {
    return this.head.read();
  }

  private async start(): Promise<Link> {
    return (await auditAnchor(this.db)) ?? { seq: 0, hash: GENESIS_HASH };
  }

  /** Every entry in chain order, read in pages (memory stays bounded whatever the trail's length). */
  async *all(pageSize = 1000): AsyncGenerator<AuditEntry> {
    let after = -1;
    for (;;) {
      const rows = await auditRowsAfter(this.db, after, pageSize);
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
    return (await auditRowsPage(this.db, filter, limit, beforeSeq)).map(toEntry);
  }

  /** Oldest first, streamed in pages, for exports. */
  async *matching(filter: AuditFilter, pageSize = 1000): AsyncGenerator<AuditEntry> {
    let after = -1;
    for (;;) {
      const rows = await auditRowsMatchingAfter(this.db, filter, after, pageSize);
      for (const r of rows) yield toEntry(r);
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  /** Retention: removes entries older than `before`, keeping the last removed link as the anchor. Returns how many went. */
  async purgeBefore(before: string): Promise<number> {
    const now = this.clock().toISOString();
    // The chain: the anchor must be the last purged link, whatever appends or purges run meanwhile.
    return writeTransaction(this.db, [LockName.AUDIT], (trx) => purgeAuditBefore(trx, before, now));
  }
}
