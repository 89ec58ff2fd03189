/**
 * Bounded fuzz run of every JSON route of a live server (fuzz-routes-kit.ts): bodies generated
 * from the route's own JSON schema with some values replaced by hostile ones (wrong types,
 * lone surrogates, NUL, RTL marks, very long strings, huge numbers, deep nesting), tokens
 * JSON.stringify cannot produce (1e999, 30-digit integers), raw malformed JSON, invalid UTF-8,
 * wrong content types, and a body over the limit. Never 5xx; every 4xx documented.
 */
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { JSON_BODY_LIMIT } from '../src/server.js';
import { CONTENT_TYPES, RAW_TOKENS, RouteFuzzer, SAMPLES, SEED, exampleOf, malformedBodies, schemaValue, setAt, stringPaths, withRawToken } from './fuzz-routes-kit.js';

describe('fuzzing the JSON bodies of a live server', () => {
  const f = new RouteFuzzer();
  before(() => f.start());
  after(() => f.close());

  it('schema-shaped bodies with hostile values, raw tokens, malformed JSON, wrong content types', async () => {
    const knownValues = Object.values(f.known);
    const malformed = malformedBodies();
    for (const [i, o] of f.ops.entries()) {
      if (!o.body) continue;
      const path = f.fill(o.path, {});
      const samples = fc.sample(schemaValue(o.body, knownValues), { numRuns: SAMPLES, seed: SEED + i });
      let parsedOnce = false;
      for (const as of ['person', 'machine', 'none'] as const) {
        const probe = await f.probe(o.method, path, { as, body: Buffer.from('{}'), contentType: 'application/json' }, '{}');
        // Past authentication only: a 401 comes before the body is read.
        if (probe?.status === 401) continue;
        for (const [j, body] of samples.entries()) {
          const text = JSON.stringify(body) ?? 'null';
          await f.probe(o.method, path, { as, body: Buffer.from(text), contentType: 'application/json' }, text.slice(0, 200));
          const raw = withRawToken(body, RAW_TOKENS[j % RAW_TOKENS.length]!, j);
          if (raw) await f.probe(o.method, path, { as, body: Buffer.from(raw), contentType: 'application/json' }, raw.slice(0, 200));
        }
        // Body parsing does not depend on who asks: the malformed bodies once per route.
        if (parsedOnce) continue;
        parsedOnce = true;
        for (const b of malformed) await f.probe(o.method, path, { as, body: b.body, contentType: 'application/json' }, b.what);
        for (const ct of CONTENT_TYPES) await f.probe(o.method, path, { as, body: Buffer.from('{"a":1}'), contentType: ct }, `content-type ${JSON.stringify(ct)}`);
      }
      await f.ensurePrincipals();
    }
    f.assertClean();
  });

  it('every string of every body, in turn: NUL, a lone surrogate, a right-to-left override, 20,000 characters', async () => {
    // Sampling may miss a field; this sweep does not (PostgreSQL refuses a NUL in text: a 500 if one reaches a query).
    const knownValues = Object.values(f.known);
    for (const o of f.ops) {
      if (!o.body) continue;
      const path = f.fill(o.path, {});
      const base = exampleOf(o.body, knownValues);
      for (const as of ['person', 'machine', 'none'] as const) {
        const probe = await f.probe(o.method, path, { as, body: Buffer.from(JSON.stringify(base)), contentType: 'application/json' }, 'example');
        if (probe?.status === 401) continue;
        for (const at of stringPaths(o.body)) {
          for (const v of ['a\u0000b', 'x\ud800', '\u202eexe.pdf', 'é'.repeat(20_000)]) {
            const body = JSON.stringify(setAt(base, at, v));
            await f.probe(o.method, path, { as, body: Buffer.from(body), contentType: 'application/json' }, `${at.join('.')}=${JSON.stringify(v.slice(0, 12))}`);
          }
        }
      }
      await f.ensurePrincipals();
    }
    f.assertClean();
  });

  it('a body over the limit is TOO_LARGE; the server is still up and logged no internal error', async () => {
    const big = Buffer.alloc(JSON_BODY_LIMIT + 1, 0x20);
    big[0] = 0x5b; // '['
    const a = await f.probe('POST', '/api/v1/chunks/exists', { as: 'machine', body: big, contentType: 'application/json' }, 'oversized');
    const b = await f.probe('POST', '/api/v1/auth/login', { as: 'none', body: big, contentType: 'application/json' }, 'oversized');
    for (const r of [a, b]) if (r && r.status !== 413) throw new Error(`an oversized body answered ${r.status}`);
    await f.assertHealthy('fuzz-routes-bodies');
  });
});
