// Cheap Argon2 for the spawned servers and CLI (inherited through the environment): real
// cost would make every sign-in take a noticeable fraction of a second.
process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { base32Decode } from '@coffre/core';
import { TestServer, expectCode, tempDir } from '../src/kit.js';
import { PeopleClient, nextTotp, signIn, signUp, totp, totpAt, type Person, type Reply } from '../src/people.js';

/**
 * The people's control plane against real `coffre-server` processes over HTTPS, as
 * specified by docs/SECURITY.md: first start, password policy, session stages and cookie,
 * TOTP and recovery codes, guessing protection, CSRF, security headers, session life,
 * re-authentication, disabled people, suspended organisations and the separation of
 * machine and people credentials.
 */

interface ApiErrorBody {
  readonly error: { code: string; message: string; messageFr: string; requestId: string; details?: Record<string, unknown> };
}

interface AuditRow {
  readonly seq: number;
  readonly actorType: string;
  readonly actorLabel: string | null;
  readonly action: string;
  readonly outcome: string;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly requestId: string | null;
  readonly details: Record<string, unknown> | null;
}

const STEP_MS = 30_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const currentStep = (): number => Math.floor(Date.now() / STEP_MS);
const unique = (): string => randomBytes(4).toString('hex');

/** Starts a server whose data directory holds `server.json` with these overrides before its first start. */
async function startWith(overrides: Record<string, unknown> | null): Promise<TestServer> {
  const dir = tempDir('people');
  if (overrides !== null) writeFileSync(join(dir, 'server.json'), `${JSON.stringify({ v: 1, ...overrides })}\n`);
  return TestServer.start(dir);
}

function errorOf(r: Reply): ApiErrorBody['error'] {
  let body: ApiErrorBody;
  try {
    body = r.json<ApiErrorBody>();
  } catch {
    assert.fail(`expected a JSON error body, got ${r.status} ${r.text}`);
  }
  assert.ok(body.error, `expected an error body, got ${r.status} ${r.text}`);
  return body.error;
}

/** Asserts status and error code; returns the error for further checks. */
function expectError(r: Reply, status: number, code: string, what = ''): ApiErrorBody['error'] {
  assert.equal(r.status, status, `${what} expected ${status} ${code}, got ${r.status} ${r.text}`);
  const e = errorOf(r);
  assert.equal(e.code, code, `${what} ${r.text}`);
  assert.equal(typeof e.message, 'string');
  assert.equal(typeof e.messageFr, 'string');
  return e;
}

function expectOk(r: Reply, what: string, status = 200): void {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
}

/** The body without the request id, to compare two answers that must not differ. */
function withoutRequestId(r: Reply): unknown {
  const b = JSON.parse(r.text) as { error?: Record<string, unknown> };
  if (b.error) delete b.error.requestId;
  return b;
}

