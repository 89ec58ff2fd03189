import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { PRE_AUTH_BODY_LIMIT, PRE_AUTH_BODY_TIMEOUT_MS } from '../src/http/pre-auth.js';
import { assertError, testServer, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

async function rowCount(ts: TestServer, table: 'audit_log' | 'auth_throttle' | 'machines' | 'enroll_tokens'): Promise<number> {
  const r = await ts.admin.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * Slow-loris: the headers promise a body that then arrives one byte a second. Resolves with
 * the milliseconds until the server closes the connection (or `giveUpMs` if it never does).
 */
function slowBody(ts: TestServer, path: string, giveUpMs: number): Promise<{ closedAfterMs: number; answer: string }> {
  const { host, port } = ts.server;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answer = '';
    const socket = tls.connect({ host, port, rejectUnauthorized: false }, () => {
      socket.write(`POST /api/v1${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{`);
      const drip = setInterval(() => socket.write(' '), 1000);
      const giveUp = setTimeout(() => {
        socket.destroy();
      }, giveUpMs);
      socket.on('close', () => {
        clearInterval(drip);
        clearTimeout(giveUp);
        resolve({ closedAfterMs: Date.now() - started, answer });
      });
    });
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', (e) => (answer ? undefined : reject(e)));
  });
}

describe('routes open before sign-in: small bodies, short waits', () => {
  let ts: TestServer;
  before(async () => {
    ts = await testServer();
  });
  after(() => ts.close());

  it('an oversized body to /auth/login or /enroll gets 413 TOO_LARGE as JSON, and nothing is written', async () => {
    const before = { audit: await rowCount(ts, 'audit_log'), throttle: await rowCount(ts, 'auth_throttle'), machines: await rowCount(ts, 'machines') };
    const big = 'x'.repeat(PRE_AUTH_BODY_LIMIT + 1);
    const login = await ts.request('POST', '/auth/login', { json: { email: 'a@example.fr', password: big } });
    const e = assertError(login, 413, 'TOO_LARGE');
    assert.match(e.message, /too large/);
    assert.match(String(login.headers['content-type']), /application\/json/);
    assertError(await ts.request('POST', '/enroll', { json: { token: big, machineName: 'poste', hostname: 'h', os: 'linux', agentVersion: '1' } }), 413, 'TOO_LARGE');
    assertError(await ts.request('POST', '/replication/join', { json: { token: big } }), 413, 'TOO_LARGE');
    assert.deepEqual({ audit: await rowCount(ts, 'audit_log'), throttle: await rowCount(ts, 'auth_throttle'), machines: await rowCount(ts, 'machines') }, before);
    // A body within the limit is examined as usual.
    assertError(await ts.request('POST', '/auth/login', { json: { email: 'a@example.fr', password: 'x'.repeat(1000) } }), 401, 'UNAUTHORIZED');
  });

  it(`a body trickled in (slow-loris) is cut after ${PRE_AUTH_BODY_TIMEOUT_MS / 1000} s on /auth/login and /enroll`, async () => {
    const giveUp = PRE_AUTH_BODY_TIMEOUT_MS + 8000;
    const [login, enroll] = await Promise.all([slowBody(ts, '/auth/login', giveUp), slowBody(ts, '/enroll', giveUp)]);
    for (const [what, r] of [
      ['login', login],
      ['enroll', enroll],
    ] as const) {
      assert.ok(r.closedAfterMs < PRE_AUTH_BODY_TIMEOUT_MS + 4000, `${what}: the connection stayed open ${r.closedAfterMs} ms`);
      assert.ok(r.closedAfterMs >= PRE_AUTH_BODY_TIMEOUT_MS - 500, `${what}: cut too early (${r.closedAfterMs} ms)`);
      assert.match(r.answer, /^HTTP\/1\.1 408/, `${what}: answered ${JSON.stringify(r.answer.slice(0, 200))}`);
      assert.match(r.answer, /"code":"REQUEST_TIMEOUT"/);
    }
  });
});
