import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AuditEntry, AuditRecord } from '../src/audit/chain.js';
import {
  ACTOR_TYPES,
  AUDIT_OUTCOMES,
  AUDIT_RECORD_FIELDS,
  canonicalEntry,
  chainNext,
  entryHash,
  GENESIS,
  GENESIS_HASH,
  verifyChain,
  verifyChainAsync,
} from '../src/audit/chain.js';
import { AuditExportError, CSV_COLUMNS, parseJsonExport, toCsvRows, toJsonArrayChunks } from '../src/audit/export.js';

const N = 50;

function record(i: number): AuditRecord {
  return {
    time: new Date(Date.UTC(2025, 0, 1, 8, 0, 0, i)).toISOString(),
    actorType: ACTOR_TYPES[i % ACTOR_TYPES.length]!,
    actorId: i % 7 === 0 ? null : `u${i}`,
    actorLabel: i % 5 === 0 ? null : `user${i}@cabinet.fr`,
    orgId: i % 3 === 0 ? null : `org-${i % 4}`,
    action: ['auth.login', 'user.create', 'machine.enroll', 'snapshot.delete'][i % 4]!,
    target: i % 2 === 0 ? `user:${i}` : null,
    ip: i % 6 === 0 ? null : `192.0.2.${i}`,
    userAgent: i % 4 === 0 ? null : 'Mozilla/5.0',
    requestId: `req-${i}`,
    outcome: AUDIT_OUTCOMES[i % AUDIT_OUTCOMES.length]!,
    details: i % 3 === 1 ? null : { n: i, nested: { b: [1, 'two', null], a: true } },
  };
}

/** A fresh chain of N entries, seq 1..N (index = seq - 1). */
function buildChain(): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 1; i <= N; i++) out.push(chainNext(out.at(-1) ?? null, record(i)));
  return out;
}
const CHAIN = buildChain();
const at = (seq: number): AuditEntry => CHAIN[seq - 1]!;
const linkOf = (e: AuditEntry): { seq: number; hash: string } => ({ seq: e.seq, hash: e.hash });
const HEAD = linkOf(at(N));

async function* asyncOf<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const x of items) yield x;
}

describe('audit chain: building', () => {
  it('numbers entries from 1 after GENESIS and links each to its predecessor', () => {
    assert.equal(CHAIN.length, N);
    assert.equal(at(1).seq, 1);
    assert.equal(at(1).prevHash, GENESIS_HASH);
    for (let s = 2; s <= N; s++) {
      assert.equal(at(s).seq, s);
      assert.equal(at(s).prevHash, at(s - 1).hash);
    }
    assert.equal(new Set(CHAIN.map((e) => e.hash)).size, N, 'hashes are distinct');
    assert.match(at(1).hash, /^[0-9a-f]{64}$/);
  });

  it('continues from a retention anchor when no previous entry is left', () => {
    const anchor = linkOf(at(10));
    const e = chainNext(null, record(99), anchor);
    assert.equal(e.seq, 11);
    assert.equal(e.prevHash, anchor.hash);
    // prev wins over the anchor.
    assert.equal(chainNext(linkOf(at(20)), record(99), anchor).seq, 21);
  });

  it('refuses malformed records and links loudly', () => {
    assert.throws(() => chainNext(null, { ...record(1), time: '2025-01-01 08:00:00' }), TypeError);
    assert.throws(() => chainNext(null, { ...record(1), time: '2025-02-30T00:00:00.000Z' }), TypeError);
    assert.throws(() => chainNext(null, { ...record(1), actorType: 'robot' as never }), TypeError);
    assert.throws(() => chainNext(null, { ...record(1), outcome: 'maybe' as never }), TypeError);
    assert.throws(() => chainNext(null, { ...record(1), action: '' }), TypeError);
    assert.throws(() => chainNext(null, { ...record(1), details: [1, 2] as never }), TypeError);
    assert.throws(() => chainNext({ seq: 1, hash: 'nothex' }, record(1)), TypeError);
    assert.throws(() => canonicalEntry(0, record(1)), RangeError);
  });

  it('returns values as hashed, so what is stored still verifies after a database/JSON round trip', () => {
    const e = chainNext(null, {
      ...record(1),
      actorLabel: 'bad\uD800label',
      details: { z: undefined, when: new Date(Date.UTC(2025, 0, 1)), b: 1, a: { d: 2, c: 1 } },
    });
    assert.equal(e.actorLabel, 'bad\uFFFDlabel', 'lone surrogate replaced, as UTF-8 storage would');
    assert.deepEqual(e.details, { a: { c: 1, d: 2 }, b: 1, when: '2025-01-01T00:00:00.000Z' });
    assert.deepEqual(Object.keys(e.details!), ['a', 'b', 'when']);
    const stored = JSON.parse(JSON.stringify(e)) as AuditEntry;
    assert.equal(verifyChain([stored], GENESIS).ok, true);
  });
});

