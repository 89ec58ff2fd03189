/**
 * Bounded fuzz run of every route of a live server (fuzz-routes-kit.ts) through its URL and
 * headers: hostile path parameters (invalid percent-encoding, NUL, encoded surrogates, '..',
 * 3,000 characters), hostile query values and shapes (repeated, bracketed, __proto__), every
 * method; Range headers on a real pack; pack uploads of arbitrary and mutated bytes; snapshot
 * commits with hostile reference lists. Never 5xx; every 4xx documented.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPack, snapshotRequest, testKeys } from './kit.js';
import { EDGE_STRINGS, RAW_PARAMS, RouteFuzzer, SAMPLES, SEED } from './fuzz-routes-kit.js';

describe('fuzzing the URLs and headers of a live server', () => {
  const f = new RouteFuzzer();
  before(() => f.start());
  after(() => f.close());

  it('path and query parameters: hostile values on every route, every method', async () => {
    for (const [i, o] of f.ops.entries()) {
      const pathParams = o.params.filter((p) => p.in === 'path');
      const queryParams = o.params.filter((p) => p.in === 'query');
      const destructive = /revoke|reissue|suspend|reset-|logout|sessions|webauthn\/\{/.test(o.path) || o.method === 'DELETE';
      const body = o.body ? Buffer.from('{}') : undefined;
      const ct = o.body ? 'application/json' : undefined;
      const variants: string[] = [];
      for (const v of RAW_PARAMS) if (pathParams.length) variants.push(f.fill(o.path, Object.fromEntries(pathParams.map((p) => [p.name, v]))));
      for (const v of fc.sample(fc.constantFrom(...EDGE_STRINGS.filter((s) => s.length < 1000)), { numRuns: SAMPLES, seed: SEED + i })) {
        const enc = encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\ufffd'));
        if (pathParams.length && !destructive) variants.push(f.fill(o.path, { [pathParams[i % pathParams.length]!.name]: enc }));
        if (queryParams.length) {
          const q = queryParams.map((p, k) => `${encodeURIComponent(p.name)}=${k === i % queryParams.length ? enc : f.plausible(p)}`).join('&');
          variants.push(`${f.fill(o.path, {})}?${q}`);
        }
      }
      if (queryParams.length) {
        const p = queryParams[0]!.name;
        variants.push(`${f.fill(o.path, {})}?${p}=1&${p}=2`, `${f.fill(o.path, {})}?__proto__=1&constructor=2`, `${f.fill(o.path, {})}?${p}=%zz`, `${f.fill(o.path, {})}?${p}[a]=1`);
        for (const v of ['-1', '0', '99999', '1e999', '2026-03-02T09:00:00.000Z', '["x"]', '[1,2,3]', '["\u0000"]', '{}', 'null']) variants.push(`${f.fill(o.path, {})}?${p}=${encodeURIComponent(v)}`);
        for (const q of queryParams) {
          // The hostile value in one parameter, plausible values in the others (a required enum, say), so that it reaches the handler.
          const others = queryParams.filter((x) => x !== q).map((x) => `&${x.name}=${f.plausible(x)}`).join('');
          for (const v of ['%00', 'a%00b', '%ED%A0%80', '%E2%80%AE', encodeURIComponent('é'.repeat(300))]) variants.push(`${f.fill(o.path, {})}?${q.name}=${v}${others}`);
        }
      }
      for (const as of ['person', 'machine', 'none'] as const) {
        // A principal refused (401) on the plain route is refused before its parameters are read: a few variants suffice.
        const plain = await f.probe(o.method, f.fill(o.path, {}), { as, body, contentType: ct });
        const some = as !== 'person' && plain?.status === 401 ? variants.filter((_, k) => k % 8 === 0) : variants;
        for (const v of some) await f.probe(o.method, v, { as, body, contentType: ct });
      }
      await f.ensurePrincipals();
    }
    f.assertClean();
  });

  it('Range headers, pack uploads and snapshot reference lists from a machine', async () => {
    const packPath = `/api/v1/packs/${f.known.packId}`;
    const ranges = fc.sample(
      fc.oneof(
        fc.tuple(fc.nat({ max: 20_000 }), fc.nat({ max: 20_000 })).map(([a, b]) => `bytes=${a}-${b}`),
        fc.nat({ max: 20_000 }).map((n) => `bytes=-${n}`),
        fc.nat({ max: 20_000 }).map((n) => `bytes=${n}-`),
        fc.constantFrom('bytes=0-0,5-6', 'bytes=', 'bytes=-', 'items=0-1', 'bytes=99999999999999999999-', 'bytes=1-0', ' bytes=0-1 ', 'bytes=0x10-'),
        fc.string({ maxLength: 20 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
      ),
      { numRuns: SAMPLES * 10, seed: SEED },
    );
    for (const range of ranges) {
      const r = await f.send('GET', packPath, { as: 'machine', headers: { range } });
      f.check(`GET pack range ${range}`, r);
      if (r && r.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(r.headers['content-range']));
        assert.ok(m, `206 without a valid content-range for ${range}`);
        assert.equal(r.body.length, Number(m[2]) - Number(m[1]) + 1);
      } else if (r) assert.ok([200, 416].includes(r.status), `range ${range}: ${r.status}`);
    }
    // Pack uploads: arbitrary and mutated bytes under arbitrary and real ids.
    const keys = testKeys();
    const good = buildPack(keys);
    const bodies = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 500 }).map((b) => Buffer.from(b)),
        fc.tuple(fc.nat(), fc.nat({ max: 7 })).map(([pos, bit]) => {
          const b = Buffer.from(good.data);
          b[pos % b.length]! ^= 1 << bit;
          return b;
        }),
        fc.nat().map((n) => good.data.subarray(0, n % good.data.length)),
      ),
      { numRuns: SAMPLES * 3, seed: SEED + 1 },
    );
    for (const [j, b] of bodies.entries()) {
      const id = j % 2 ? good.id : (f.known.packId as string);
      f.check(`PUT pack (${b.length} bytes)`, await f.send('PUT', `/api/v1/packs/${id}`, { as: 'machine', body: b, contentType: 'application/octet-stream' }));
      f.check(`PUT pack as JSON (${b.length} bytes)`, await f.send('PUT', `/api/v1/packs/${id}`, { as: 'machine', body: b, contentType: 'application/json' }));
    }
    // Snapshot commits with hostile reference lists (base64 of mutated, unsorted, odd-length lists).
    const refs = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64')),
        fc.string({ maxLength: 60 }),
        fc.constantFrom('', '====', 'A', 'AA==\n', ' AAAA', 'AAAA'.repeat(8)),
      ),
      { numRuns: SAMPLES * 3, seed: SEED + 2 },
    );
    for (const r of refs) {
      const req = snapshotRequest(keys, f.machineId, good.chunkIds);
      f.check(`POST snapshot refs ${JSON.stringify(r).slice(0, 60)}`, await f.send('POST', '/api/v1/snapshots', { as: 'machine', body: Buffer.from(JSON.stringify({ ...req, refs: r })), contentType: 'application/json' }));
    }
    f.assertClean();
  });

  it('hostile credentials: Authorization, session cookie and CSRF headers', async () => {
    const tokens = ['', ' ', 'Bearer', 'Bearer ', 'Bearer x', `Bearer ${'A'.repeat(8000)}`, 'Bearer cfm_\u00ff\u00fe', 'Basic dGVzdDp0ZXN0', 'bearer cfm_', 'Bearer  cfm_x', 'Bearer cfm_x, Bearer cfm_y', 'Bearer ../../x', 'Bearer %00'];
    const cookies = ['', '=', '__Host-coffre_session=', '__Host-coffre_session=x', `__Host-coffre_session=${'x'.repeat(4000)}`, '__Host-coffre_session=a; __Host-coffre_session=b', '__Host-coffre_session=%00', '__Host-coffre_session=%zz', 'a=b;;;c', '__Host-coffre_session="x"'];
    const routes: [string, string, Buffer | undefined][] = [
      ['GET', '/api/v1/repo', undefined],
      ['POST', '/api/v1/chunks/exists', Buffer.from('{"ids":[]}')],
      ['GET', '/api/v1/session', undefined],
      ['GET', `/api/v1/orgs/${f.known.orgId}/users`, undefined],
      ['POST', '/api/v1/me/recovery-codes', undefined],
    ];
    for (const [method, path, body] of routes) {
      const ct = body ? 'application/json' : undefined;
      for (const authorization of tokens) await f.probe(method, path, { as: 'none', body, contentType: ct, headers: { authorization } }, `authorization ${JSON.stringify(authorization.slice(0, 30))}`);
      for (const cookie of cookies) {
        await f.probe(method, path, { as: 'none', body, contentType: ct, headers: { cookie } }, `cookie ${JSON.stringify(cookie.slice(0, 40))}`);
        await f.probe(method, path, { as: 'none', body, contentType: ct, headers: { cookie, 'x-csrf-token': cookie.slice(0, 64) } }, `cookie+csrf ${JSON.stringify(cookie.slice(0, 40))}`);
      }
      // The real session with a wrong or missing CSRF token, and the real machine credential with a session cookie beside it.
      for (const csrf of ['', 'x', '\u00e9', 'A'.repeat(5000)]) await f.probe(method, path, { as: 'person', body, contentType: ct, headers: { 'x-csrf-token': csrf } }, `csrf ${JSON.stringify(csrf.slice(0, 20))}`);
      await f.probe(method, path, { as: 'machine', body, contentType: ct, headers: { cookie: '__Host-coffre_session=x' } }, 'machine + cookie');
    }
    f.assertClean();
  });

  it('the server is still up and logged no internal error', async () => {
    await f.assertHealthy('fuzz-routes-params');
  });
});
