import type { Database } from '../db/database.js';
import { LockName, writeTransaction } from '../db/engine.js';
import { auditAnchor, auditHashAt, auditRowsAfter, auditRowsMatchingAfter, auditRowsPage, insertAuditEntry, lastAuditLink, purgeAuditBefore, type AuditFilter } from '../db/queries/audit.js';
import type { AuditLogTable } from '../db/schema.js';
import type { Clock } from '../types.js';
import { checkpointsAfter, insertCheckpoint, lastCheckpoint, purgeMarker, recordedAuditKey, replacePurgeMarker } from '../db/queries/audit-signing.js';
import type { AuditHead, AuditLink } from './head.js';
import { errorFields, stderrLog, type LogSink } from '../log.js';
import { chainNext, GENESIS_HASH, verifyChainAsync, type AuditEntry, type AuditRecord, type ChainVerdict } from './chain.js';
import { parseAuditPublicKey, type AuditPublicKey, type SignedCheckpoint } from './checkpoint.js';
import type { AuditSigner } from './signing-key.js';
import { verifySignedChain, type KeyPinning, type SignatureVerdict } from './signed-verify.js';

export type { AuditFilter };

/** What callers give; the time is the server's. */
export type AuditInput = Omit<AuditRecord, 'time'>;

type Link = AuditLink;

/** A checkpoint is signed inside the append that makes the unsigned tail this long… */
export const CHECKPOINT_EVERY = 100;
/** …or that comes this long after the last checkpoint (and the server signs every minute and at shutdown). */
export const CHECKPOINT_INTERVAL_MS = 60_000;
const DAY_MS = 86_400_000;

export interface AuditLogOptions {
  /** The installation's audit signing key (audit/signing-key.ts); without it nothing is signed. */
  readonly signer?: AuditSigner | null;
  /** The key verification pins when not given one (default: the signer's). */
  readonly pinKey?: AuditPublicKey | null;
  readonly installationId?: string;
  /** The retention period in force: a purge of younger entries is refused. */
  readonly retentionDays?: number;
}

/** The chain head outside the database could not be written: the entry is committed, the action that wrote it fails. */
export class AuditHeadError extends Error {
  override readonly name = 'AuditHeadError';
}

/** A purge that would remove entries younger than the retention period, or without the signing key. */
export class AuditPurgeRefusedError extends Error {
  override readonly name = 'AuditPurgeRefusedError';
}

export interface SignedVerification {
  readonly chain: ChainVerdict;
  /** Null when no key is known at all (the installation's server never started since signing exists). */
  readonly signatures: SignatureVerdict | null;
  readonly ok: boolean;
}

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
 * rows from the database is then detected too; a head that cannot be written fails the
 * append (AuditHeadError). A process holding the audit signing key (ADR 0011) signs a
 * checkpoint in the append's transaction every CHECKPOINT_EVERY entries or
 * CHECKPOINT_INTERVAL_MS, so a consistent rewrite without the key fails `verifySigned`.
 * Retention purges the oldest entries, never within the retention period, and keeps the
 * last purged link as the chain's anchor, signed as the purge marker.
 */