describe('audit chain: canonical form', () => {
  it('encodes exactly as documented (an auditor can re-implement it)', () => {
    const rec: AuditRecord = {
      time: '2025-01-02T03:04:05.678Z',
      actorType: 'user',
      actorId: 'u1',
      actorLabel: 'a@b.fr',
      orgId: null,
      action: 'auth.login',
      target: null,
      ip: '192.0.2.1',
      userAgent: null,
      requestId: null,
      outcome: 'success',
      details: { b: [true, null], a: 1 },
    };
    const canonical = canonicalEntry(1, rec);
    assert.equal(
      canonical,
      'coffre-audit-v1\n[1,"2025-01-02T03:04:05.678Z","user","u1","a@b.fr",null,"auth.login",null,"192.0.2.1",null,null,"success",{"a":1,"b":[true,null]}]',
    );
    const independent = createHash('sha256').update(`${GENESIS_HASH}\n${canonical}`, 'utf8').digest('hex');
    assert.equal(entryHash(GENESIS_HASH, 1, rec), independent);
    assert.equal(chainNext(null, rec).hash, independent);
  });

  it('does not depend on key order in details, at any depth', () => {
    const a = { ...record(2), details: { x: 1, y: { p: [1, { m: 1, n: 2 }], q: 's' } } };
    const b = { ...record(2), details: { y: { q: 's', p: [1, { n: 2, m: 1 }] }, x: 1 } };
    assert.equal(entryHash(GENESIS_HASH, 1, a), entryHash(GENESIS_HASH, 1, b));
    // ...but array order is content.
    const c = { ...record(2), details: { x: 1, y: { p: [{ m: 1, n: 2 }, 1], q: 's' } } };
    assert.notEqual(entryHash(GENESIS_HASH, 1, a), entryHash(GENESIS_HASH, 1, c));
  });

  const base = record(2); // every nullable field set, details an object
  const changed: { readonly [K in keyof AuditRecord]: AuditRecord[K] } = {
    time: '2025-01-01T08:00:00.003Z',
    actorType: 'machine',
    actorId: 'u2x',
    actorLabel: 'other@cabinet.fr',
    orgId: 'org-9',
    action: 'auth.logout',
    target: 'user:3',
    ip: '192.0.2.200',
    userAgent: 'curl/8',
    requestId: 'req-x',
    outcome: 'success',
    details: { n: 2, nested: { b: [1, 'two', null], a: false } },
  };
  const baseHash = entryHash(GENESIS_HASH, 1, base);
  for (const field of AUDIT_RECORD_FIELDS) {
    it(`changes when ${field} changes (including to null)`, () => {
      assert.notDeepEqual(changed[field], base[field]);
      assert.notEqual(entryHash(GENESIS_HASH, 1, { ...base, [field]: changed[field] }), baseHash);
      if (field !== 'time' && field !== 'actorType' && field !== 'action' && field !== 'outcome') {
        assert.notEqual(entryHash(GENESIS_HASH, 1, { ...base, [field]: null }), baseHash);
      }
    });
  }
  it('changes with seq and prevHash, and tells null from "" and from "null"', () => {
    assert.notEqual(entryHash(GENESIS_HASH, 2, base), baseHash);
    assert.notEqual(entryHash('1'.repeat(64), 1, base), baseHash);
    const nul = entryHash(GENESIS_HASH, 1, { ...base, actorId: null });
    assert.notEqual(entryHash(GENESIS_HASH, 1, { ...base, actorId: '' }), nul);
    assert.notEqual(entryHash(GENESIS_HASH, 1, { ...base, actorId: 'null' }), nul);
    assert.notEqual(entryHash(GENESIS_HASH, 1, { ...base, details: {} }), entryHash(GENESIS_HASH, 1, { ...base, details: null }));
  });
});

