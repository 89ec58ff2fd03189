import { createHash } from 'node:crypto';
import type { AuditEntryRecord, AuditOutcomeName } from '@coffre/core';

/**
 * Tamper-evident audit trail: every entry carries the SHA-256 of its predecessor, so
 * modifying, inserting, deleting or reordering entries in the database breaks the chain
 * at a point `verifyChain` names. The chain alone cannot detect truncation of the tail
 * (or a full rewrite by someone who recomputes every hash: there is no secret key): the
 * last {seq, hash} the server wrote, the "head", must also be kept OUTSIDE the database
 * (log shipping, a file on other storage, a printed/emailed digest) and passed to the
 * verifier.
 *
 * Everything here is pure (node:crypto only) so an auditor can re-run it offline on an
 * export.
 */

export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number] & AuditOutcomeName;

export const ACTOR_TYPES = ['user', 'machine', 'system', 'cli', 'anonymous'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number] & AuditEntryRecord['actorType'];

/** What a caller records: an entry without its chain fields (the shape is shared with the console, @coffre/core). */
export type AuditRecord = Omit<AuditEntryRecord, 'seq' | 'prevHash' | 'hash'>;
export type AuditEntry = AuditEntryRecord;

/** The record fields in canonical order. Changing this order (or adding a field) is a new format version. */
export const AUDIT_RECORD_FIELDS = [
  'time',
  'actorType',
  'actorId',
  'actorLabel',
  'orgId',
  'action',
  'target',
  'ip',
  'userAgent',
  'requestId',
  'outcome',
  'details',
] as const satisfies readonly (keyof AuditRecord)[];
// Compile-time guard: a field added to AuditRecord but not to the list above would not be hashed.
type _Unhashed = Exclude<keyof AuditRecord, (typeof AUDIT_RECORD_FIELDS)[number]>;
const _everyFieldHashed: [_Unhashed] extends [never] ? true : false = true;

/** The fields that are plain `string | null` (used by validation and normalisation). */
const NULLABLE_STRING_FIELDS = ['actorId', 'actorLabel', 'orgId', 'target', 'ip', 'userAgent', 'requestId'] as const satisfies readonly (keyof AuditRecord)[];

export const CANONICAL_VERSION = 'coffre-audit-v1';
/** `prevHash` of the first entry of a chain that was never purged (the chain "starts" at seq 0). */
export const GENESIS_HASH = '0'.repeat(64);
export const GENESIS: { readonly seq: number; readonly hash: string } = Object.freeze({ seq: 0, hash: GENESIS_HASH });

const HASH_RE = /^[0-9a-f]{64}$/;
const ISO_UTC_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LONE_SURROGATE_RE = /\p{Cs}/gu;

/**
 * Deterministic JSON of a JSON-able value, identical to RFC 8785 (JCS) for the values
 * this module accepts: no whitespace, object keys sorted by UTF-16 code units (the
 * default JS sort), strings and numbers serialised as ECMAScript `JSON.stringify` does
 * (so lone surrogates become `\udXXX` escapes and the result is always valid UTF-8).
 *
 * The value is first passed through `JSON.parse(JSON.stringify(v))`, so it is hashed
 * exactly as it will be after a round trip through a JSON column or export: `undefined`
 * properties disappear, `Date`s become their ISO string, NaN/Infinity become null,
 * `toJSON` is honoured. BigInt and cycles throw (as `JSON.stringify` does).
 */
export function canonicalJson(value: unknown): string {
  const text = JSON.stringify(value);
  // JSON.stringify returns undefined for undefined, functions and symbols.
  if (text === undefined) return 'null';
  return sortedJson(JSON.parse(text) as unknown);
}

function sortedJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  const obj = v as Record<string, unknown>;
  const parts = Object.keys(obj)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${sortedJson(obj[k])}`);
  return `{${parts.join(',')}}`;
}

/**
 * Canonical text of an entry — the exact encoding, so an auditor can re-implement it:
 *
 *     "coffre-audit-v1" LF JSON-ARRAY
 *
 * where LF is a single "\n" and JSON-ARRAY is the JCS (RFC 8785) serialisation of the
 * 13-element array
 *
 *     [seq, time, actorType, actorId, actorLabel, orgId, action, target, ip,
 *      userAgent, requestId, outcome, details]
 *
 * `seq` is a JSON integer, the string fields are JSON strings or `null` (an absent
 * value is `null`, distinct from ""), `details` is `null` or a JSON object embedded
 * as a value (not as a string) with keys sorted recursively by UTF-16 code units.
 * No whitespace anywhere. Example:
 *
 *     coffre-audit-v1
 *     [1,"2025-01-02T03:04:05.678Z","user","u1","a@b.fr",null,"auth.login",null,"192.0.2.1",null,null,"success",{"a":1,"b":[true,null]}]
 *
 * The text is hashed as UTF-8 (see `entryHash`). JSON escaping guarantees it holds no
 * raw newline, so the hash input is three unambiguous lines.
 *
 * @throws RangeError if `seq` is not a positive safe integer.
 */
export function canonicalEntry(seq: number, rec: AuditRecord): string {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`audit seq must be a positive integer, got ${String(seq)}`);
  const parts: string[] = [JSON.stringify(seq)];
  for (const field of AUDIT_RECORD_FIELDS) {
    // `?? null`: undefined and null encode the same, as they would after a database round trip.
    parts.push(field === 'details' ? canonicalJson(rec.details ?? null) : JSON.stringify(rec[field] ?? null));
  }
  return `${CANONICAL_VERSION}\n[${parts.join(',')}]`;
}

/**
 * hash = lowercase hex SHA-256 of UTF-8( prevHash + "\n" + canonicalEntry(seq, rec) ).
 * Binding `prevHash` (and `seq`) into the hash is what chains entries together.
 */
export function entryHash(prevHash: string, seq: number, rec: AuditRecord): string {
  return createHash('sha256').update(`${prevHash}\n${canonicalEntry(seq, rec)}`, 'utf8').digest('hex');
}

/**
 * Why `rec` is not a valid AuditRecord, or null if it is. Checks shape only (types,
 * enums, time format, details is a plain JSON object); used on the write path and when
 * parsing exports.
 */
export function auditRecordProblem(rec: unknown): string | null {
  if (rec === null || typeof rec !== 'object') return 'record is not an object';
  const r = rec as Record<string, unknown>;
  const time = r['time'];
  if (typeof time !== 'string' || !ISO_UTC_MS_RE.test(time) || Number.isNaN(Date.parse(time)) || new Date(time).toISOString() !== time) {
    return 'time must be an ISO 8601 UTC timestamp with milliseconds (YYYY-MM-DDTHH:MM:SS.sssZ)';
  }
  if (!(ACTOR_TYPES as readonly unknown[]).includes(r['actorType'])) return `actorType must be one of ${ACTOR_TYPES.join(', ')}`;
  if (!(AUDIT_OUTCOMES as readonly unknown[]).includes(r['outcome'])) return `outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`;
  if (typeof r['action'] !== 'string' || r['action'] === '') return 'action must be a non-empty string';
  for (const f of NULLABLE_STRING_FIELDS) {
    if (r[f] !== null && typeof r[f] !== 'string') return `${f} must be a string or null`;
  }
  const d = r['details'];
  if (d !== null && (typeof d !== 'object' || Array.isArray(d))) return 'details must be a JSON object or null';
  return null;
}

function checkLink(what: string, link: { seq: number; hash: string }): void {
  if (!Number.isSafeInteger(link.seq) || link.seq < 0 || typeof link.hash !== 'string' || !HASH_RE.test(link.hash)) {
    throw new TypeError(`${what} must be {seq: integer >= 0, hash: 64 lowercase hex digits}`);
  }
}

/** String fields become well-formed: a lone surrogate would be replaced by U+FFFD when stored as UTF-8 text, changing the hash. */
function wellFormed<T>(s: T): T {
  return (typeof s === 'string' ? s.replace(LONE_SURROGATE_RE, '\uFFFD') : s) as T;
}

/**
 * The next entry of the chain. `prev` is the last entry written; when the table is empty
 * because retention purged everything, pass `prev = null` and the retention `anchor`
 * (the {seq, hash} of the last purged entry); with neither, the chain starts at seq 1
 * after GENESIS.
 *
 * The returned entry holds the values AS HASHED, which the caller must store verbatim:
 * strings made well-formed (lone surrogates → U+FFFD) and `details` normalised to plain
 * JSON with sorted keys (see `canonicalJson`). Storing the caller's original object
 * instead could make a later verification fail without any tampering.
 *
 * @throws TypeError on an invalid record or link — a programming error on the write path,
 * better loud than an entry that can never verify.
 */
export function chainNext(
  prev: { seq: number; hash: string } | null,
  rec: AuditRecord,
  anchor?: { seq: number; hash: string },
): AuditEntry {
  const link = prev ?? anchor ?? GENESIS;
  checkLink(prev ? 'prev' : anchor ? 'anchor' : 'genesis', link);
  const seq = link.seq + 1;
  const details = rec.details == null ? null : (JSON.parse(canonicalJson(rec.details)) as unknown);
  const record: AuditRecord = {
    time: rec.time,
    actorType: rec.actorType,
    actorId: wellFormed(rec.actorId),
    actorLabel: wellFormed(rec.actorLabel),
    orgId: wellFormed(rec.orgId),
    action: wellFormed(rec.action),
    target: wellFormed(rec.target),
    ip: wellFormed(rec.ip),
    userAgent: wellFormed(rec.userAgent),
    requestId: wellFormed(rec.requestId),
    outcome: rec.outcome,
    details: details as AuditRecord['details'],
  };
  const problem = auditRecordProblem(record);
  if (problem) throw new TypeError(`invalid audit record: ${problem}`);
  return { seq, ...record, prevHash: link.hash, hash: entryHash(link.hash, seq, record) };
}

export type ChainProblem = 'hash-mismatch' | 'prev-hash-mismatch' | 'seq-gap' | 'seq-out-of-order' | 'head-missing' | 'head-mismatch';

export interface ChainVerdict {
  readonly ok: boolean;
  /** Entries that verified, in walk order, before the first problem (all of them when ok). */
  readonly count: number;
  /** Seq of the last entry that verified; null if none did. */
  readonly lastSeq: number | null;
  /**
   * The first problem in walk order. `seq` is the seq the bad entry CLAIMS (it may itself
   * be forged); for 'head-missing' it is the first seq missing at the tail. The message
   * also gives the 1-based position in the walk.
   */
  readonly firstBad?: { readonly seq: number; readonly problem: ChainProblem; readonly message: string };
}

/**
 * The verification state machine shared by the sync and async walkers: constant memory
 * (the previous link and a counter), whatever the number of entries.
 */
class ChainWalker {
  #seq: number;
  #hash: string;
  #count = 0;
  #bad: ChainVerdict['firstBad'] | undefined;
  readonly #head: { readonly seq: number; readonly hash: string } | null;

  constructor(start: { seq: number; hash: string }, head: { seq: number; hash: string } | null | undefined) {
    checkLink('start', start);
    if (head) checkLink('head', head);
    this.#seq = start.seq;
    this.#hash = start.hash;
    this.#head = head ? { seq: head.seq, hash: head.hash } : null;
  }

  /** Checks one entry; false once a problem was found (the caller stops reading). */
  push(e: AuditEntry): boolean {
    if (this.#bad) return false;
    const pos = this.#count + 1;
    const at = `entry #${pos} (seq ${String(e.seq)})`;
    // Self-consistency first: a modified entry is named as such, even if the
    // modification touched its seq or prevHash.
    if (!Number.isSafeInteger(e.seq) || e.seq < 1) {
      return this.#fail(e.seq, 'seq-out-of-order', `${at}: seq is not a positive integer`);
    }
    if (entryHash(e.prevHash, e.seq, e) !== e.hash) {
      return this.#fail(e.seq, 'hash-mismatch', `${at}: stored hash does not match the entry's content — modified after it was written`);
    }
    const expected = this.#seq + 1;
    if (e.seq < expected) {
      return this.#fail(e.seq, 'seq-out-of-order', `${at}: comes after seq ${this.#seq} — duplicated, inserted or reordered`);
    }
    if (e.seq > expected) {
      return this.#fail(e.seq, 'seq-gap', `${at}: expected seq ${expected} — entries ${expected}..${e.seq - 1} deleted or moved`);
    }
    if (e.prevHash !== this.#hash) {
      return this.#fail(
        e.seq,
        'prev-hash-mismatch',
        `${at}: prevHash does not match the hash of the previous link (seq ${this.#seq}) — an earlier entry was rewritten, replaced or inserted, or the start anchor is wrong`,
      );
    }
    const head = this.#head;
    if (head && e.seq === head.seq && e.hash !== head.hash) {
      return this.#fail(e.seq, 'head-mismatch', `${at}: hash differs from the head kept outside the database — chain rewritten from here or earlier`);
    }
    // Entries beyond the head are accepted: the head is written after each commit, so it
    // lags the database by whatever was written since (a crash between the commit and the
    // head write, or two processes appending at once). What it catches is a chain that
    // ends before it (truncation) or differs at its seq (rewritten tail).
    this.#seq = e.seq;
    this.#hash = e.hash;
    this.#count = pos;
    return true;
  }

  verdict(): ChainVerdict {
    const lastSeq = this.#count > 0 ? this.#seq : null;
    const head = this.#head;
    if (!this.#bad && head) {
      if (this.#seq < head.seq) {
        this.#fail(
          this.#seq + 1,
          'head-missing',
          `chain ends at seq ${this.#seq} but the head kept outside the database is seq ${head.seq} — entries ${this.#seq + 1}..${head.seq} missing (truncated)`,
        );
      } else if (this.#seq === head.seq && this.#hash !== head.hash) {
        // Only reachable with no entries walked (push checks the rest): the start itself disagrees with the head.
        this.#fail(this.#seq, 'head-mismatch', `chain ends at seq ${this.#seq} whose hash differs from the head kept outside the database (seq ${head.seq})`);
      }
    }
    const base = { ok: !this.#bad, count: this.#count, lastSeq };
    return this.#bad ? { ...base, firstBad: this.#bad } : base;
  }

  #fail(seq: number, problem: ChainProblem, message: string): false {
    this.#bad = { seq, problem, message };
    return false;
  }
}

