import type { AuditEntry } from './chain.js';

const CSV_COLUMNS = ['seq', 'time', 'actor_type', 'actor_id', 'actor_label', 'org_id', 'action', 'target', 'ip', 'user_agent', 'request_id', 'outcome', 'details', 'prev_hash', 'hash'] as const;

/**
 * One CSV cell (RFC 4180). Cells a spreadsheet would run as a formula (starting with
 * = + - @, TAB or CR) get a leading apostrophe: this changes the cell's text, so the JSON
 * export is the exact one (and the one to re-verify the chain from).
 */
function cell(v: string | number | null): string {
  let s = v === null ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Header line, then one CRLF-terminated line per entry. */
export function* toCsvRows(entries: Iterable<AuditEntry>): Iterable<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  for (const e of entries) {
    const row = [e.seq, e.time, e.actorType, e.actorId, e.actorLabel, e.orgId, e.action, e.target, e.ip, e.userAgent, e.requestId, e.outcome, e.details === null ? null : JSON.stringify(e.details), e.prevHash, e.hash];
    yield `${row.map(cell).join(',')}\r\n`;
  }
}
