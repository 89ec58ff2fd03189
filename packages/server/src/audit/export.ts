import type { AuditEntry, AuditRecord } from './chain.js';
import { AUDIT_RECORD_FIELDS, auditRecordProblem, canonicalJson } from './chain.js';

/**
 * Audit trail exports. Both are generators so a route can stream them page by page
 * without holding the trail in memory.
 *
 * - JSON (`toJsonArrayChunks`) is the EXACT export: it round-trips through
 *   `parseJsonExport` and re-verifies with `verifyChain`. Give this one to auditors.
 * - CSV (`toCsvRows`) is for people with a spreadsheet: it is lossy (null and "" both
 *   become an empty cell) and some cells are altered against formula injection (below),
 *   so it cannot be re-verified.
 */

export const CSV_COLUMNS = [
  'seq',
  'time',
  'actor_type',
  'actor_id',
  'actor_label',
  'org_id',
  'action',
  'target',
  'ip',
  'user_agent',
  'request_id',
  'outcome',
  'details',
  'prev_hash',
  'hash',
] as const;

/** Cells a spreadsheet would treat as a formula (OWASP "CSV injection"), e.g. an actor label `=HYPERLINK(...)`. */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV cell. A value starting with = + - @ TAB or CR gets a leading apostrophe so
 * Excel/LibreOffice show it as text instead of evaluating it. This CHANGES the cell text
 * (`-foo` is exported as `'-foo`); the JSON export is the exact one. Then RFC 4180
 * quoting: a cell containing a comma, a double quote, CR or LF is wrapped in double
 * quotes, inner quotes doubled.
 */
export function csvCell(value: string): string {
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The header line, then one RFC 4180 line per entry, each ending in CRLF. Null is an
 * empty cell; `details` is its compact canonical JSON (sorted keys).
 */
export function* toCsvRows(entries: Iterable<AuditEntry>): Iterable<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  for (const e of entries) {
    const cells: (string | null)[] = [
      String(e.seq),
      e.time,
      e.actorType,
      e.actorId,
      e.actorLabel,
      e.orgId,
      e.action,
      e.target,
      e.ip,
      e.userAgent,
      e.requestId,
      e.outcome,
      e.details == null ? null : canonicalJson(e.details),
      e.prevHash,
      e.hash,
    ];
    yield `${cells.map((c) => csvCell(c ?? '')).join(',')}\r\n`;
  }
}

/** Keys of an exported entry, in AuditEntry order. */
const ENTRY_KEYS = ['seq', ...AUDIT_RECORD_FIELDS, 'prevHash', 'hash'] as const;

/** Only the AuditEntry fields, in a fixed order: a store row may carry more (ids, internal columns) that must not leak. */
export function exportObject(e: AuditEntry): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ENTRY_KEYS) out[k] = e[k] ?? null;
  return out;
}

/**
 * A JSON array streamed in pieces: "[", then the entries separated by ",\n", then "]".
 * The concatenation is valid JSON; each element is an object with the AuditEntry keys
 * (camelCase) and nothing else.
 */
export function* toJsonArrayChunks(entries: Iterable<AuditEntry>): Iterable<string> {
  yield '[';
  let first = true;
  for (const e of entries) {
    const json = JSON.stringify(exportObject(e));
    yield first ? json : `,\n${json}`;
    first = false;
  }
  yield ']';
}

export class AuditExportError extends Error {
  override readonly name = 'AuditExportError';
}

const HASH_RE = /^[0-9a-f]{64}$/;

/**
 * Parses a JSON export back into entries, checking SHAPE only: every element must have
 * exactly the AuditEntry keys with valid types. It deliberately does not check the chain
 * — a tampered but well-formed export must parse so that `verifyChain` can say where it
 * was tampered with.
 *
 * @throws AuditExportError on invalid JSON, a non-array, or any malformed element.
 */
export function parseJsonExport(text: string): AuditEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new AuditExportError(`audit export is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(data)) throw new AuditExportError('audit export must be a JSON array');
  return data.map((item: unknown, i) => parseEntry(item, i));
}

function parseEntry(item: unknown, i: number): AuditEntry {
  const fail = (why: string): never => {
    throw new AuditExportError(`audit export element ${i}: ${why}`);
  };
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return fail('not an object');
  const o = item as Record<string, unknown>;
  const keys = Object.keys(o);
  const extra = keys.filter((k) => !(ENTRY_KEYS as readonly string[]).includes(k));
  if (extra.length > 0) fail(`unexpected key(s) ${extra.join(', ')}`);
  const missing = ENTRY_KEYS.filter((k) => !Object.hasOwn(o, k));
  if (missing.length > 0) fail(`missing key(s) ${missing.join(', ')}`);
  const seq = o['seq'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) fail('seq must be a positive integer');
  for (const k of ['prevHash', 'hash'] as const) {
    if (typeof o[k] !== 'string' || !HASH_RE.test(o[k])) fail(`${k} must be 64 lowercase hex digits`);
  }
  const problem = auditRecordProblem(o);
  if (problem) fail(problem);
  // Rebuilt field by field: the result holds exactly the AuditEntry keys.
  const rec = o as unknown as AuditRecord & { seq: number; prevHash: string; hash: string };
  return {
    seq: rec.seq,
    time: rec.time,
    actorType: rec.actorType,
    actorId: rec.actorId,
    actorLabel: rec.actorLabel,
    orgId: rec.orgId,
    action: rec.action,
    target: rec.target,
    ip: rec.ip,
    userAgent: rec.userAgent,
    requestId: rec.requestId,
    outcome: rec.outcome,
    details: rec.details,
    prevHash: rec.prevHash,
    hash: rec.hash,
  };
}