describe('audit chain: verification', () => {
  it('accepts the intact chain, with or without the head', () => {
    assert.deepEqual(verifyChain(CHAIN, GENESIS), { ok: true, count: N, lastSeq: N });
    assert.deepEqual(verifyChain(CHAIN, GENESIS, HEAD), { ok: true, count: N, lastSeq: N });
    assert.deepEqual(verifyChain([], GENESIS), { ok: true, count: 0, lastSeq: null });
  });

  it('detects a modified entry at that entry (hash-mismatch)', () => {
    const copy = [...CHAIN];
    copy[16] = { ...at(17), outcome: at(17).outcome === 'success' ? 'failure' : 'success' };
    const v = verifyChain(copy, GENESIS, HEAD);
    assert.equal(v.ok, false);
    assert.equal(v.firstBad?.seq, 17);
    assert.equal(v.firstBad?.problem, 'hash-mismatch');
    assert.equal(v.count, 16);
    assert.equal(v.lastSeq, 16);
  });

  it('detects a modified entry whose hash was recomputed, at the next one (prev-hash-mismatch)', () => {
    const copy = [...CHAIN];
    const forged = { ...at(17), actorLabel: 'someone-else@cabinet.fr' };
    copy[16] = { ...forged, hash: entryHash(forged.prevHash, forged.seq, forged) };
    const v = verifyChain(copy, GENESIS, HEAD);
    assert.equal(v.firstBad?.seq, 18);
    assert.equal(v.firstBad?.problem, 'prev-hash-mismatch');
    assert.equal(v.count, 17);
  });

  it('detects a deleted entry and names the one after it (seq-gap)', () => {
    const copy = CHAIN.filter((e) => e.seq !== 20);
    const v = verifyChain(copy, GENESIS, HEAD);
    assert.equal(v.ok, false);
    assert.equal(v.firstBad?.seq, 21);
    assert.equal(v.firstBad?.problem, 'seq-gap');
    assert.match(v.firstBad?.message ?? '', /20\.\.20/);
  });

  it('detects a deleted entry even when later seqs were renumbered (prev-hash-mismatch)', () => {
    const copy = CHAIN.filter((e) => e.seq !== 20).map((e) => (e.seq > 20 ? { ...e, seq: e.seq - 1 } : e));
    const v = verifyChain(copy, GENESIS);
    assert.equal(v.ok, false);
    // Renumbering changes the entry's content, so its own hash no longer matches.
    assert.equal(v.firstBad?.seq, 20);
    assert.equal(v.firstBad?.problem, 'hash-mismatch');
  });

  it('detects an entry inserted between 30 and 31', () => {
    // Naive forgery: plausible fields, made-up hash → caught at the forged entry.
    const naive: AuditEntry = { ...at(31), actorLabel: 'intruder@evil.test', hash: 'f'.repeat(64) };
    const v1 = verifyChain([...CHAIN.slice(0, 30), naive, ...CHAIN.slice(30)], GENESIS, HEAD);
    assert.equal(v1.firstBad?.problem, 'hash-mismatch');
    assert.equal(v1.count, 30);
    // Careful forgery: correct prevHash and hash (no secret key) reusing seq 31 → the
    // forged entry passes, the genuine 31 after it cannot.
    const careful = chainNext(linkOf(at(30)), { ...record(31), action: 'user.create', actorLabel: 'intruder@evil.test' });
    assert.equal(careful.seq, 31);
    const v2 = verifyChain([...CHAIN.slice(0, 30), careful, ...CHAIN.slice(30)], GENESIS, HEAD);
    assert.equal(v2.ok, false);
    assert.equal(v2.firstBad?.seq, 31);
    assert.equal(v2.firstBad?.problem, 'seq-out-of-order');
    assert.equal(v2.count, 31);
  });

  it('detects two swapped entries at the first of them in walk order', () => {
    const copy = [...CHAIN];
    copy[39] = at(41);
    copy[40] = at(40);
    const v = verifyChain(copy, GENESIS, HEAD);
    assert.equal(v.ok, false);
    assert.equal(v.firstBad?.seq, 41);
    assert.equal(v.firstBad?.problem, 'seq-gap');
    assert.equal(v.count, 39);
  });

  it('detects a truncated tail when the head kept outside the database is given (head-missing)', () => {
    const v = verifyChain(CHAIN.slice(0, 45), GENESIS, HEAD);
    assert.equal(v.ok, false);
    assert.equal(v.firstBad?.problem, 'head-missing');
    assert.equal(v.firstBad?.seq, 46);
    assert.equal(v.count, 45);
    assert.equal(v.lastSeq, 45);
  });

  it('cannot detect a truncated tail WITHOUT the head: that is what the head outside the database is for', () => {
    // The remaining prefix is a perfectly consistent chain; only an outside record of the
    // last {seq, hash} written shows that entries 46..50 existed.
    assert.deepEqual(verifyChain(CHAIN.slice(0, 45), GENESIS), { ok: true, count: 45, lastSeq: 45 });
    assert.deepEqual(verifyChain(CHAIN.slice(0, 45), GENESIS, null), { ok: true, count: 45, lastSeq: 45 });
  });

  it('detects a rewritten tail (head-mismatch), accepts entries beyond a lagging head', () => {
    // Last entry replaced by a consistent forgery: only the head can tell.
    const forgedLast = chainNext(linkOf(at(N - 1)), { ...record(N), outcome: 'success', action: 'user.delete' });
    const v1 = verifyChain([...CHAIN.slice(0, N - 1), forgedLast], GENESIS, HEAD);
    assert.equal(v1.firstBad?.problem, 'head-mismatch');
    assert.equal(v1.firstBad?.seq, N);
    // Entries appended after the head was last written (crash window, concurrent writers).
    const v2 = verifyChain(CHAIN, GENESIS, linkOf(at(48)));
    assert.deepEqual(v2, { ok: true, count: N, lastSeq: N });
    // An empty table while the head says entries existed.
    const v3 = verifyChain([], GENESIS, HEAD);
    assert.equal(v3.firstBad?.problem, 'head-missing');
    assert.equal(v3.firstBad?.seq, 1);
  });

  it('starts from the retention anchor after entries 1–10 were purged', () => {
    const kept = CHAIN.slice(10);
    assert.deepEqual(verifyChain(kept, linkOf(at(10)), HEAD), { ok: true, count: 40, lastSeq: N });
    // Without the anchor the purge looks like a deletion.
    assert.equal(verifyChain(kept, GENESIS).firstBad?.problem, 'seq-gap');
  });

  it('detects a wrong anchor at the first kept entry (11)', () => {
    const kept = CHAIN.slice(10);
    const wrongHash = verifyChain(kept, { seq: 10, hash: at(9).hash }, HEAD);
    assert.equal(wrongHash.firstBad?.seq, 11);
    assert.equal(wrongHash.firstBad?.problem, 'prev-hash-mismatch');
    const wrongSeq = verifyChain(kept, { seq: 9, hash: at(10).hash }, HEAD);
    assert.equal(wrongSeq.firstBad?.seq, 11);
    assert.equal(wrongSeq.firstBad?.problem, 'seq-gap');
  });

  it('refuses a malformed start or head', () => {
    assert.throws(() => verifyChain(CHAIN, { seq: -1, hash: GENESIS_HASH }), TypeError);
    assert.throws(() => verifyChain(CHAIN, GENESIS, { seq: 50, hash: 'XYZ' }), TypeError);
  });

  it('async variant gives the same verdicts and stops reading at the first problem', async () => {
    assert.deepEqual(await verifyChainAsync(asyncOf(CHAIN), GENESIS, HEAD), verifyChain(CHAIN, GENESIS, HEAD));
    const copy = [...CHAIN];
    copy[16] = { ...at(17), action: 'user.delete' };
    let pulled = 0;
    let closed = false;
    async function* source(): AsyncGenerator<AuditEntry> {
      try {
        for (const e of copy) {
          pulled++;
          yield e;
        }
      } finally {
        closed = true;
      }
    }
    const v = await verifyChainAsync(source(), GENESIS, HEAD);
    assert.deepEqual(v, verifyChain(copy, GENESIS, HEAD));
    assert.equal(v.firstBad?.seq, 17);
    assert.equal(pulled, 17, 'no entry read past the first bad one');
    assert.ok(closed, 'the source is closed (a database cursor would be released)');
    const truncated = await verifyChainAsync(asyncOf(CHAIN.slice(0, 45)), GENESIS, HEAD);
    assert.equal(truncated.firstBad?.problem, 'head-missing');
  });
});

