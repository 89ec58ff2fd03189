import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SoftAuthenticator } from './soft-authenticator.js';
import { assertError, testServer, type TestServer } from './kit.js';
import { Browser, nextCode, org, person, type TestPerson } from './people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

interface Entry {
  seq: number;
  action: string;
  orgId: string | null;
  actorLabel: string | null;
  outcome: string;
  time: string;
}

describe('people API (in-process HTTPS server, test clock)', () => {
  let ts: TestServer;
  let op: TestPerson;
  let resellerAdmin: TestPerson;
  let custAdmin: TestPerson;
  let a1: string;
  let b1: string;

  before(async () => {
    ts = await testServer();
    await org(ts, 'Revendeur A', 'reseller');
    await org(ts, 'Revendeur B', 'reseller');
    a1 = await org(ts, 'Cabinet A1', 'customer', 'Revendeur A');
    b1 = await org(ts, 'Cabinet B1', 'customer', 'Revendeur B');
    op = await person(ts, 'operator-admin', 'operator');
    resellerAdmin = await person(ts, 'reseller-admin', 'Revendeur A');
    custAdmin = await person(ts, 'customer-admin', 'Cabinet A1');
  });
  after(() => ts.close());

  describe('access review', () => {
    it('reports people, roles, last sign-in and second factor; marking it clears the overdue flag', async () => {
      await person(ts, 'customer-viewer', 'Cabinet A1');
      const r = await custAdmin.browser.request('GET', `/orgs/${a1}/access-review`);
      assert.equal(r.status, 200, r.body.toString());
      const report = r.json<{ users: { email: string; role: string; secondFactor: string; lastLoginAt: string | null }[]; overdue: boolean; lastReview: unknown }>();
      assert.equal(report.users.length, 2);
      assert.ok(report.users.every((u) => u.secondFactor === 'totp' && u.lastLoginAt !== null));
      assert.deepEqual(report.users.map((u) => u.role).sort(), ['customer-admin', 'customer-viewer']);
      assert.equal(report.lastReview, null);
      assert.equal(report.overdue, false, 'a new organisation is not overdue');

      ts.clock.advance(183 * 86_400_000); // six months later
      // Sessions are long gone by then: sign in again.
      const fresh = await signIn(custAdmin);
      const overdue = await fresh.request('GET', '/orgs');
      const mine = overdue.json<{ orgs: { id: string; accessReviewOverdue: boolean }[] }>().orgs.find((o) => o.id === a1)!;
      assert.equal(mine.accessReviewOverdue, true);
      const mark = await fresh.request('POST', `/orgs/${a1}/access-review`, { json: { note: 'revue semestrielle' } });
      assert.equal(mark.status, 201, mark.body.toString());
      const after = mark.json<{ overdue: boolean; lastReview: { reviewerName: string } }>();
      assert.equal(after.overdue, false);
      assert.match(after.lastReview.reviewerName, /Personne/);
    });
  });

  async function signIn(p: TestPerson): Promise<Browser> {
    const b = new Browser(ts);
    assert.equal((await b.request('POST', '/auth/login', { json: { email: p.email, password: p.password } })).status, 200);
    const t = await b.request('POST', '/auth/second-factor/totp', { json: { code: nextCode(ts, p) } });
    assert.equal(t.status, 200, t.body.toString());
    return b;
  }

  describe('audit trail API', () => {
    it('filters by action, outcome, actor and organisation, pages with a cursor, and records its own reads', async () => {
      const browser = await signIn(op);
      const all = await browser.request('GET', '/audit?limit=5');
      assert.equal(all.status, 200);
      const page1 = all.json<{ entries: Entry[]; nextBefore: number | null }>();
      assert.equal(page1.entries.length, 5);
      assert.equal(page1.entries[0]!.action, 'audit.read', 'the read itself is the newest entry');
      assert.ok(page1.entries[0]!.seq > page1.entries[4]!.seq, 'newest first');
      const page2 = (await browser.request('GET', `/audit?limit=5&before=${page1.nextBefore}`)).json<{ entries: Entry[] }>();
      assert.ok(page2.entries.every((e) => e.seq < page1.entries[4]!.seq));

      const logins = (await browser.request('GET', '/audit?action=auth.&limit=500')).json<{ entries: Entry[] }>().entries;
      assert.ok(logins.length > 0 && logins.every((e) => e.action.startsWith('auth.')));
      const mine = (await browser.request('GET', `/audit?actor=${encodeURIComponent(custAdmin.email)}&limit=500`)).json<{ entries: Entry[] }>().entries;
      assert.ok(mine.length > 0 && mine.every((e) => e.actorLabel === custAdmin.email));
      const onB1 = (await browser.request('GET', `/audit?orgId=${b1}&limit=500`)).json<{ entries: Entry[] }>().entries;
      assert.ok(onB1.length > 0 && onB1.every((e) => e.orgId === b1));
      const future = (await browser.request('GET', '/audit?since=2999-01-01T00:00:00Z')).json<{ entries: Entry[] }>().entries;
      assert.deepEqual(future, []);
      assertError(await browser.request('GET', '/audit?limit=abc'), 400, 'BAD_REQUEST');
    });

    it('a customer administrator sees only entries about its organisation; another tenant filter is 404', async () => {
      const browser = await signIn(custAdmin);
      const r = await browser.request('GET', '/audit?limit=500');
      assert.equal(r.status, 200, r.body.toString());
      const entries = r.json<{ entries: Entry[] }>().entries;
      assert.ok(entries.length > 0);
      assert.ok(entries.every((e) => e.orgId === a1), JSON.stringify(entries.filter((e) => e.orgId !== a1).slice(0, 3)));
      assertError(await browser.request('GET', `/audit?orgId=${b1}`), 404, 'NOT_FOUND');
    });

    it('exports CSV and JSON of the caller\'s view', async () => {
      const browser = await signIn(resellerAdmin);
      const csv = await browser.request('GET', '/audit/export?format=csv');
      assert.equal(csv.status, 200, csv.body.toString());
      assert.match(String(csv.headers['content-type']), /^text\/csv/);
      assert.match(String(csv.headers['content-disposition']), /attachment; filename="coffre-audit-.*\.csv"/);
      assert.match(csv.body.toString(), /^seq,time,actor_type/);
      const json = await browser.request('GET', '/audit/export?format=json');
      const entries = json.json<Entry[]>();
      assert.ok(entries.length > 0);
      assert.ok(!entries.some((e) => e.orgId === b1), 'nothing about reseller B');
    });

    it('retention purges old entries and the chain still verifies from its anchor', async () => {
      const browser = await signIn(op);
      const before = (await browser.request('GET', '/audit/verify')).json<{ ok: boolean; count: number }>();
      assert.equal(before.ok, true);
      ts.clock.advance(400 * 86_400_000);
      const b2 = await signIn(op); // new entries, a year after the others
      const purged = await ts.admin.audit.purgeBefore(new Date(ts.clock.now().getTime() - 365 * 86_400_000).toISOString());
      assert.ok(purged >= before.count, `purged ${purged} of ${before.count}`);
      const after = (await b2.request('GET', '/audit/verify')).json<{ ok: boolean; count: number }>();
      assert.equal(after.ok, true);
      assert.ok(after.count < before.count);
    });
  });

  describe('WebAuthn security key', () => {
    it('registers as a first factor, signs in, refuses a replayed or cloned assertion, and serves re-authentication', async () => {
      const { adminCreateUser } = await import('../src/admin/index.js');
      const { temporaryPassword } = await adminCreateUser(ts.admin, { email: 'cle@example.fr', name: 'Utilisatrice Clé', role: 'customer-viewer', orgName: 'Cabinet A1' });
      const b = new Browser(ts);
      await b.request('POST', '/auth/login', { json: { email: 'cle@example.fr', password: temporaryPassword } });
      const password = 'Hautbois-Lilas-Granit-42';
      assert.equal((await b.request('POST', '/me/password', { json: { currentPassword: temporaryPassword, newPassword: password } })).status, 200);
      const origin = ts.server.url;
      const key = new SoftAuthenticator({ origin, rpId: '127.0.0.1' });
      const opts = await b.request('POST', '/me/webauthn/register/options');
      assert.equal(opts.status, 200, opts.body.toString());
      const reg = await b.request('POST', '/me/webauthn/register', { json: { response: await key.register(opts.json(), origin), name: 'YubiKey' } });
      assert.equal(reg.status, 200, reg.body.toString());
      assert.equal(reg.json<{ recoveryCodes: string[] }>().recoveryCodes.length, 10, 'first factor: recovery codes given');
      assert.equal((await b.request('GET', '/session')).json<{ stage: string }>().stage, 'full');

      const c = new Browser(ts);
      await c.request('POST', '/auth/login', { json: { email: 'cle@example.fr', password } });
      assertError(await c.request('GET', '/orgs'), 403, 'SECOND_FACTOR_REQUIRED');
      const aopts = await c.request('POST', '/auth/second-factor/webauthn/options');
      assert.equal(aopts.status, 200);
      const assertion = await key.authenticate(aopts.json(), origin);
      assert.equal((await c.request('POST', '/auth/second-factor/webauthn', { json: { response: assertion } })).status, 200);
      assert.equal((await c.request('GET', '/orgs')).status, 200);

      // The same assertion again: its challenge was used up.
      assertError(await c.request('POST', '/auth/second-factor/webauthn', { json: { response: assertion } }), 401, 'UNAUTHORIZED');
      // A clone with an older counter: refused even with a fresh challenge.
      const o2 = await c.request('POST', '/auth/second-factor/webauthn/options');
      key.setCounter(0);
      assertError(await c.request('POST', '/auth/second-factor/webauthn', { json: { response: await key.authenticate(o2.json(), origin) } }), 401, 'UNAUTHORIZED');
      // Re-authentication with the key before a destructive action.
      key.setCounter(100);
      ts.clock.advance(10 * 60_000);
      const fresh = new Browser(ts);
      await fresh.request('POST', '/auth/login', { json: { email: 'cle@example.fr', password } });
      const o3 = await fresh.request('POST', '/auth/second-factor/webauthn/options');
      assert.equal((await fresh.request('POST', '/auth/second-factor/webauthn', { json: { response: await key.authenticate(o3.json(), origin) } })).status, 200);
      assert.equal((await fresh.request('POST', '/me/recovery-codes')).status, 200);
      ts.clock.advance(6 * 60_000);
      assertError(await fresh.request('POST', '/me/recovery-codes'), 403, 'REAUTH_REQUIRED');
    });
  });
});

