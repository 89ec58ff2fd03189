import assert from 'node:assert/strict';
import https from 'node:https';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DEFAULT_AUTH_THROTTLE } from '../src/datadir.js';
import { collectResponse, testServer, type HttpResponse, type TestServer } from './kit.js';
import { Browser, nextCode, person, type TestPerson } from './people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

/** Counts the answers of a burst: how many attempts were examined (401) and how many refused unexamined (429). */
function tally(rs: readonly HttpResponse[]): { examined: number; throttled: number; other: number[] } {
  const examined = rs.filter((r) => r.status === 401).length;
  const throttled = rs.filter((r) => r.status === 429).length;
  return { examined, throttled, other: rs.map((r) => r.status).filter((s) => s !== 401 && s !== 429) };
}

/**
 * Sends the same kind of request `n` times at once over `n` connections opened (and warmed)
 * beforehand, so that they reach the server together rather than one TLS handshake apart.
 */
async function burst(ts: TestServer, n: number, path: string, body: (i: number) => unknown, headers: Record<string, string> = {}): Promise<HttpResponse[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: n, ca: ts.server.certPem });
  const send = (method: string, p: string, payload?: string): Promise<HttpResponse> =>
    new Promise((resolve, reject) => {
      const req = https.request(new URL(`/api/v1${p}`, ts.server.url), { method, agent, headers: payload === undefined ? headers : { ...headers, 'content-type': 'application/json' } }, (res) => {
        collectResponse(res).then(resolve, reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  try {
    await Promise.all(Array.from({ length: n }, () => send('GET', '/health')));
    return await Promise.all(Array.from({ length: n }, (_, i) => send('POST', path, JSON.stringify(body(i)))));
  } finally {
    agent.destroy();
  }
}

async function rowCount(ts: TestServer, table: 'audit_log' | 'auth_throttle'): Promise<number> {
  const r = await ts.admin.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function throttleRow(ts: TestServer, key: string) {
  return ts.admin.db.selectFrom('auth_throttle').selectAll().where('key', '=', key).executeTakeFirst();
}

describe('guessing protection holds under concurrency (attempts reserved before they are examined)', () => {
  // A server per test: each starts with clean counters (they all come from 127.0.0.1).
  let ts: TestServer;
  beforeEach(async () => {
    ts = await testServer();
  });
  afterEach(() => ts.close());

  it('a burst of concurrent wrong passwords: at most accountFreeFailures are examined, the rest answer 429', async () => {
    const victim = await person(ts, 'operator-admin', 'operator');
    const n = 20;
    const rs = await burst(ts, n, '/auth/login', (i) => ({ email: victim.email, password: `Mauvais-Essai-${i}-xyz` }));
    const t = tally(rs);
    assert.deepEqual(t.other, [], 'only 401 and 429 answers');
    assert.ok(t.examined <= DEFAULT_AUTH_THROTTLE.accountFreeFailures, `examined ${t.examined} of ${n} concurrent guesses (limit ${DEFAULT_AUTH_THROTTLE.accountFreeFailures})`);
    assert.equal(t.examined + t.throttled, n);
    const row = await throttleRow(ts, `account:${victim.email}`);
    assert.equal(row?.failures, t.examined, 'every examined guess is counted, and only those');
  });

  it('a burst of concurrent wrong TOTP codes at the second-factor stage: at most accountFreeFailures are examined', async () => {
    const p = await person(ts, 'technician', 'operator');
    const b = new Browser(ts);
    assert.equal((await b.request('POST', '/auth/login', { json: { email: p.email, password: p.password } })).status, 200);
    const good = nextCode(ts, p);
    const wrong = (i: number): string => String((Number(good) + 1 + i) % 1_000_000).padStart(6, '0');
    const n = 20;
    const rs = await burst(ts, n, '/auth/second-factor/totp', (i) => ({ code: wrong(i) }), { cookie: b.cookie!, 'x-csrf-token': b.csrf! });
    const t = tally(rs);
    assert.deepEqual(t.other, [], 'only 401 and 429 answers');
    assert.ok(t.examined <= DEFAULT_AUTH_THROTTLE.accountFreeFailures, `examined ${t.examined} of ${n} concurrent codes (limit ${DEFAULT_AUTH_THROTTLE.accountFreeFailures})`);
  });

  it('a right password releases its reservation: sign-in then second factor are not delayed by it', async () => {
    const p = await person(ts, 'technician', 'operator');
    for (let i = 0; i < 2; i++) {
      const b = new Browser(ts);
      assert.equal((await b.request('POST', '/auth/login', { json: { email: p.email, password: p.password } })).status, 200, `sign-in ${i + 1}`);
      assert.equal((await b.request('POST', '/auth/second-factor/totp', { json: { code: nextCode(ts, p) } })).status, 200, `second factor ${i + 1}`);
    }
    assert.equal(await throttleRow(ts, `account:${p.email}`), undefined, 'nothing left on the account key');
    const ip = await throttleRow(ts, 'ip:127.0.0.1');
    assert.ok(!ip?.locked_until, 'right answers leave the address free');
  });

  it('throttled attempts are answered without a write: the counter does not move and the audit trail gains at most one entry', async () => {
    const victim: TestPerson = await person(ts, 'technician', 'operator');
    const guess = (): Promise<HttpResponse> => new Browser(ts).request('POST', '/auth/login', { json: { email: victim.email, password: 'Mauvais-Essai-Encore' } });
    for (let i = 0; i < DEFAULT_AUTH_THROTTLE.accountFreeFailures; i++) assert.equal((await guess()).status, 401);
    const before = await throttleRow(ts, `account:${victim.email}`);
    const ipBefore = await throttleRow(ts, 'ip:127.0.0.1');
    const auditBefore = await rowCount(ts, 'audit_log');
    const rs = await Promise.all(Array.from({ length: 10 }, () => guess()));
    assert.deepEqual(
      rs.map((r) => r.status),
      Array.from({ length: 10 }, () => 429),
    );
    assert.deepEqual(await throttleRow(ts, `account:${victim.email}`), before, 'the account counter is untouched');
    assert.deepEqual(await throttleRow(ts, 'ip:127.0.0.1'), ipBefore, 'the address counter is untouched');
    assert.ok((await rowCount(ts, 'audit_log')) - auditBefore <= 1, 'one auth.throttled entry at most, not one per refused attempt');
  });
});