/** Minimal RFC 4180 reader for the checks below (quoted fields may hold CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  assert.equal(cell + row.join(''), '', 'text ends with CRLF');
  return rows;
}

describe('audit export: CSV', () => {
  it('writes the header then one CRLF line per entry', () => {
    const chunks = [...toCsvRows(CHAIN.slice(0, 3))];
    assert.equal(chunks.length, 4);
    assert.equal(chunks[0], 'seq,time,actor_type,actor_id,actor_label,org_id,action,target,ip,user_agent,request_id,outcome,details,prev_hash,hash\r\n');
    assert.deepEqual(CSV_COLUMNS.join(','), chunks[0]!.trimEnd());
    for (const c of chunks) assert.ok(c.endsWith('\r\n') && !c.slice(0, -2).includes('\n'));
    const rows = parseCsv(chunks.join(''));
    const first = rows[1]!;
    assert.equal(first[0], '1');
    assert.equal(first[1], at(1).time);
    assert.equal(first[13], GENESIS_HASH);
    assert.equal(first[14], at(1).hash);
    assert.equal(first[12], '', 'null details: empty cell');
    assert.equal(rows[2]![12], '{"n":2,"nested":{"a":true,"b":[1,"two",null]}}', 'details as compact JSON');
  });

  it('quotes commas, quotes and line breaks, leaving plain cells alone', () => {
    const e = chainNext(null, {
      ...record(1),
      actorLabel: 'Martin, Dr',
      target: 'say "hi"',
      userAgent: 'line1\r\nline2',
      details: { note: 'a,b' },
    });
    const line = [...toCsvRows([e])][1]!;
    assert.ok(line.includes(',"Martin, Dr",'));
    assert.ok(line.includes(',"say ""hi""",'));
    assert.ok(line.includes(',"line1\r\nline2",'));
    assert.ok(line.includes(',"{""note"":""a,b""}",'));
    const rows = parseCsv(line);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.length, CSV_COLUMNS.length);
    assert.equal(rows[0]![4], 'Martin, Dr');
    assert.equal(rows[0]![7], 'say "hi"');
    assert.equal(rows[0]![9], 'line1\r\nline2');
    assert.equal(rows[0]![3], 'u1');
    assert.equal(rows[0]![5], 'org-1');
  });

  it('neutralises formula injection with a leading apostrophe (and only then)', () => {
    const payloads = ['=HYPERLINK("http://evil.test","x")', '+1+1', '-2+3', '@SUM(A1)', '\tcmd', '\rcmd'];
    for (const p of payloads) {
      const e = chainNext(null, { ...record(1), actorLabel: p });
      const cells = parseCsv([...toCsvRows([e])][1]!)[0]!;
      assert.equal(cells[4], `'${p}`, JSON.stringify(p));
    }
    const safe = chainNext(null, { ...record(1), actorLabel: 'a=b@c.fr' });
    assert.equal(parseCsv([...toCsvRows([safe])][1]!)[0]![4], 'a=b@c.fr');
    // null becomes an empty cell, not an apostrophe or "null".
    const nul = chainNext(null, { ...record(1), actorLabel: null });
    assert.equal(parseCsv([...toCsvRows([nul])][1]!)[0]![4], '');
  });
});

describe('audit export: JSON', () => {
  it('streams a valid JSON array that round-trips and still verifies', () => {
    const chunks = [...toJsonArrayChunks(CHAIN)];
    assert.equal(chunks[0], '[');
    assert.equal(chunks.at(-1), ']');
    assert.equal(chunks.length, N + 2);
    assert.ok(chunks[2]!.startsWith(',\n'));
    const text = chunks.join('');
    const parsed = parseJsonExport(text);
    assert.deepEqual(parsed, CHAIN);
    assert.deepEqual(Object.keys(parsed[0]!), ['seq', ...AUDIT_RECORD_FIELDS, 'prevHash', 'hash']);
    assert.deepEqual(verifyChain(parsed, GENESIS, HEAD), { ok: true, count: N, lastSeq: N });
    assert.deepEqual(parseJsonExport([...toJsonArrayChunks([])].join('')), []);
  });

  it('exports only AuditEntry keys, and a tampered but well-formed export parses and fails verification', () => {
    const withExtra = { ...at(1), internalId: 42 } as AuditEntry;
    assert.ok(!([...toJsonArrayChunks([withExtra])].join('')).includes('internalId'));
    const text = [...toJsonArrayChunks(CHAIN)].join('').replace('"req-17"', '"req-17-edited"');
    const v = verifyChain(parseJsonExport(text), GENESIS, HEAD);
    assert.equal(v.firstBad?.seq, 17);
    assert.equal(v.firstBad?.problem, 'hash-mismatch');
  });

  it('refuses malformed exports', () => {
    const good = JSON.parse([...toJsonArrayChunks([at(1)])].join('')) as Record<string, unknown>[];
    const variant = (patch: Record<string, unknown>, drop?: string): string => {
      const o: Record<string, unknown> = { ...good[0]!, ...patch };
      if (drop) delete o[drop];
      return JSON.stringify([o]);
    };
    assert.doesNotThrow(() => parseJsonExport(variant({})));
    const bad = [
      'not json',
      '{"seq":1}',
      '[1]',
      '[null]',
      variant({}, 'hash'),
      variant({ extra: 1 }),
      variant({ seq: 0 }),
      variant({ seq: '1' }),
      variant({ seq: 1.5 }),
      variant({ hash: 'ABC' }),
      variant({ prevHash: 'A'.repeat(64) }),
      variant({ time: 'yesterday' }),
      variant({ actorType: 'robot' }),
      variant({ outcome: 'maybe' }),
      variant({ action: 3 }),
      variant({ actorId: 5 }),
      variant({ details: [1] }),
      variant({ details: 'x' }),
    ];
    for (const text of bad) assert.throws(() => parseJsonExport(text), AuditExportError, text);
  });
});