/** A request from a chosen loopback address (127.0.0.x): each address is its own client for the per-IP throttle. */
function fromAddress(server: TestServer, localAddress: string, method: string, path: string, json?: unknown): Promise<Reply> {
  const ca = readFileSync(join(server.dataDir, 'tls', 'cert.pem'), 'utf8');
  const headers: Record<string, string> = { 'user-agent': 'coffre-e2e' };
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  if (body) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(`/api/v1${path}`, server.url), { method, headers, ca, agent: false, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function operatorName(server: TestServer): Promise<string> {
  const r = await server.admin(['org', 'list', '--json']);
  expectCode(r, 0, 'org list');
  const op = (JSON.parse(r.stdout) as { name: string; type: string }[]).find((o) => o.type === 'operator');
  assert.ok(op, 'no operator organisation');
  return op.name;
}

async function auditTrail(server: TestServer): Promise<AuditRow[]> {
  const r = await server.admin(['audit', 'export', '--format', 'json']);
  expectCode(r, 0, 'audit export');
  return JSON.parse(r.stdout) as AuditRow[];
}

async function sessionOf(c: PeopleClient): Promise<{ stage: string; user: { id: string; email: string } }> {
  const r = await c.request('GET', '/session');
  expectOk(r, 'GET /session');
  return r.json();
}

/** A 6-digit code that matches none of the steps around `step` (so surely wrong). */
function wrongCode(secret: string, step: number): string {
  const near = new Set([-2, -1, 0, 1, 2].map((d) => totpAt(secret, step + d)));
  for (let i = 0; ; i++) {
    const c = String((123_456 + i * 7919) % 1_000_000).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

/** Waits past the next TOTP step boundary when fewer than 4 s remain in the current step. */
async function awayFromStepEdge(): Promise<void> {
  const into = Date.now() % STEP_MS;
  if (into > STEP_MS - 4000) await sleep(STEP_MS - into + 250);
}

/** Creates a person with the CLI and returns the temporary password. */
async function createPerson(server: TestServer, o: { email: string; name: string; role: string; org: string }): Promise<string> {
  const r = await server.admin(['user', 'create', '--email', o.email, '--name', o.name, '--role', o.role, '--org', o.org]);
  expectCode(r, 0, 'user create');
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `user create prints only the temporary password: ${r.stdout}`);
  return lines[0]!;
}

function cookieAttributes(setCookie: string): { name: string; value: string; attrs: string[] } {
  const [pair, ...attrs] = setCookie.split(';').map((s) => s.trim());
  const eq = pair!.indexOf('=');
  return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attrs: attrs.map((a) => a.toLowerCase()) };
}

describe('people: sign-in, second factor, sessions, CSRF, lockout (docs/SECURITY.md)', () => {
  /** Main server: guessing protection raised so deliberate failures in one test do not throttle the next. */
  let main: TestServer;
  /** Default guessing protection (3 / 10 per account, 10 / 30 per IP). */
  let lockout: TestServer;
  /** Sessions end after 3 s without a request. */
  let idle: TestServer;
  /** Sessions end 3.6 s after sign-in whatever happens. */
  let shortLived: TestServer;
  /** Destructive actions need a proof at most 1.2 s old; an account locks after its second failure. */
  let reauth: TestServer;
  let mainOperator: string;
  const servers: TestServer[] = [];
  let admin: Promise<Person> | undefined;
  /** An operator-admin of the main server, created on first use (its proof stays fresh: reauthMinutes is 5 there). */
  const mainAdmin = (): Promise<Person> => (admin ??= signUp(main, { role: 'operator-admin', org: mainOperator }));

  before(async () => {
    const started = await Promise.allSettled([
      startWith({ authThrottle: { accountFreeFailures: 50, accountLockAfter: 100, ipFreeFailures: 500, ipLockAfter: 1000 } }),
      startWith(null),
      startWith({ sessionIdleMinutes: 0.05 }),
      startWith({ sessionMaxHours: 0.001 }),
      startWith({ reauthMinutes: 0.02, authThrottle: { accountFreeFailures: 1, accountLockAfter: 2 } }),
    ]);
    for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    [main, lockout, idle, shortLived, reauth] = servers as [TestServer, TestServer, TestServer, TestServer, TestServer];
    mainOperator = await operatorName(main);
    for (const c of ['cabinet-personnes', 'cabinet-suspendu', 'cabinet-machines']) await main.createCustomer(c);
    await reauth.createCustomer('cabinet-r');
  });

  after(async () => {
    for (const s of servers) {
      await s.stop();
      s.cleanup();
    }
  });

  it('1. the initial administrator: 0600 file, stage setup, SETUP_REQUIRED, password policy, TOTP enrolment, then full', async () => {
    const file = join(main.dataDir, 'secrets', 'initial-admin-password');
    assert.ok(existsSync(file), 'initial-admin-password was not written at first start');
    assert.equal(statSync(file).mode & 0o777, 0o600, `mode ${(statSync(file).mode & 0o777).toString(8)}`);
    const [email, temporary, ...rest] = readFileSync(file, 'utf8').split('\n');
    assert.deepEqual(rest, [''], 'the file is "email\\npassword\\n"');
    assert.match(email!, /@/);
    assert.ok(temporary!.length >= 12, 'temporary password too short');

    const c = PeopleClient.for(main);
    const login = await c.login(email!, temporary!);
    expectOk(login, 'initial admin sign-in');
    const lb = login.json<{ stage: string; csrfToken: string; user: { email: string; role: string; mustChangePassword: boolean } }>();
    assert.equal(lb.stage, 'setup');
    assert.equal(lb.user.role, 'operator-admin');
    assert.equal(lb.user.mustChangePassword, true);
    assert.equal(typeof lb.csrfToken, 'string');
    assert.equal((await sessionOf(c)).stage, 'setup');
    expectError(await c.request('GET', '/orgs'), 403, 'SETUP_REQUIRED', 'GET /orgs before set-up');
    expectError(await c.request('GET', '/audit'), 403, 'SETUP_REQUIRED', 'GET /audit before set-up');

    const weak = async (newPassword: string, expected: string[]): Promise<void> => {
      const r = await c.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword } });
      const e = expectError(r, 400, 'WEAK_PASSWORD', `new password ${JSON.stringify(newPassword)}`);
      assert.match(e.message, /password/i);
      assert.match(e.messageFr, /mot de passe/i);
      const d = e.details as { problems: string[]; messages: { en: string; fr: string }[] };
      assert.ok(Array.isArray(d?.problems), r.text);
      for (const p of expected) assert.ok(d.problems.includes(p), `${JSON.stringify(newPassword)}: expected ${p} in ${JSON.stringify(d.problems)}`);
      assert.equal(d.messages.length, d.problems.length, r.text);
      for (const m of d.messages) {
        assert.ok(typeof m.en === 'string' && m.en.length > 10, r.text);
        assert.ok(typeof m.fr === 'string' && m.fr.length > 10, r.text);
        assert.notEqual(m.en, m.fr);
      }
      if (expected.includes('too_short')) {
        const i = d.problems.indexOf('too_short');
        assert.match(d.messages[i]!.en, /12/);
        assert.match(d.messages[i]!.fr, /12/);
      }
    };
    await weak('Court-7!', ['too_short']);
    // Code points, not UTF-16 units: 11 emoji are 22 units but 11 characters.
    await weak('🦊🐢🦉🐙🦑🦀🐝🦋🐞🦂🦎', ['too_short']);
    await weak(`${'Violoncelle-'.repeat(21)}Zebre`, ['too_long']);
    await weak('password123456', ['common']);
    // The initial administrator is named "Initial administrator", email admin@…
    await weak('Violon-Administrator-Zebre-42', ['contains_name']);
    await weak(`Zebre-${email!.split('@')[0]!}-Violon-Lune-42`, ['contains_email']);
    // Refused attempts changed nothing: still in set-up, the temporary password still the current one.
    expectError(await c.request('GET', '/orgs'), 403, 'SETUP_REQUIRED');

    const password = 'Horizon-Tambour-Opaline-73';
    expectOk(await c.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword: password } }), 'good new password');
    // A password alone is not enough: the second factor is still missing.
    assert.equal((await sessionOf(c)).stage, 'setup');
    expectError(await c.request('GET', '/orgs'), 403, 'SETUP_REQUIRED', 'GET /orgs before TOTP');

    const setup = await c.request('POST', '/me/totp/setup');
    expectOk(setup, 'totp setup');
    const { secret, otpauthUri } = setup.json<{ secret: string; otpauthUri: string }>();
    assert.match(secret, /^[A-Z2-7]{32,}$/, 'base32 secret of at least 160 bits');
    assert.ok(otpauthUri.startsWith('otpauth://totp/'), otpauthUri);
    assert.ok(otpauthUri.includes(`secret=${secret}`), otpauthUri);
    expectError(await c.request('POST', '/me/totp/confirm', { json: { code: wrongCode(secret, currentStep()) } }), 401, 'UNAUTHORIZED', 'wrong confirm code');
    expectError(await c.request('GET', '/orgs'), 403, 'SETUP_REQUIRED', 'after a wrong confirm code');
    const confirm = await c.request('POST', '/me/totp/confirm', { json: { code: totp(secret) } });
    expectOk(confirm, 'totp confirm');
    const codes = confirm.json<{ recoveryCodes: string[] }>().recoveryCodes;
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10, 'recovery codes are distinct');

    assert.equal((await sessionOf(c)).stage, 'full');
    // The TOTP secret is sealed with the server key: not in the database files in any plain form.
    const raw = base32Decode(secret);
    for (const f of ['coffre.db', 'coffre.db-wal']) {
      const path = join(main.dataDir, f);
      if (!existsSync(path)) continue;
      const bytes = readFileSync(path);
      for (const form of [Buffer.from(secret), raw, Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('base64')), Buffer.from(raw.toString('base64url'))]) {
        assert.equal(bytes.indexOf(form), -1, `TOTP secret found in clear in ${f}`);
      }
    }
    assert.equal(statSync(join(main.dataDir, 'secrets', 'server.key')).mode & 0o777, 0o600, 'server.key is 0600');
    const orgs = await c.request('GET', '/orgs');
    expectOk(orgs, 'GET /orgs once set up');
    assert.ok(orgs.json<{ orgs: { type: string }[] }>().orgs.some((o) => o.type === 'operator'), orgs.text);

    // The old (temporary) password no longer works; the new one does.
    expectError(await PeopleClient.for(main).login(email!, temporary!), 401, 'UNAUTHORIZED', 'temporary password after change');
    const again = await PeopleClient.for(main).login(email!, password);
    expectOk(again, 'sign-in with the new password');
    assert.equal(again.json<{ stage: string }>().stage, 'second-factor');
  });

  it('2. the session cookie: __Host- attributes, rotated at the second-factor proof, the old value dead', async () => {
    const p = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const c = PeopleClient.for(main);
    expectOk(await c.login(p.email, p.password), 'sign-in');
    assert.equal(c.setCookies.length, 1, `one Set-Cookie on sign-in: ${JSON.stringify(c.setCookies)}`);
    const first = cookieAttributes(c.setCookies[0]!);
    assert.equal(first.name, '__Host-coffre_session');
    assert.ok(first.value.length >= 20, 'a long random token');
    assert.ok(first.attrs.includes('httponly'), c.setCookies[0]);
    assert.ok(first.attrs.includes('secure'), c.setCookies[0]);
    assert.ok(first.attrs.includes('samesite=strict'), c.setCookies[0]);
    assert.ok(first.attrs.includes('path=/'), c.setCookies[0]);
    assert.ok(!first.attrs.some((a) => a.startsWith('domain')), `no Domain: ${c.setCookies[0]}`);
    assert.ok(first.attrs.includes('max-age=43200'), `the cookie lives as long as the session (12 h): ${c.setCookies[0]}`);
    const oldCookie = c.cookie!;
    const oldCsrf = c.csrf!;

    const proof = await c.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(p) } });
    expectOk(proof, 'totp proof');
    assert.equal(proof.json<{ stage: string }>().stage, 'full');
    assert.equal(c.setCookies.length, 2, 'the proof sets a new cookie');
    const second = cookieAttributes(c.setCookies[1]!);
    assert.equal(second.name, '__Host-coffre_session');
    assert.notEqual(second.value, first.value, 'the session token is replaced at the second-factor proof');
    for (const a of ['httponly', 'secure', 'samesite=strict', 'path=/']) assert.ok(second.attrs.includes(a), c.setCookies[1]);
    assert.ok(!second.attrs.some((a) => a.startsWith('domain')), c.setCookies[1]);
    assert.notEqual(c.csrf, oldCsrf, 'a new CSRF token comes with the new session token');

    expectOk(await c.request('GET', '/orgs'), 'new cookie works');
    const stale = PeopleClient.for(main);
    stale.cookie = oldCookie;
    stale.csrf = oldCsrf;
    expectError(await stale.request('GET', '/session'), 401, 'UNAUTHORIZED', 'pre-proof cookie');
    expectError(await stale.request('GET', '/orgs'), 401, 'UNAUTHORIZED', 'pre-proof cookie');
    // The CSRF token of the old token is worthless with the new cookie.
    expectError(await c.request('POST', '/me/recovery-codes', { noCsrf: true, headers: { 'x-csrf-token': oldCsrf } }), 403, 'CSRF_FAILED', 'old CSRF token');

    // Sign-out clears the cookie and ends the session on the server.
    const current = c.cookie!;
    expectOk(await c.request('POST', '/auth/logout'), 'logout');
    const cleared = cookieAttributes(c.setCookies.at(-1)!);
    assert.equal(cleared.name, '__Host-coffre_session');
    assert.equal(cleared.value, '');
    const replay = PeopleClient.for(main);
    replay.cookie = current;
    expectError(await replay.request('GET', '/session'), 401, 'UNAUTHORIZED', 'cookie after sign-out');
  });

  it('2b. first sign-in: the token issued at the password is replaced when the first second factor is proven (TOTP enrolment)', async () => {
    const email = `fixation-${unique()}@example.fr`;
    const temporary = await createPerson(main, { email, name: 'Sacha Fixe', role: 'customer-viewer', org: 'cabinet-personnes' });
    const c = PeopleClient.for(main);
    expectOk(await c.login(email, temporary), 'first sign-in');
    expectOk(await c.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword: `Girafe-Opaline-Tambour-${unique()}` } }), 'password change');
    const setup = await c.request('POST', '/me/totp/setup');
    expectOk(setup, 'totp setup');
    const preProof = c.cookie!;
    const confirm = await c.request('POST', '/me/totp/confirm', { json: { code: totp(setup.json<{ secret: string }>().secret) } });
    expectOk(confirm, 'totp confirm');
    // Proving the new factor is this session's second-factor proof (it opens stage full and
    // starts the re-authentication window), so docs/SECURITY.md's "the session token is
    // replaced at every second-factor proof (no fixation)" applies: a token known before
    // the proof must not become a complete session.
    const old = PeopleClient.for(main);
    old.cookie = preProof;
    const r = await old.request('GET', '/orgs');
    assert.equal(r.status, 401, `the pre-proof token still works after the enrolment proof (session fixation): ${r.status} ${r.text.slice(0, 120)}`);
    assert.notEqual(c.cookie, preProof, 'no new session cookie after the enrolment proof');
  });

  it('3. stage second-factor: every other route answers 403 SECOND_FACTOR_REQUIRED, own-account routes included', async () => {
    const p = await signUp(main, { role: 'customer-admin', org: 'cabinet-personnes' });
    const thief = PeopleClient.for(main);
    const login = await thief.login(p.email, p.password);
    expectOk(login, 'password-only sign-in');
    assert.equal(login.json<{ stage: string }>().stage, 'second-factor');
    assert.equal((await sessionOf(thief)).stage, 'second-factor');
    const orgId = login.json<{ user: { org: { id: string } } }>().user.org.id;
    assert.match(orgId, /^[0-9a-f-]{36}$/, login.text);
    const refused: [string, string, unknown?][] = [
      ['GET', '/orgs'],
      ['GET', `/orgs/${orgId}`],
      ['GET', `/orgs/${orgId}/users`],
      ['GET', '/audit'],
      ['POST', `/orgs/${orgId}/enroll-tokens`, {}],
      ['GET', '/me/sessions'],
      ['POST', '/me/password', { currentPassword: p.password, newPassword: 'Pirate-Nouveau-Secret-99' }],
      ['POST', '/me/totp/setup'],
      ['POST', '/me/totp/confirm', { code: '123456' }],
      ['POST', '/me/recovery-codes'],
      ['POST', '/me/webauthn/register/options'],
    ];
    for (const [method, path, json] of refused) {
      expectError(await thief.request(method, path, json === undefined ? {} : { json }), 403, 'SECOND_FACTOR_REQUIRED', `${method} ${path}`);
    }
    // Nothing changed: the real owner still signs in with the password and their own TOTP.
    const owner = await signIn(main, p);
    assert.equal((await sessionOf(owner)).stage, 'full');
    // The thief's session may still sign out.
    expectOk(await thief.request('POST', '/auth/logout'), 'logout from stage second-factor');
  });

  it('4. TOTP: a wrong code 401, the right code once, a replay refused as already used, an older step after a newer one refused', async () => {
    // Enrolled with the oldest step the window accepts (now - 1), so that the current step stays unused.
    const email = `horloge-${unique()}@example.fr`;
    const temporary = await createPerson(main, { email, name: 'Camille Horloge', role: 'customer-viewer', org: 'cabinet-personnes' });
    const password = `Girafe-Opaline-Tambour-${unique()}`;
    const enrol = PeopleClient.for(main);
    expectOk(await enrol.login(email, temporary), 'first sign-in');
    expectOk(await enrol.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword: password } }), 'password change');
    const setup = await enrol.request('POST', '/me/totp/setup');
    expectOk(setup, 'totp setup');
    const secret = setup.json<{ secret: string }>().secret;
    await awayFromStepEdge();
    const n = currentStep();
    expectOk(await enrol.request('POST', '/me/totp/confirm', { json: { code: totpAt(secret, n - 1) } }), 'confirm with step n-1');

    const a = PeopleClient.for(main);
    expectOk(await a.login(email, password), 'sign-in');
    const wrong = expectError(await a.request('POST', '/auth/second-factor/totp', { json: { code: wrongCode(secret, n) } }), 401, 'UNAUTHORIZED', 'wrong code');
    assert.match(wrong.message, /incorrect/i);
    assert.equal((await sessionOf(a)).stage, 'second-factor', 'a wrong code does not advance the session');
    expectError(await a.request('GET', '/orgs'), 403, 'SECOND_FACTOR_REQUIRED');

    // ±1 step only: three steps ahead is refused.
    expectError(await a.request('POST', '/auth/second-factor/totp', { json: { code: totpAt(secret, n + 3) } }), 401, 'UNAUTHORIZED', 'code outside the window');
    const newer = totpAt(secret, n + 1);
    const ok = await a.request('POST', '/auth/second-factor/totp', { json: { code: newer } });
    expectOk(ok, 'right code (step n+1, within the window)');
    assert.equal(ok.json<{ stage: string }>().stage, 'full');
    expectOk(await a.request('GET', '/orgs'), 'full session');

    const b = PeopleClient.for(main);
    expectOk(await b.login(email, password), 'second sign-in');
    const replay = expectError(await b.request('POST', '/auth/second-factor/totp', { json: { code: newer } }), 401, 'UNAUTHORIZED', 'same code again');
    assert.match(replay.message, /already (been )?used/i, replay.message);
    assert.match(replay.messageFr, /déjà/i, replay.messageFr);
    assert.equal((await sessionOf(b)).stage, 'second-factor');

    // Step n was never used, but it is older than n+1, which was.
    const older = expectError(await b.request('POST', '/auth/second-factor/totp', { json: { code: totpAt(secret, n) } }), 401, 'UNAUTHORIZED', 'older unused step');
    assert.match(older.message, /already (been )?used/i, older.message);
    expectError(await b.request('GET', '/orgs'), 403, 'SECOND_FACTOR_REQUIRED', 'still not proven');

    const trail = await auditTrail(main);
    const failures = trail.filter((e) => e.action === 'auth.second-factor' && e.outcome === 'failure' && e.actorLabel === email);
    assert.deepEqual(
      failures.map((e) => e.details?.reason),
      ['totp-invalid', 'totp-invalid', 'totp-replayed', 'totp-replayed'],
      'second-factor failures are in the audit trail',
    );
  });

  it('5. a recovery code works once, then is refused', async () => {
    const p = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    assert.equal(p.recoveryCodes.length, 10);
    const code = p.recoveryCodes[3]!;
    const a = PeopleClient.for(main);
    expectOk(await a.login(p.email, p.password), 'sign-in');
    const used = await a.request('POST', '/auth/second-factor/recovery-code', { json: { code } });
    expectOk(used, 'first use of a recovery code');
    assert.equal(used.json<{ stage: string }>().stage, 'full');
    expectOk(await a.request('GET', '/orgs'), 'full session after a recovery code');

    const b = PeopleClient.for(main);
    expectOk(await b.login(p.email, p.password), 'sign-in');
    expectError(await b.request('POST', '/auth/second-factor/recovery-code', { json: { code } }), 401, 'UNAUTHORIZED', 'second use of the same recovery code');
    expectError(await b.request('POST', '/auth/second-factor/recovery-code', { json: { code: code.toUpperCase() } }), 401, 'UNAUTHORIZED', 'same code, other case');
    assert.equal((await sessionOf(b)).stage, 'second-factor');
    // Another code of the batch still works.
    expectOk(await b.request('POST', '/auth/second-factor/recovery-code', { json: { code: p.recoveryCodes[4]! } }), 'another recovery code');

    // Renewing the codes (a fresh proof: b just proved) makes the old batch worthless.
    const renewed = await b.request('POST', '/me/recovery-codes');
    expectOk(renewed, 'renew recovery codes');
    const fresh = renewed.json<{ recoveryCodes: string[] }>().recoveryCodes;
    assert.equal(fresh.length, 10);
    assert.ok(!fresh.some((x) => p.recoveryCodes.includes(x)), 'a new batch');
    const c = PeopleClient.for(main);
    expectOk(await c.login(p.email, p.password), 'sign-in');
    expectError(await c.request('POST', '/auth/second-factor/recovery-code', { json: { code: p.recoveryCodes[5]! } }), 401, 'UNAUTHORIZED', 'old batch after renewal');
    expectOk(await c.request('POST', '/auth/second-factor/recovery-code', { json: { code: fresh[0]! } }), 'new batch');
  });

  it('6a. lockout per account (default thresholds): unknown and existing accounts get identical answers; the lock applies before the password check', async () => {
    const [adminEmail, adminPassword] = readFileSync(join(lockout.dataDir, 'secrets', 'initial-admin-password'), 'utf8').split('\n') as [string, string];
    const unknownEmail = `personne-${unique()}@example.fr`;
    const guess = 'Devinette-Fausse-2024';
    const ip = '127.0.0.2';
    const login = (email: string, password: string): Promise<Reply> => fromAddress(lockout, ip, 'POST', '/auth/login', { email, password });
    const both = async (): Promise<[Reply, Reply]> => [await login(unknownEmail, guess), await login(adminEmail, guess)];
    const same = (u: Reply, k: Reply, what: string): void => {
      assert.equal(u.status, k.status, `${what}: unknown ${u.status} ${u.text} / existing ${k.status} ${k.text}`);
      assert.deepEqual(withoutRequestId(u), withoutRequestId(k), what);
      assert.equal(u.headers['retry-after'], k.headers['retry-after'], `${what}: Retry-After`);
      assert.equal(u.headers['set-cookie'], undefined, `${what}: no cookie`);
      assert.equal(k.headers['set-cookie'], undefined, `${what}: no cookie`);
    };

    const firstIds: string[] = [];
    let lastFailureSent = 0;
    for (let i = 1; i <= 3; i++) {
      lastFailureSent = Date.now();
      const [u, k] = await both();
      if (i === 1) firstIds.push(String(u.headers['x-request-id']), String(k.headers['x-request-id']));
      expectError(u, 401, 'UNAUTHORIZED', `unknown account, failure ${i}`);
      same(u, k, `failure ${i}`);
      assert.equal(u.headers['retry-after'], undefined, `failure ${i} is free`);
    }
    // Past the 3 free failures, each attempt waits: 1 s first. The attempts within that delay
    // are sent together, so that a busy machine does not let the delay run out between them.
    const [u4, k4, u5, k5, right] = await Promise.all([
      login(unknownEmail, guess),
      login(adminEmail, guess),
      // However the identifier is spelt (case, spaces)…
      login(` ${unknownEmail.toUpperCase()} `, guess),
      login(adminEmail.toUpperCase(), guess),
      // …and even with the right password: the lock is checked before the password.
      login(adminEmail, adminPassword),
    ]);
    const within = `${Date.now() - lastFailureSent} ms after failure 3 was sent`;
    const e4 = expectError(u4, 429, 'TOO_MANY_ATTEMPTS', `attempt 4 (unknown), ${within}`);
    same(u4, k4, 'attempt 4');
    assert.equal(u4.headers['retry-after'], '1', `Retry-After: ${String(u4.headers['retry-after'])}`);
    assert.equal(e4.details?.retryAfterSeconds, 1);
    assert.equal(u4.headers['cache-control'], 'no-store');
    assert.equal(u4.headers['x-request-id'], e4.requestId);
    expectError(u5, 429, 'TOO_MANY_ATTEMPTS', `attempt 5 (unknown), ${within}`);
    same(u5, k5, 'attempt 5');
    expectError(right, 429, 'TOO_MANY_ATTEMPTS', `right password during the delay, ${within}`);
    assert.deepEqual(withoutRequestId(right), withoutRequestId(k5));

    // After the delay one more failure is examined, and the next delay doubles (2 s).
    await sleep(1200);
    const [u6, k6] = await both();
    expectError(u6, 401, 'UNAUTHORIZED', 'after the 1 s delay');
    same(u6, k6, 'failure 4');
    const [u7, k7] = await both();
    expectError(u7, 429, 'TOO_MANY_ATTEMPTS', 'after failure 4');
    same(u7, k7, 'attempt after failure 4');
    assert.equal(u7.headers['retry-after'], '2');

    await sleep(2200);
    const finally_ = await login(adminEmail, adminPassword);
    expectOk(finally_, 'right password once the delay is over');
    assert.equal(finally_.json<{ stage: string }>().stage, 'setup');

    const trail = await auditTrail(lockout);
    const failed = (label: string): AuditRow[] => trail.filter((e) => e.action === 'auth.login' && e.outcome === 'failure' && e.actorLabel === label);
    assert.equal(failed(unknownEmail).length, 4, 'failed sign-ins of the unknown account are audited');
    assert.equal(failed(adminEmail).length, 4, 'failed sign-ins of the existing account are audited');
    for (const e of [...failed(unknownEmail), ...failed(adminEmail)]) {
      assert.equal(e.ip, ip);
      assert.equal(e.userAgent, 'coffre-e2e');
    }
    assert.equal(failed(unknownEmail)[0]!.requestId, firstIds[0], 'the entry names the request id of the answer');
    assert.equal(failed(adminEmail)[0]!.requestId, firstIds[1], 'the entry names the request id of the answer');
    assert.ok(
      trail.some((e) => e.action === 'auth.throttled' && e.actorLabel === unknownEmail) && trail.some((e) => e.action === 'auth.throttled' && e.actorLabel === adminEmail),
      'throttled attempts are audited',
    );
    assert.ok(trail.some((e) => e.action === 'auth.login' && e.outcome === 'success' && e.actorLabel === adminEmail));
    const raw = JSON.stringify(trail);
    assert.ok(!raw.includes(guess) && !raw.includes(adminPassword), 'passwords are never recorded');
  });

  it('6b. lockout per IP (default thresholds): 10 failures with different unknown emails, then 429 for any account from that address', async () => {
    const ip = '127.0.0.3';
    const [adminEmail, adminPassword] = readFileSync(join(lockout.dataDir, 'secrets', 'initial-admin-password'), 'utf8').split('\n') as [string, string];
    const emails = Array.from({ length: 11 }, (_, i) => `inconnu${i}-${unique()}@example.fr`);
    for (let i = 0; i < 10; i++) {
      const r = await fromAddress(lockout, ip, 'POST', '/auth/login', { email: emails[i], password: 'Devinette-Fausse-2024' });
      expectError(r, 401, 'UNAUTHORIZED', `failure ${i + 1} from one address`);
    }
    const r11 = await fromAddress(lockout, ip, 'POST', '/auth/login', { email: emails[10], password: 'Devinette-Fausse-2024' });
    expectError(r11, 429, 'TOO_MANY_ATTEMPTS', 'a new unknown email after 10 failures from one address');
    assert.ok(Number(r11.headers['retry-after']) >= 1, `Retry-After: ${String(r11.headers['retry-after'])}`);
    expectError(await fromAddress(lockout, ip, 'POST', '/auth/login', { email: adminEmail, password: adminPassword }), 429, 'TOO_MANY_ATTEMPTS', 'the right password from a throttled address');
    // Another address is not affected.
    expectOk(await fromAddress(lockout, '127.0.0.4', 'POST', '/auth/login', { email: adminEmail, password: adminPassword }), 'sign-in from another address');

    const trail = await auditTrail(lockout);
    const fromIp = trail.filter((e) => e.ip === ip && e.action === 'auth.login' && e.outcome === 'failure');
    assert.equal(fromIp.length, 10, 'each failure from the address is audited');
    assert.ok(trail.some((e) => e.ip === ip && e.action === 'auth.throttled'), 'the throttling is audited');
  });

  it('6c. past the lock threshold an account is locked for 15 minutes (accountFreeFailures 1, accountLockAfter 2)', async () => {
    const email = `verrou-${unique()}@example.fr`;
    const attempt = (): Promise<Reply> => PeopleClient.for(reauth).login(email, 'Devinette-Fausse-2024');
    expectError(await attempt(), 401, 'UNAUTHORIZED', 'failure 1');
    const w1 = await attempt();
    expectError(w1, 429, 'TOO_MANY_ATTEMPTS', 'delay after failure 1');
    assert.equal(w1.headers['retry-after'], '1');
    await sleep(1200);
    expectError(await attempt(), 401, 'UNAUTHORIZED', 'failure 2');
    const locked = await attempt();
    expectError(locked, 429, 'TOO_MANY_ATTEMPTS', 'locked');
    const seconds = Number(locked.headers['retry-after']);
    assert.ok(seconds > 890 && seconds <= 900, `a 15-minute lock, Retry-After ${String(locked.headers['retry-after'])}`);
  });

  it('6d. second-factor failures count on the same keys: wrong TOTP codes delay the next proof and the next sign-in (default thresholds)', async () => {
    const p = await signUp(lockout, { role: 'technician', org: await operatorName(lockout) });
    const c = PeopleClient.for(lockout);
    expectOk(await c.login(p.email, p.password), 'password');
    for (let i = 1; i <= 3; i++) {
      expectError(await c.request('POST', '/auth/second-factor/totp', { json: { code: wrongCode(p.totpSecret, currentStep()) } }), 401, 'UNAUTHORIZED', `wrong code ${i}`);
    }
    const rightCode = totpAt(p.totpSecret, p.lastStep + 1);
    const waiting = await c.request('POST', '/auth/second-factor/totp', { json: { code: rightCode } });
    expectError(waiting, 429, 'TOO_MANY_ATTEMPTS', 'the right code within the delay');
    assert.equal(waiting.headers['retry-after'], '1');
    assert.equal((await sessionOf(c)).stage, 'second-factor');
    expectError(await fromAddress(lockout, '127.0.0.5', 'POST', '/auth/login', { email: p.email, password: p.password }), 429, 'TOO_MANY_ATTEMPTS', 'sign-in on the same account key');

    await sleep(1200);
    const proof = await c.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(p) } });
    expectOk(proof, 'right code after the delay');
    // A proof clears the account key.
    expectOk(await fromAddress(lockout, '127.0.0.5', 'POST', '/auth/login', { email: p.email, password: p.password }), 'sign-in after a successful proof');
  });

  it('6e. a signed-in session cannot guess the current password without limit: /me/password is throttled too', async () => {
    const p = await signUp(lockout, { role: 'technician', org: await operatorName(lockout) });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await p.client.request('POST', '/me/password', { json: { currentPassword: `mauvais-essai-${i}-xx`, newPassword: 'Nouveau-Mot-De-Passe-Solide-1' } });
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429], 'three free failures, then the account waits');
    expectError(await fromAddress(lockout, '127.0.0.4', 'POST', '/auth/login', { email: p.email, password: p.password }), 429, 'TOO_MANY_ATTEMPTS', 'the same account key guards sign-in');
  });

  it('7. CSRF: no token, a wrong token, another session\'s token or a foreign Origin → 403 CSRF_FAILED; the right token succeeds; GET needs none', async () => {
    const p = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const other = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const c = p.client;
    const token = c.csrf!;
    assert.ok(token.length >= 20);
    const post = (o: { noCsrf?: boolean; headers?: Record<string, string> } = {}): Promise<Reply> => c.request('POST', '/me/recovery-codes', o);
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');

    expectError(await post({ noCsrf: true }), 403, 'CSRF_FAILED', 'no token');
    expectError(await post({ noCsrf: true, headers: { 'x-csrf-token': flipped } }), 403, 'CSRF_FAILED', 'wrong token');
    expectError(await post({ noCsrf: true, headers: { 'x-csrf-token': '' } }), 403, 'CSRF_FAILED', 'empty token');
    expectError(await post({ noCsrf: true, headers: { 'x-csrf-token': other.client.csrf! } }), 403, 'CSRF_FAILED', "another session's token");
    expectError(await post({ headers: { origin: 'https://evil.example' } }), 403, 'CSRF_FAILED', 'right token, foreign Origin');
    expectError(await post({ headers: { origin: 'null' } }), 403, 'CSRF_FAILED', 'right token, Origin null');
    expectError(await post({ headers: { origin: new URL(main.url).origin.replace('https:', 'http:') } }), 403, 'CSRF_FAILED', 'right token, plain-HTTP Origin');
    expectError(await c.request('DELETE', `/me/sessions/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { noCsrf: true }), 403, 'CSRF_FAILED', 'DELETE without token');

    const ok = await post();
    expectOk(ok, 'right token');
    assert.equal(ok.json<{ recoveryCodes: string[] }>().recoveryCodes.length, 10);
    expectOk(await post({ headers: { origin: new URL(main.url).origin } }), "right token and the console's own Origin");
    // Safe methods need no token.
    expectOk(await c.request('GET', '/me/sessions', { noCsrf: true }), 'GET without token');
    expectOk(await c.request('GET', '/orgs', { noCsrf: true }), 'GET without token');
  });

  it('8. security headers on a success, a 404, a 401 and a 400', async () => {
    const c = PeopleClient.for(main);
    const replies: [string, Reply, number][] = [
      ['GET /health', await c.request('GET', '/health'), 200],
      ['GET /no-such-route', await c.request('GET', '/no-such-route'), 404],
      ['GET /orgs without a session', await c.request('GET', '/orgs'), 401],
      ['POST /auth/login {}', await c.request('POST', '/auth/login', { json: {} }), 400],
    ];
    const ids = new Set<string>();
    for (const [what, r, status] of replies) {
      assert.equal(r.status, status, `${what}: ${r.text}`);
      const h = r.headers;
      assert.match(String(h['strict-transport-security']), /max-age=\d{7,}/, `${what}: HSTS`);
      assert.ok(String(h['content-security-policy'] ?? '').length > 0, `${what}: CSP`);
      assert.match(String(h['content-security-policy']), /default-src 'none'|frame-ancestors 'none'/, `${what}: CSP`);
      assert.equal(h['x-frame-options'], 'DENY', what);
      assert.equal(h['x-content-type-options'], 'nosniff', what);
      assert.equal(h['referrer-policy'], 'no-referrer', what);
      assert.equal(h['cache-control'], 'no-store', what);
      const id = h['x-request-id'];
      assert.ok(typeof id === 'string' && id.length > 0, `${what}: X-Request-Id`);
      ids.add(id);
      if (status >= 400) assert.equal(errorOf(r).requestId, id, `${what}: the body names the same request id`);
    }
    assert.equal(ids.size, replies.length, 'a request id per request');
  });

  it('9a. sessions: listed with one current; ending one kills that client; a password change ends the others', async () => {
    const p = await signUp(main, { role: 'customer-admin', org: 'cabinet-personnes' });
    const c1 = p.client;
    const c2 = await signIn(main, p);
    const list1 = await c1.request('GET', '/me/sessions');
    expectOk(list1, 'list from c1');
    const s1 = list1.json<{ sessions: { id: string; current: boolean; ip: string | null; userAgent: string | null }[] }>().sessions;
    assert.equal(s1.length, 2, list1.text);
    assert.equal(s1.filter((s) => s.current).length, 1, list1.text);
    const id1 = s1.find((s) => s.current)!.id;
    const s2 = (await c2.request('GET', '/me/sessions')).json<{ sessions: { id: string; current: boolean }[] }>().sessions;
    assert.equal(s2.length, 2);
    const id2 = s2.find((s) => s.current)!.id;
    assert.notEqual(id1, id2, 'each client sees its own session as current');
    assert.deepEqual(new Set(s1.map((s) => s.id)), new Set([id1, id2]));
    assert.ok(s1.every((s) => s.userAgent === 'coffre-e2e' && typeof s.ip === 'string'), list1.text);

    // Nobody ends someone else's session.
    const stranger = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const strangerId = (await stranger.client.request('GET', '/me/sessions')).json<{ sessions: { id: string; current: boolean }[] }>().sessions.find((s) => s.current)!.id;
    expectError(await c1.request('DELETE', `/me/sessions/${strangerId}`), 404, 'NOT_FOUND', "another person's session");
    expectOk(await stranger.client.request('GET', '/session'), "the other person's session survives");

    expectOk(await c1.request('DELETE', `/me/sessions/${id2}`), 'end the other session');
    expectError(await c2.request('GET', '/session'), 401, 'UNAUTHORIZED', 'ended session');
    expectError(await c2.request('GET', '/orgs'), 401, 'UNAUTHORIZED', 'ended session');
    expectError(await c1.request('DELETE', `/me/sessions/${id2}`), 404, 'NOT_FOUND', 'already ended');
    const after1 = (await c1.request('GET', '/me/sessions')).json<{ sessions: { id: string }[] }>().sessions;
    assert.deepEqual(after1.map((s) => s.id), [id1]);

    // Two more sessions: one complete (recovery code), one waiting for its second factor.
    const c3 = PeopleClient.for(main);
    expectOk(await c3.login(p.email, p.password), 'sign-in c3');
    expectOk(await c3.request('POST', '/auth/second-factor/recovery-code', { json: { code: p.recoveryCodes[0]! } }), 'c3 recovery code');
    const c4 = PeopleClient.for(main);
    expectOk(await c4.login(p.email, p.password), 'sign-in c4');
    const newPassword = `Nouveau-Chemin-Ardoise-${unique()}`;
    expectOk(await c1.request('POST', '/me/password', { json: { currentPassword: p.password, newPassword } }), 'password change');
    expectError(await c3.request('GET', '/session'), 401, 'UNAUTHORIZED', 'other full session after a password change');
    expectError(await c4.request('GET', '/session'), 401, 'UNAUTHORIZED', 'other pending session after a password change');
    assert.equal((await sessionOf(c1)).stage, 'full', 'the session that changed the password stays');
    expectError(await PeopleClient.for(main).login(p.email, p.password), 401, 'UNAUTHORIZED', 'old password');
    expectOk(await PeopleClient.for(main).login(p.email, newPassword), 'new password');
  });

  it('9b. sessions: idle expiry (sessionIdleMinutes 0.05 = 3 s)', async () => {
    const p = await signUp(idle, { role: 'operator-admin', org: await operatorName(idle) });
    expectOk(await p.client.request('GET', '/orgs'), 'fresh session');
    await sleep(4000);
    expectError(await p.client.request('GET', '/orgs'), 401, 'UNAUTHORIZED', 'after 4 s idle');
    expectError(await p.client.request('GET', '/session'), 401, 'UNAUTHORIZED', 'after 4 s idle');
    // Signing in again works.
    const again = await signIn(idle, p);
    expectOk(await again.request('GET', '/orgs'), 'new session');
  });

  it('9c. sessions: absolute expiry (sessionMaxHours 0.001 = 3.6 s) even while in use', async () => {
    const p = await signUp(shortLived, { role: 'operator-admin', org: await operatorName(shortLived) });
    const maxAge = /max-age=(\d+)/i.exec(p.client.setCookies[0]!)?.[1];
    assert.ok(maxAge !== undefined && Number(maxAge) <= 4, `cookie Max-Age follows sessionMaxHours: ${p.client.setCookies[0]}`);
    const start = Date.now();
    expectOk(await p.client.request('GET', '/orgs'), 'fresh session');
    await sleep(1800);
    expectOk(await p.client.request('GET', '/orgs'), 'still within 3.6 s');
    await sleep(Math.max(0, start + 4200 - Date.now()));
    expectError(await p.client.request('GET', '/orgs'), 401, 'UNAUTHORIZED', 'past the absolute lifetime');
  });

  it('10. re-authentication: past reauthMinutes (0.02 = 1.2 s) destructive routes answer 403 REAUTH_REQUIRED until a new TOTP proof', async () => {
    const op = await signUp(reauth, { role: 'operator-admin', org: await operatorName(reauth) });
    const targetEmail = `cible-${unique()}@example.fr`;
    const temporary = await createPerson(reauth, { email: targetEmail, name: 'Dominique Cible', role: 'customer-viewer', org: 'cabinet-r' });
    const t = PeopleClient.for(reauth);
    const tl = await t.login(targetEmail, temporary);
    expectOk(tl, 'target sign-in');
    const targetId = tl.json<{ user: { id: string } }>().user.id;

    await sleep(1600);
    expectOk(await op.client.request('GET', '/orgs'), 'reads need no fresh proof');
    expectError(await op.client.request('POST', '/me/recovery-codes'), 403, 'REAUTH_REQUIRED', 'recovery codes after the window');
    expectError(await op.client.request('POST', `/users/${targetId}/reset-password`), 403, 'REAUTH_REQUIRED', 'reset-password after the window');
    expectError(await op.client.request('PATCH', `/users/${targetId}`, { json: { status: 'disabled' } }), 403, 'REAUTH_REQUIRED', 'disable after the window');
    expectOk(await t.request('GET', '/session'), 'the target was not touched');

    const beforeProof = op.client.cookie;
    const proof = await op.client.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(op) } });
    expectOk(proof, 're-authentication');
    assert.notEqual(op.client.cookie, beforeProof, 'the token is replaced at a re-authentication too');
    assert.equal(proof.json<{ stage: string }>().stage, 'full');
    const codes = await op.client.request('POST', '/me/recovery-codes');
    expectOk(codes, 'recovery codes after re-authentication');
    assert.equal(codes.json<{ recoveryCodes: string[] }>().recoveryCodes.length, 10);
    const reset = await op.client.request('POST', `/users/${targetId}/reset-password`);
    expectOk(reset, 'reset-password after re-authentication');
    const newTemporary = reset.json<{ temporaryPassword: string }>().temporaryPassword;
    assert.equal(typeof newTemporary, 'string');
    expectError(await t.request('GET', '/session'), 401, 'UNAUTHORIZED', "a reset ends the target's sessions");
    const relog = await PeopleClient.for(reauth).login(targetEmail, newTemporary);
    expectOk(relog, 'sign-in with the reset password');
    assert.equal(relog.json<{ stage: string }>().stage, 'setup');

    const trail = await auditTrail(reauth);
    assert.ok(trail.some((e) => e.action === 'auth.reauth' && e.outcome === 'success' && e.actorLabel === op.email), 'the re-authentication is audited');
  });

  it('11. a disabled person: their session is refused and signing in gets the same 401 as a wrong password', async () => {
    const op = await mainAdmin();
    const d = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const dId = (await sessionOf(d.client)).user.id;
    const patch = await op.client.request('PATCH', `/users/${dId}`, { json: { status: 'disabled' } });
    expectOk(patch, 'disable');
    assert.equal(patch.json<{ status: string }>().status, 'disabled');

    expectError(await d.client.request('GET', '/session'), 401, 'UNAUTHORIZED', 'session of a disabled person');
    expectError(await d.client.request('GET', '/orgs'), 401, 'UNAUTHORIZED', 'session of a disabled person');
    const right = await PeopleClient.for(main).login(d.email, d.password);
    expectError(right, 401, 'UNAUTHORIZED', 'right password of a disabled person');
    const wrong = await PeopleClient.for(main).login(d.email, `${d.password}-faux`);
    expectError(wrong, 401, 'UNAUTHORIZED', 'wrong password');
    assert.deepEqual(withoutRequestId(right), withoutRequestId(wrong), 'a disabled account is not revealed');
    assert.equal(right.headers['set-cookie'], undefined);

    // Enabled again: signing in works, the old session stays ended.
    expectOk(await op.client.request('PATCH', `/users/${dId}`, { json: { status: 'active' } }), 'enable');
    expectError(await d.client.request('GET', '/session'), 401, 'UNAUTHORIZED', 'old session after re-enabling');
    const back = await PeopleClient.for(main).login(d.email, d.password);
    expectOk(back, 'sign-in after re-enabling');
    assert.equal(back.json<{ stage: string }>().stage, 'second-factor');

    const trail = await auditTrail(main);
    assert.ok(trail.some((e) => e.action === 'user.disable' && e.outcome === 'success' && e.actorLabel === op.email), 'disabling is audited');
  });

  it('11b. a role change, a second-factor reset and a password reset end the person\'s sessions; a reset password is changed first', async () => {
    const op = await mainAdmin();
    const e = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const eId = (await sessionOf(e.client)).user.id;
    const changed = await op.client.request('PATCH', `/users/${eId}`, { json: { role: 'customer-admin' } });
    expectOk(changed, 'role change');
    assert.equal(changed.json<{ role: string }>().role, 'customer-admin');
    expectError(await e.client.request('GET', '/session'), 401, 'UNAUTHORIZED', 'session after a role change');

    const f = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const fId = (await sessionOf(f.client)).user.id;
    expectOk(await op.client.request('POST', `/users/${fId}/reset-second-factor`), 'reset second factor');
    expectError(await f.client.request('GET', '/session'), 401, 'UNAUTHORIZED', 'session after a second-factor reset');
    const back = await PeopleClient.for(main).login(f.email, f.password);
    expectOk(back, 'sign-in after the reset');
    assert.equal(back.json<{ stage: string }>().stage, 'setup', 'no second factor any more: enrol again');
    // A reset password must be changed before anything else, even after the second factor.
    const g = await signUp(main, { role: 'customer-viewer', org: 'cabinet-personnes' });
    const gId = (await sessionOf(g.client)).user.id;
    const reset = await op.client.request('POST', `/users/${gId}/reset-password`);
    expectOk(reset, 'reset password');
    const temporary = reset.json<{ temporaryPassword: string }>().temporaryPassword;
    expectError(await g.client.request('GET', '/session'), 401, 'UNAUTHORIZED', 'session after a password reset');
    const gc = PeopleClient.for(main);
    expectError(await gc.login(g.email, g.password), 401, 'UNAUTHORIZED', 'old password after a reset');
    const gl = await gc.login(g.email, temporary);
    expectOk(gl, 'sign-in with the temporary password');
    assert.equal(gl.json<{ stage: string }>().stage, 'second-factor');
    const gp = await gc.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(g) } });
    expectOk(gp, 'second factor after a reset');
    assert.equal(gp.json<{ stage: string }>().stage, 'setup', 'the temporary password must be changed first');
    expectError(await gc.request('GET', '/orgs'), 403, 'SETUP_REQUIRED', 'before changing the temporary password');
    expectOk(await gc.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword: `Ardoise-Pelican-Lanterne-${unique()}` } }), 'change');
    expectOk(await gc.request('GET', '/orgs'), 'after changing the temporary password');

    // Nobody acts on themselves.
    const opId = (await sessionOf(op.client)).user.id;
    expectError(await op.client.request('PATCH', `/users/${opId}`, { json: { status: 'disabled' } }), 403, 'FORBIDDEN', 'disable oneself');
  });

  it('12. a suspended organisation: its people and its machines get 403 ORG_SUSPENDED, sign-in is refused; resume restores both', async () => {
    const p = await signUp(main, { role: 'customer-admin', org: 'cabinet-suspendu' });
    const token = await main.token('cabinet-suspendu');
    const anon = PeopleClient.for(main);
    const enrolled = await anon.request('POST', '/enroll', { json: { token, machineName: 'poste-accueil', hostname: 'accueil.local', os: 'linux', agentVersion: '0.1.0' } });
    expectOk(enrolled, 'enroll');
    const credential = enrolled.json<{ credential: string }>().credential;
    const machine = (): Promise<Reply> => PeopleClient.for(main).request('GET', '/repo', { anonymous: true, headers: { authorization: `Bearer ${credential}` } });
    expectOk(await machine(), 'machine before suspension');
    expectOk(await p.client.request('GET', '/orgs'), 'person before suspension');

    expectCode(await main.admin(['org', 'suspend', 'cabinet-suspendu']), 0, 'org suspend');
    expectError(await p.client.request('GET', '/orgs'), 403, 'ORG_SUSPENDED', "a suspended organisation's person");
    expectError(await p.client.request('GET', '/session'), 403, 'ORG_SUSPENDED', "a suspended organisation's person");
    const login = await PeopleClient.for(main).login(p.email, p.password);
    assert.ok(login.status === 401 || login.status === 403, `sign-in refused: ${login.status} ${login.text}`);
    assert.equal(login.headers['set-cookie'], undefined, 'no session for a suspended organisation');
    expectError(await machine(), 403, 'ORG_SUSPENDED', "a suspended organisation's machine");

    expectCode(await main.admin(['org', 'resume', 'cabinet-suspendu']), 0, 'org resume');
    expectOk(await p.client.request('GET', '/orgs'), 'person after resume');
    const again = await PeopleClient.for(main).login(p.email, p.password);
    expectOk(again, 'sign-in after resume');
    assert.equal(again.json<{ stage: string }>().stage, 'second-factor');
    expectOk(await machine(), 'machine after resume');
  });

  it('13. a machine credential on a people route and a session cookie on a machine route → 401', async () => {
    const p = await signUp(main, { role: 'customer-admin', org: 'cabinet-machines' });
    const token = await main.token('cabinet-machines');
    const enrolled = await PeopleClient.for(main).request('POST', '/enroll', { json: { token, machineName: 'poste-1', hostname: 'poste-1', os: 'linux', agentVersion: '0.1.0' } });
    expectOk(enrolled, 'enroll');
    const credential = enrolled.json<{ credential: string }>().credential;
    const bearer = { authorization: `Bearer ${credential}` };
    const m = PeopleClient.for(main);
    expectOk(await m.request('GET', '/repo', { headers: bearer }), 'the credential works on its own route');

    expectError(await m.request('GET', '/orgs', { headers: bearer }), 401, 'UNAUTHORIZED', 'machine credential on GET /orgs');
    expectError(await m.request('GET', '/session', { headers: bearer }), 401, 'UNAUTHORIZED', 'machine credential on GET /session');
    expectError(await m.request('GET', '/me/sessions', { headers: bearer }), 401, 'UNAUTHORIZED', 'machine credential on GET /me/sessions');

    expectError(await p.client.request('GET', '/repo'), 401, 'UNAUTHORIZED', 'session cookie on GET /repo');
    expectError(await p.client.request('GET', '/snapshots'), 401, 'UNAUTHORIZED', 'session cookie on GET /snapshots');
    expectError(await p.client.request('GET', '/machines'), 401, 'UNAUTHORIZED', 'session cookie on GET /machines');
    expectOk(await p.client.request('GET', '/orgs'), 'the cookie works on its own routes');
  });
});

