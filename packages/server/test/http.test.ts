import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { HealthResponse } from '@coffre/core';
import { COFFRE_VERSION } from '@coffre/core';
import { adminCreateEnrollToken } from '../src/admin/index.js';
import { assertError, buildCustomer, buildPack, eventually, testKeys, type HttpResponse, type TestMachine, type TestServer, serverWithMachine } from './kit.js';

function assertSecurityHeaders(res: HttpResponse): void {
  assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.equal(res.headers['referrer-policy'], 'no-referrer');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
}

describe('HTTP surface', () => {
  let ts: TestServer;
  let m: TestMachine;
  before(async () => {
    ({ ts, m } = await serverWithMachine());
  });
  after(() => ts.close());

  it('serves health without authentication', async () => {
    const res = await ts.request('GET', '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json<HealthResponse>(), { ok: true, version: COFFRE_VERSION });
  });

  it('sends the security headers on successes and on every kind of error', async () => {
    const pack = buildPack(testKeys());
    const responses = [
      await ts.request('GET', '/health'),
      await m.request('GET', '/repo'),
      await m.request('PUT', `/packs/${pack.id}`, { body: pack.data }),
      await m.request('GET', `/packs/${pack.id}`),
      await ts.request('GET', '/repo'), // 401
      await ts.request('GET', '/nope'), // 404
      await m.request('POST', '/chunks/exists', { json: { ids: ['x'] } }), // 400
    ];
    for (const res of responses) assertSecurityHeaders(res);
    assert.equal(new Set(responses.map((r) => r.headers['x-request-id'])).size, responses.length, 'request ids must be unique');
  });

  it('answers unknown routes with a catalogue 404', async () => {
    assertError(await ts.request('GET', '/nope'), 404, 'NOT_FOUND');
    assertError(await m.request('DELETE', '/snapshots'), 404, 'NOT_FOUND');
  });

  it('refuses JSON bodies over 64 MiB with 413', async () => {
    const res = await m.request('POST', '/chunks/exists', { body: Buffer.alloc(64 * 1024 * 1024 + 1, 0x20), headers: { 'content-type': 'application/json' } });
    assertError(res, 413, 'TOO_LARGE');
  });

  it('refuses octet-stream bodies on JSON routes', async () => {
    assertError(await m.request('POST', '/chunks/exists', { body: Buffer.from('{"ids":[]}') }), 400, 'BAD_REQUEST');
  });

  it('never logs authorization headers, tokens, credentials or bodies', async () => {
    const customer = await buildCustomer(ts);
    const { token } = await adminCreateEnrollToken(ts.admin, customer.name);
    const before = ts.logs.length;
    const res = await ts.request('POST', '/enroll', { json: { token, machineName: 'journal', hostname: 'secret-hostname', os: 'linux', agentVersion: '1' } });
    const { credential } = res.json<{ credential: string }>();
    await ts.request('GET', '/machines', { token: credential });
    await ts.request('GET', '/machines', { token: `cfm_${'z'.repeat(43)}` });
    // The line is written once the response has gone out, which may be after the client read it.
    await eventually('the third request is logged', async () => ts.logs.length - before >= 3);
    const lines = ts.logs.slice(before).map((e) => JSON.stringify(e));
    assert.equal(lines.length, 3, 'one line per request');
    for (const line of lines) {
      for (const secret of [token, credential, 'z'.repeat(43), 'secret-hostname', 'Bearer', 'authorization']) {
        assert.ok(!line.toLowerCase().includes(secret.toLowerCase()), `log line leaks ${secret}: ${line}`);
      }
    }
    assert.match(lines[1]!, /"path":"\/api\/v1\/machines".*"status":200/);
  });

  it('speaks HTTPS only', async () => {
    const result = await new Promise<string>((resolve) => {
      const req = http.get(`http://127.0.0.1:${ts.server.port}/api/v1/health`, (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.on('error', (e) => resolve(`error ${e.message}`));
    });
    assert.ok(!result.startsWith('status 200'), `plain HTTP got ${result}`);
  });
});