export class AuditLog {
  private headWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly head: AuditHead,
    private readonly clock: Clock,
    /** Where a failure to write the head (then also thrown) and a refusal to sign are reported. */
    private readonly log: LogSink = stderrLog,
    private readonly opts: AuditLogOptions = {},
  ) {}

  /** The public half of the key this process signs with (null: it signs nothing). */
  get signer(): AuditPublicKey | null {
    return this.opts.signer ?? null;
  }

  async append(input: AuditInput): Promise<AuditEntry> {
    const rec: AuditRecord = { ...input, time: this.clock().toISOString() };
    // The chain: the next link is computed from the newest one, so two appends must never interleave.
    const entry = await writeTransaction(this.db, [LockName.AUDIT], async (trx) => {
      const last = await lastAuditLink(trx);
      const anchor = last ? null : await auditAnchor(trx);
      const e = chainNext(last, rec, anchor ?? undefined);
      await insertAuditEntry(trx, e);
      let signed = false;
      if (this.opts.signer) {
        const cp = await lastCheckpoint(trx);
        if (!cp || e.seq - cp.seq >= CHECKPOINT_EVERY || Date.parse(rec.time) - Date.parse(cp.time) >= CHECKPOINT_INTERVAL_MS) signed = await this.signIn(trx, e, rec.time);
      }
      return { e, signed };
    }).then(async ({ e, signed }) => {
      if (signed) await this.remember(e);
      return e;
    });
    // Moves forward only (another process may have written a later one). The entry is
    // committed; a head that cannot be written is an error of the action that wrote it (an
    // unwritable or full disk, a refused store): truncation would go unnoticed otherwise.
    const write = this.headWrite.then(() => this.head.advance({ seq: entry.seq, hash: entry.hash }));
    this.headWrite = write.catch(() => undefined);
    try {
      await write;
    } catch (err) {
      this.log({ level: 'error', msg: 'audit head not written', where: this.head.where, seq: entry.seq, ...errorFields(err) });
      throw new AuditHeadError(`the audit trail's head could not be written to ${this.head.where} (entry ${entry.seq} is recorded): ${(err as Error).message}`, { cause: err });
    }
    return entry;
  }

  /**
   * Signs `link` as a checkpoint inside the append's or checkpoint's transaction, unless the
   * chain no longer holds what this signer signed last (then it was rewritten: signing would
   * bless the rewrite; the refusal is logged and verification reports the unsigned tail).
   */
  private async signIn(trx: Database, link: Link, time: string): Promise<boolean> {
    const signer = this.opts.signer!;
    const mine = await signer.lastSigned();
    if (mine) {
      const anchor = await auditAnchor(trx);
      const held = await auditHashAt(trx, mine.seq);
      if (!(anchor && mine.seq <= anchor.seq) && held !== mine.hash) {
        this.log({ level: 'error', msg: 'audit chain rewritten: the entry this signer signed last has changed or is gone; refusing to sign', seq: mine.seq, signed: mine.hash, found: held });
        return false;
      }
    }
    const cp = signer.sign({ installation: this.opts.installationId ?? '', kind: 'checkpoint', seq: link.seq, hash: link.hash, time, purgeBefore: null, retentionDays: null });
    await insertCheckpoint(trx, cp);
    return true;
  }

  /** After the commit: the signer's memory outside the database moves forward. */
  private async remember(link: Link): Promise<void> {
    try {
      await this.opts.signer!.recordSigned({ seq: link.seq, hash: link.hash });
    } catch (err) {
      this.log({ level: 'warn', msg: "the audit signer's memory was not updated", ...errorFields(err) });
    }
  }

  /** Signs the chain's newest entry if it is not yet (every minute and at shutdown); the link signed, or null. */
  async checkpoint(): Promise<Link | null> {
    if (!this.opts.signer) return null;
    const signed = await writeTransaction(this.db, [LockName.AUDIT], async (trx) => {
      const last = await lastAuditLink(trx);
      const cp = await lastCheckpoint(trx);
      if (!last || (cp && cp.seq >= last.seq)) return null;
      return (await this.signIn(trx, last, this.clock().toISOString())) ? last : null;
    });
    if (signed) await this.remember(signed);
    return signed;
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

  /** Checkpoints in chain order, read in pages. */
  private async *checkpoints(pageSize = 1000): AsyncGenerator<SignedCheckpoint> {
    let after = -1;
    for (;;) {
      const page = await checkpointsAfter(this.db, after, pageSize);
      yield* page;
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.seq;
    }
  }

  /**
   * The chain and its signatures (audit/signed-verify.ts). The keys accepted: `pinned` (the
   * published public key the verifier trusts), else the key this process signs with, else the
   * key recorded in the database (which whoever writes the database could have replaced: not pinned).
   */
  async verifySigned(pinned?: AuditPublicKey): Promise<SignedVerification> {
    const start = await this.start();
    const head = await this.readHead();
    let keys: AuditPublicKey[] = [];
    let pinning: KeyPinning = 'recorded-in-database';
    if (pinned) [keys, pinning] = [[pinned], 'public-key-file'];
    else if (this.opts.pinKey ?? this.opts.signer) [keys, pinning] = [[(this.opts.pinKey ?? this.opts.signer)!], 'signing-key-file'];
    else {
      const recorded = await recordedAuditKey(this.db);
      if (recorded) keys = [parseAuditPublicKey(recorded.publicKey, 'the audit public key recorded in the database')];
    }
    const marker = await purgeMarker(this.db);
    if (keys.length === 0 && !marker && !(await lastCheckpoint(this.db))) {
      // Nothing was ever signed and no key is known: the hash chain alone.
      const chain = await verifyChainAsync(this.all(), start, head);
      return { chain, signatures: null, ok: chain.ok };
    }
    const { chain, signatures } = await verifySignedChain(this.all(), this.checkpoints(), start, head, {
      installation: this.opts.installationId ?? '',
      keys: new Map(keys.map((k) => [k.keyId, k])),
      pinning,
      purgeMarker: marker,
      minRetentionDays: this.opts.retentionDays ?? 1,
    });
    const memory = signatures.ok && chain.ok && this.opts.signer ? await this.memoryProblem(start, signatures.signedUpTo) : null;
    const checked = memory ? { ...signatures, ok: false, problem: memory } : signatures;
    return { chain, signatures: checked, ok: chain.ok && checked.ok };
  }

  /** The signer's memory (outside the database) against the database's checkpoints: catches checkpoints removed with a rewritten tail. */
  private async memoryProblem(start: Link, signedUpTo: number | null): Promise<string | null> {
    const mine = await this.opts.signer!.lastSigned();
    if (!mine || mine.seq <= start.seq) return null;
    if ((await auditHashAt(this.db, mine.seq)) !== mine.hash) return `entry ${mine.seq}, which this signing key signed, has changed or is gone: the chain was rewritten`;
    if (signedUpTo === null || signedUpTo < mine.seq) return `this signing key signed up to seq ${mine.seq} but the database's checkpoints stop at ${signedUpTo ?? 'none'}: checkpoints were removed`;
    return null;
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

  /**
   * Retention: removes entries older than `before`, keeping the last removed link as the
   * anchor and signing it as the purge marker. Refused (AuditPurgeRefusedError) when `before`
   * is within the retention period, or without the signing key (an unsigned anchor would
   * fail verification). Returns how many went.
   */
  async purgeBefore(before: string): Promise<number> {
    const now = this.clock().toISOString();
    const retentionDays = this.opts.retentionDays;
    const signer = this.opts.signer;
    if (retentionDays === undefined || !signer) throw new AuditPurgeRefusedError('the audit trail is purged only by a process that holds the audit signing key and knows the retention period');
    const limit = Date.parse(now) - retentionDays * DAY_MS;
    if (!(Date.parse(before) <= limit)) {
      throw new AuditPurgeRefusedError(`refused to purge audit entries before ${before}: the retention period is ${retentionDays} days, so nothing after ${new Date(limit).toISOString()} may go`);
    }
    // The chain: the anchor must be the last purged link, whatever appends or purges run meanwhile.
    return writeTransaction(this.db, [LockName.AUDIT], async (trx) => {
      const { purged, anchor } = await purgeAuditBefore(trx, before, now);
      if (anchor) {
        const body = { installation: this.opts.installationId ?? '', kind: 'purge' as const, seq: anchor.seq, hash: anchor.hash, time: now, purgeBefore: before, retentionDays };
        await replacePurgeMarker(trx, signer.sign(body));
      }
      return purged;
    });
  }
}
