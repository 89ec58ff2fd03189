import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminResetCredentials } from '../src/admin/index.js';
import { assertError, testServer, type TestServer } from './kit.js';
import { nextCode, org, person, type TestPerson } from './people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

/**
 * Sensitive console actions need a fresh second-factor proof (docs/SECURITY.md, "fresh
 * 2FA"): past reauthMinutes (5) since the last proof they answer 403 REAUTH_REQUIRED and
 * change nothing; a new proof (POST /auth/second-factor/totp on the signed-in session) opens
 * them again.
 */
describe('step-up: sensitive actions need a fresh second-factor proof', () => {
  let ts: TestServer;
  let a1: string;
  let resellerAdmin: TestPerson;
  let custAdmin: TestPerson;
  let custAdmin2: TestPerson;
  let viewer: TestPerson;

  /** Lets the last proof of everyone grow old (the sessions stay well within their idle time). */
  const stale = (): void => ts.clock.advance(6 * 60_000);
  const stepUp = async (p: TestPerson): Promise<void> => {
    const r = await p.browser.request('POST', '/auth/second-factor/totp', { json: { code: nextCode(ts, p) } });
    assert.equal(r.status, 200, `step-up: ${r.body.toString()}`);
  };
  const keepAlive = async (...ps: TestPerson[]): Promise<void> => {
    for (const p of ps) assert.equal((await p.browser.request('GET', '/session')).status, 200);
  };
  const count = async (table: 'users' | 'enroll_tokens' | 'outbox', where?: [string, string]): Promise<number> => {
    let q = ts.admin.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n'));
    if (where) q = q.where(where[0] as never, '=', where[1] as never);
    return Number((await q.executeTakeFirstOrThrow()).n);
  };

  before(async () => {
    ts = await testServer();
    await org(ts, 'Revendeur A', 'reseller');
    a1 = await org(ts, 'Cabinet A1', 'customer', 'Revendeur A');
    resellerAdmin = await person(ts, 'reseller-admin', 'Revendeur A');
    custAdmin = await person(ts, 'customer-admin', 'Cabinet A1');
    custAdmin2 = await person(ts, 'customer-admin', 'Cabinet A1');
    viewer = await person(ts, 'customer-viewer', 'Cabinet A1');
  });
  after(() => ts.close());

  it('creating a person (temporary password): REAUTH_REQUIRED without a fresh proof, 201 after one', async () => {
    stale();
    const body = { email: 'nouvelle.personne@example.fr', name: 'Nouvelle Personne', role: 'customer-viewer' };
    const users = await count('users');
    assertError(await custAdmin.browser.request('POST', `/orgs/${a1}/users`, { json: body }), 403, 'REAUTH_REQUIRED');
    assert.equal(await count('users'), users, 'nobody created');
    await stepUp(custAdmin);
    const r = await custAdmin.browser.request('POST', `/orgs/${a1}/users`, { json: body });
    assert.equal(r.status, 201, r.body.toString());
    assert.equal(typeof r.json<{ temporaryPassword: string }>().temporaryPassword, 'string');
  });

  it('creating an enrolment token: REAUTH_REQUIRED without a fresh proof, 201 after one', async () => {
    stale();
    const tokens = await count('enroll_tokens');
    assertError(await custAdmin.browser.request('POST', `/orgs/${a1}/enroll-tokens`, { json: {} }), 403, 'REAUTH_REQUIRED');
    assert.equal(await count('enroll_tokens'), tokens, 'no token issued');
    await stepUp(custAdmin);
    assert.equal((await custAdmin.browser.request('POST', `/orgs/${a1}/enroll-tokens`, { json: {} })).status, 201);
  });

  it("changing an organisation's alert address: REAUTH_REQUIRED without a fresh proof, 200 after one", async () => {
    stale();
    const r0 = await custAdmin.browser.request('PATCH', `/orgs/${a1}`, { json: { alertEmail: 'pirate@example.com' } });
    assertError(r0, 403, 'REAUTH_REQUIRED');
    const o = await ts.admin.db.selectFrom('orgs').select('alert_email').where('id', '=', a1).executeTakeFirstOrThrow();
    assert.notEqual(o.alert_email, 'pirate@example.com', 'unchanged');
    await stepUp(custAdmin);
    const r = await custAdmin.browser.request('PATCH', `/orgs/${a1}`, { json: { alertEmail: 'alertes@cabinet-a1.fr' } });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.json<{ alertEmail: string }>().alertEmail, 'alertes@cabinet-a1.fr');
  });

  it("resetting another person's second factor or password: REAUTH_REQUIRED without a fresh proof", async () => {
    stale();
    await keepAlive(resellerAdmin, custAdmin2, viewer);
    assertError(await custAdmin.browser.request('POST', `/users/${viewer.id}/reset-second-factor`), 403, 'REAUTH_REQUIRED');
    assertError(await custAdmin.browser.request('POST', `/users/${viewer.id}/reset-password`), 403, 'REAUTH_REQUIRED');
  });

  it('a peer of the same role cannot reset credentials; a higher role can, and the person is told by email', async () => {
    await stepUp(custAdmin);
    // customer-admin → customer-admin: refused, nothing sent.
    const mailsBefore = await count('outbox', ['to_address', custAdmin2.email]);
    assertError(await custAdmin.browser.request('POST', `/users/${custAdmin2.id}/reset-second-factor`), 403, 'FORBIDDEN');
    assertError(await custAdmin.browser.request('POST', `/users/${custAdmin2.id}/reset-password`), 403, 'FORBIDDEN');
    assert.equal(await count('outbox', ['to_address', custAdmin2.email]), mailsBefore);
    // customer-admin → customer-viewer: allowed, and the viewer gets an email.
    assert.equal((await custAdmin.browser.request('POST', `/users/${viewer.id}/reset-second-factor`)).status, 200);
    // reseller-admin → customer-admin: allowed (higher role), email queued for each reset.
    await stepUp(resellerAdmin);
    assert.equal((await resellerAdmin.browser.request('POST', `/users/${custAdmin2.id}/reset-second-factor`)).status, 200);
    const reset = await resellerAdmin.browser.request('POST', `/users/${custAdmin2.id}/reset-password`);
    assert.equal(reset.status, 200);
    const temporary = reset.json<{ temporaryPassword: string }>().temporaryPassword;

    const mails = await ts.admin.db.selectFrom('outbox').selectAll().where('to_address', 'in', [viewer.email, custAdmin2.email]).orderBy('created_at').execute();
    const to = (email: string) => mails.filter((m) => m.to_address === email);
    assert.equal(to(viewer.email).length, 1, 'the viewer is told of the second-factor reset');
    assert.equal(to(custAdmin2.email).length, 2, 'the administrator is told of both resets');
    for (const m of mails) {
      assert.equal(m.status, 'pending');
      assert.equal(m.locale, 'fr');
      assert.match(m.subject, /^\[coffre\] /);
      assert.ok(!m.text_body.includes(temporary) && !m.html_body.includes(temporary), 'never the temporary password');
    }
    assert.ok(to(custAdmin2.email).some((m) => /mot de passe/i.test(m.subject)), 'a password-reset email');
    assert.ok(to(custAdmin2.email).some((m) => /second facteur/i.test(m.subject)), 'a second-factor-reset email');
    assert.ok(to(custAdmin2.email).every((m) => m.text_body.includes(resellerAdmin.email)), 'says who did it');
  });

  it("an operator-admin's credentials: no peer resets them in the console; coffre-server does, and emails them", async () => {
    const op1 = await person(ts, 'operator-admin', 'operator');
    const op2 = await person(ts, 'operator-admin', 'operator');
    assertError(await op1.browser.request('POST', `/users/${op2.id}/reset-second-factor`), 403, 'FORBIDDEN');
    const { temporaryPassword } = await adminResetCredentials(ts.admin, op2.email, 'password');
    assert.equal(typeof temporaryPassword, 'string');
    assert.equal((await op2.browser.request('GET', '/session')).status, 401, 'their sessions ended');
    const mails = await ts.admin.db.selectFrom('outbox').selectAll().where('to_address', '=', op2.email).execute();
    assert.equal(mails.length, 1);
    assert.match(mails[0]!.text_body, /coffre-server/);
    assert.ok(!mails[0]!.text_body.includes(temporaryPassword!));
  });
});