describe('audit retention at server start', () => {
  it('purges entries older than auditRetentionDays, records the purge, and the chain still verifies', async () => {
    const { tempDir } = await import('./kit.js');
    const { prepareDataDir } = await import('./backends.js');
    const { openAdmin } = await import('../src/admin/index.js');
    const { startServer } = await import('../src/server.js');
    const path = await import('node:path');
    const { writeFile, mkdir } = await import('node:fs/promises');
    const tmp = await tempDir();
    try {
      const dataDir = path.join(tmp.dir, 'data');
      await mkdir(dataDir, { recursive: true });
      await writeFile(path.join(dataDir, 'server.json'), JSON.stringify({ v: 1, auditRetentionDays: 30 }));
      await prepareDataDir(dataDir);
      let t = Date.parse('2026-01-01T00:00:00Z');
      const admin = await openAdmin(dataDir, () => new Date(t));
      for (let i = 0; i < 5; i++) await admin.audit.append({ actorType: 'system', actorId: null, actorLabel: null, orgId: null, action: 'test.old', target: null, ip: null, userAgent: null, requestId: null, outcome: 'success', details: null });
      t = Date.parse('2026-03-01T00:00:00Z');
      await admin.audit.append({ actorType: 'system', actorId: null, actorLabel: null, orgId: null, action: 'test.recent', target: null, ip: null, userAgent: null, requestId: null, outcome: 'success', details: null });
      await admin.close();
      const logs: unknown[] = [];
      const server = await startServer({ dataDir, listen: '127.0.0.1:0', clock: () => new Date(t), log: (e) => logs.push(e) });
      await server.close();
      const again = await openAdmin(dataDir, () => new Date(t));
      try {
        const actions: string[] = [];
        for await (const e of again.audit.all()) actions.push(e.action);
        assert.deepEqual(actions.filter((a) => a.startsWith('test.')), ['test.recent'], 'the five old entries are gone');
        assert.ok(actions.includes('audit.purge'));
        const v = await again.audit.verify();
        assert.equal(v.ok, true, JSON.stringify(v));
      } finally {
        await again.close();
      }
    } finally {
      await tmp.cleanup();
    }
  });
});