/**
 * Walks entries in the order given (the store returns them by seq) and names the FIRST
 * bad entry.
 *
 * `start` is where the chain begins: GENESIS ({seq: 0, hash: GENESIS_HASH}), or the
 * anchor {seq, hash} of the last entry purged by retention. `head`, if known (kept
 * outside the database), is the last {seq, hash} the server wrote; without it, entries
 * removed from the TAIL are undetectable (the remaining chain is perfectly consistent).
 *
 * What each tampering looks like (checks run in this order on each entry):
 * - modified entry: 'hash-mismatch' at it;
 * - modified entry whose hash was recomputed: 'prev-hash-mismatch' at the next one;
 * - deleted entry: 'seq-gap' at the next one (or 'prev-hash-mismatch' if seqs were renumbered);
 * - inserted entry: 'hash-mismatch' / 'prev-hash-mismatch' at it if forged naively; if
 *   forged with a valid hash and a reused seq, the genuine entry after it gets
 *   'seq-out-of-order' (the verifier cannot tell which of two is the genuine one);
 * - reordered entries: 'seq-gap' or 'seq-out-of-order' at the first displaced one;
 * - truncated tail: 'head-missing'; rewritten tail: 'head-mismatch'. Entries beyond the
 *   head are accepted (the head lags the database after a crash or concurrent appends).
 *
 * Reading stops at the first problem. An empty walk is ok (count 0, lastSeq null) unless
 * the head says otherwise.
 *
 * @throws TypeError if `start` or `head` is malformed.
 */
export function verifyChain(entries: Iterable<AuditEntry>, start: { seq: number; hash: string }, head?: { seq: number; hash: string } | null): ChainVerdict {
  const walker = new ChainWalker(start, head);
  for (const e of entries) if (!walker.push(e)) break;
  return walker.verdict();
}

/**
 * `verifyChain` over a stream (the server pages through the database). Stops pulling at
 * the first problem, which also closes the source (its `return()` is called).
 */
export async function verifyChainAsync(
  entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>,
  start: { seq: number; hash: string },
  head?: { seq: number; hash: string } | null,
): Promise<ChainVerdict> {
  const walker = new ChainWalker(start, head);
  for await (const e of entries) if (!walker.push(e)) break;
  return walker.verdict();
}
