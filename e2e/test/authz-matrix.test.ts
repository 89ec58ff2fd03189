import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ROOT, TestServer, tempDir } from '../src/kit.js';
import { PeopleClient, nextTotp, signUp, totpAt, type Person, type Reply, type RequestOpts } from '../src/people.js';

/**
 * The route × role matrix of docs/SECURITY.md, checked against a running server: the
 * document's tables are parsed at run time and every row is called by every role on its
 * own tenant and on another one; the OpenAPI document must list exactly the documented
 * routes, and machine and people's credentials must not be interchangeable.
 */

// The spawned server and CLI inherit it: cheap Argon2 for people's passwords.
process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

// ---------------------------------------------------------------------------------------
// The specification: docs/SECURITY.md
// ---------------------------------------------------------------------------------------

const ROLES = ['operator-admin', 'reseller-admin', 'technician', 'customer-admin', 'customer-viewer', 'auditor'] as const;
type Role = (typeof ROLES)[number];
const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

interface Expected {
  readonly own: number;
  readonly other: number;
  /** The cell was a single status (same on both targets, or a route without a target). */
  readonly single: boolean;
}

interface MatrixRow {
  readonly method: string;
  readonly path: string;
  readonly permission: string;
  readonly tenant: string;
  readonly fresh: boolean;
  readonly cells: Readonly<Record<Role, Expected>>;
}

interface PublicRow {
  readonly method: string;
  readonly path: string;
  readonly caller: string;
}

const key = (method: string, path: string): string => `${method} ${path}`;

/** The rows of the markdown table between `<!-- NAME:start -->` and `<!-- NAME:end -->`, header first. */
function tableBetween(doc: string, name: string): { header: string[]; rows: string[][] } {
  const start = doc.indexOf(`<!-- ${name}:start -->`);
  const end = doc.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`docs/SECURITY.md: no <!-- ${name}:start --> … <!-- ${name}:end --> table`);
  const lines = doc
    .slice(start, end)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('|'));
  const cells = lines.map((l) => l.replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim()));
  const [header, separator, ...rows] = cells;
  if (!header || !separator || !separator.every((c) => /^:?-+:?$/.test(c))) throw new Error(`docs/SECURITY.md: the ${name} table has no header`);
  for (const r of rows) if (r.length !== header.length) throw new Error(`docs/SECURITY.md: ${name} row "${r.join(' | ')}" has ${r.length} cells, not ${header.length}`);
  return { header, rows };
}

function parseCell(cell: string, where: string): Expected {
  const m = /^([1-5][0-9]{2})(?:\/([1-5][0-9]{2}))?$/.exec(cell);
  if (!m) throw new Error(`docs/SECURITY.md: ${where}: cell "${cell}" is neither X nor X/Y`);
  const own = Number(m[1]);
  return { own, other: m[2] === undefined ? own : Number(m[2]), single: m[2] === undefined };
}

function parseMatrix(doc: string): MatrixRow[] {
  const { header, rows } = tableBetween(doc, 'matrix');
  const fixed = ['Method', 'Path', 'Permission', 'Tenant', 'Fresh 2FA'];
  assert.deepEqual(header.slice(0, fixed.length), fixed, 'docs/SECURITY.md: matrix columns');
  const roleCols = header.slice(fixed.length);
  assert.deepEqual([...roleCols].sort(), [...ROLES].sort(), 'docs/SECURITY.md: the matrix has one column per role');
  return rows.map((r) => {
    const [method = '', path = '', permission = '', tenant = '', fresh = ''] = r;
    const where = key(method, path);
    if (!/^(GET|POST|PUT|PATCH|DELETE)$/.test(method) || !path.startsWith('/')) throw new Error(`docs/SECURITY.md: malformed matrix row "${r.join(' | ')}"`);
    if (fresh !== '' && fresh !== 'yes') throw new Error(`docs/SECURITY.md: ${where}: Fresh 2FA is "${fresh}", not "yes" or empty`);
    const cells = {} as Record<Role, Expected>;
    roleCols.forEach((role, i) => {
      if (!isRole(role)) throw new Error(`unknown role column ${role}`);
      cells[role] = parseCell(r[fixed.length + i] ?? '', `${where} as ${role}`);
      if (tenant === 'self' && !cells[role].single) throw new Error(`docs/SECURITY.md: ${where} is a self row but has an own/other cell`);
    });
    return { method, path, permission, tenant, fresh: fresh === 'yes', cells };
  });
}

function parsePublic(doc: string): PublicRow[] {
  const { header, rows } = tableBetween(doc, 'public');
  assert.deepEqual(header, ['Method', 'Path', 'Caller'], 'docs/SECURITY.md: public/machine table columns');
  return rows.map(([method = '', path = '', caller = '']) => {
    if (!/^(GET|POST|PUT|PATCH|DELETE)$/.test(method) || !path.startsWith('/')) throw new Error(`docs/SECURITY.md: malformed public row "${method} ${path}"`);
    return { method, path, caller };
  });
}

const DOC = readFileSync(join(ROOT, 'docs/SECURITY.md'), 'utf8');
const MATRIX = parseMatrix(DOC);
const PUBLIC = parsePublic(DOC);
const MACHINE_ROUTES = PUBLIC.filter((r) => r.caller === 'machine');
const TARGETED_ROWS = MATRIX.filter((r) => r.tenant !== 'self');
const SELF_ROWS = MATRIX.filter((r) => r.tenant === 'self');

// ---------------------------------------------------------------------------------------
// Population: operator → resellers A, B → customers A1, A2 (under A), B1 (under B)
// ---------------------------------------------------------------------------------------

type CustomerName = 'A1' | 'A2' | 'B1';

interface Customer {
  readonly name: string;
  readonly id: string;
  readonly machineId: string;
  /** A customer-viewer nobody else uses: the target of /users/{userId} routes. */
  readonly dummy: Person;
  readonly dummyId: string;
}

interface Target {
  /** The customer organisation ({orgId}). */
  readonly orgId: string;
  /** The parent of a new organisation (POST /orgs). */
  readonly parentId: string;
  readonly userId: string;
  readonly machineId: string;
}

/** Where each role of the test population sits, and which customer is its "own" target (docs: Test population, Own). */
const HOME_ORG: Readonly<Record<Role, 'operator' | 'A' | 'A1'>> = {
  'operator-admin': 'operator',
  'reseller-admin': 'A',
  technician: 'A',
  'customer-admin': 'A1',
  'customer-viewer': 'A1',
  auditor: 'A',
};
const OWN_CUSTOMER: Readonly<Record<Role, 'A1' | 'A2'>> = {
  'operator-admin': 'A2',
  'reseller-admin': 'A2',
  technician: 'A2',
  'customer-admin': 'A1',
  'customer-viewer': 'A1',
  auditor: 'A2',
};

const ORG_NAMES = { A: 'revendeur-a', B: 'revendeur-b', A1: 'cabinet-a1', A2: 'cabinet-a2', B1: 'cabinet-b1' } as const;

let server: TestServer;
let orgIds: Record<'operator' | 'A' | 'B', string>;
let customers: Record<CustomerName, Customer>;
let people: Record<Role, Person>;
/** A machine of customer A1 that nothing revokes: its bearer credential is valid throughout. */
let probeCredential: string;
/** When each person last proved their second factor (the sign-up proof counts). */
const provenAt = new Map<Person, number>();
/** Current password of each dummy (reset-password replaces it with a temporary one). */
const dummyPassword = new Map<string, string>();
/** Request ids of the role refusals (403) seen during the walk: each must be in the audit trail. */
const refusals: { requestId: string; what: string }[] = [];

let uniq = 0;
const unique = (): number => ++uniq;

function anonymous(): PeopleClient {
  return PeopleClient.for(server);
}

function ownTarget(role: Role): Target {
  const c = customers[OWN_CUSTOMER[role]];
  return { orgId: c.id, parentId: OWN_CUSTOMER[role] === 'A1' ? c.id : orgIds.A, userId: c.dummyId, machineId: c.machineId };
}

function otherTarget(): Target {
  const c = customers.B1;
  return { orgId: c.id, parentId: orgIds.B, userId: c.dummyId, machineId: c.machineId };
}

async function cli(args: readonly string[]): Promise<string> {
  const r = await server.admin(args);
  if (r.code !== 0) throw new Error(`coffre-server ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

async function enrollMachine(customer: string, machineName: string): Promise<{ machineId: string; credential: string }> {
  const token = await cli(['enroll-token', 'create', '--customer', customer]);
  const r = await anonymous().request('POST', '/enroll', { json: { token, machineName, hostname: `${machineName}.cabinet.local`, os: 'linux', agentVersion: '0.1.0' } });
  assert.equal(r.status, 200, `enroll ${machineName}: ${r.text}`);
  const b = r.json<{ machineId: string; credential: string }>();
  assert.match(b.credential, /^cfm_/);
  return { machineId: b.machineId, credential: b.credential };
}

async function person(role: Role, org: string): Promise<Person> {
  const p = await signUp(server, { role, org });
  provenAt.set(p, Date.now());
  return p;
}

/** A second-factor proof younger than the 5-minute window (with a margin), re-proving with the next TOTP code if needed. */
async function ensureFresh(p: Person): Promise<void> {
  if (Date.now() - (provenAt.get(p) ?? 0) < 4 * 60_000) return;
  const r = await p.client.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(p) } });
  assert.equal(r.status, 200, `re-authentication of ${p.email}: ${r.text}`);
  provenAt.set(p, Date.now());
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

const CODE_FOR_STATUS: Readonly<Record<number, string>> = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND' };

/** `{ error: { code, message, messageFr, requestId, details? } }`, the request id being the response's. */
function assertErrorBody(r: Reply, what: string): void {
  let body: unknown;
  try {
    body = JSON.parse(r.text);
  } catch {
    assert.fail(`${what}: the ${r.status} body is not JSON: ${r.text.slice(0, 200)}`);
  }
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `${what}: error body is not an object`);
  assert.deepEqual(Object.keys(body), ['error'], `${what}: error body ${r.text}`);
  const e = (body as { error: unknown }).error as Record<string, unknown>;
  assert.ok(e !== null && typeof e === 'object', `${what}: error is not an object`);
  for (const k of ['code', 'message', 'messageFr', 'requestId']) {
    assert.equal(typeof e[k], 'string', `${what}: error.${k} in ${r.text}`);
    assert.notEqual(e[k], '', `${what}: empty error.${k}`);
  }
  for (const k of Object.keys(e)) assert.ok(['code', 'message', 'messageFr', 'requestId', 'details'].includes(k), `${what}: unexpected error.${k}`);
  assert.equal(e.requestId, r.headers['x-request-id'], `${what}: error.requestId is the X-Request-Id`);
  const code = CODE_FOR_STATUS[r.status];
  if (code !== undefined) assert.equal(e.code, code, `${what}: ${r.status} code (${String(e.message)})`);
}

function errorCode(r: Reply): string | undefined {
  try {
    return r.json<{ error?: { code?: string } }>().error?.code;
  } catch {
    return undefined;
  }
}

function describeReply(r: Reply): string {
  return `${r.status}${r.status >= 400 ? ` ${errorCode(r) ?? ''}` : ''}`;
}

function cellName(e: Expected): string {
  return e.single ? String(e.own) : `own ${e.own}, other ${e.other}`;
}

// ---------------------------------------------------------------------------------------
// Concrete requests for the targeted rows
// ---------------------------------------------------------------------------------------

const BODIES: Readonly<Record<string, (t: Target) => unknown>> = {
  'POST /orgs': (t) => ({ name: `Cabinet Nouveau ${unique()}`, type: 'customer', parentId: t.parentId }),
  'PATCH /orgs/{orgId}': () => ({ alertEmail: 'alertes@example.fr' }),
  'POST /orgs/{orgId}/users': () => ({ email: `nouvelle.personne${unique()}@example.fr`, name: 'Nouvelle Personne', role: 'customer-viewer' }),
  'PATCH /users/{userId}': () => ({ name: 'Nom Changé' }),
  'POST /orgs/{orgId}/enroll-tokens': () => ({}),
  'POST /machines/{machineId}/reissue': () => ({}),
  'POST /orgs/{orgId}/access-review': () => ({}),
};

const QUERIES: Readonly<Record<string, string>> = { 'GET /audit/export': '?format=json' };

function fillPath(path: string, values: Readonly<Record<string, string>>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`no test value for path parameter {${name}} of ${path}`);
    return encodeURIComponent(v);
  });
}

function targetedRequest(row: MatrixRow, t: Target): { path: string; opts: RequestOpts } {
  const k = key(row.method, row.path);
  const path = fillPath(row.path, { orgId: t.orgId, userId: t.userId, machineId: t.machineId }) + (QUERIES[k] ?? '');
  const body = BODIES[k];
  return { path, opts: body ? { json: body(t) } : {} };
}

/** Keeps the population usable: a suspended customer is resumed at once; a reset password is remembered. */
async function afterCall(row: MatrixRow, t: Target, r: Reply): Promise<void> {
  if (row.method === 'POST' && row.path === '/orgs/{orgId}/suspend' && r.status === 200) {
    const admin = people['operator-admin'];
    await ensureFresh(admin);
    const resumed = await admin.client.request('POST', `/orgs/${t.orgId}/resume`);
    assert.equal(resumed.status, 200, `resuming ${t.orgId} after the suspend test: ${resumed.text}`);
  }
  if (row.method === 'POST' && row.path === '/users/{userId}/reset-password' && r.status === 200) {
    const dummy = Object.values(customers).find((c) => c.dummyId === t.userId);
    const temporary = r.json<{ temporaryPassword?: string }>().temporaryPassword;
    if (dummy && typeof temporary === 'string') dummyPassword.set(dummy.dummy.email, temporary);
  }
}

async function callTargeted(role: Role, row: MatrixRow, t: Target, label: string): Promise<{ label: string; reply: Reply }> {
  const p = people[role];
  if (row.fresh) await ensureFresh(p);
  const { path, opts } = targetedRequest(row, t);
  const reply = await p.client.request(row.method, path, opts);
  await afterCall(row, t, reply);
  return { label, reply };
}

// ---------------------------------------------------------------------------------------
// The self rows: harmless calls on the caller alone, in the documented order
// ---------------------------------------------------------------------------------------

/** A 6-digit code that is not valid for this secret anywhere near now. */
function wrongTotp(secret: string): string {
  const now = Math.floor(Date.now() / 30_000);
  const near = new Set<string>();
  for (let s = now - 3; s <= now + 3; s++) near.add(totpAt(secret, s));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

interface SelfContext {
  readonly p: Person;
  /** Sessions of two other people (the own customer's dummy and B1's), open during the test. */
  readonly otherSessions: readonly { readonly id: string; readonly owner: PeopleClient }[];
}

type SelfRecipe = (ctx: SelfContext) => Promise<Reply[]>;

/** The secret of the TOTP enrolment each person starts (and deliberately fails to confirm). */
const pendingSecret = new Map<Person, string>();

/** In the order of the "self rows" paragraph; POST /auth/logout last. */
const SELF_RECIPES: readonly (readonly [string, SelfRecipe])[] = [
  [
    'GET /session',
    async ({ p }) => {
      const r = await p.client.request('GET', '/session');
      if (r.status === 200) assert.equal(r.json<{ stage: string; user: { email: string } }>().user.email, p.email);
      return [r];
    },
  ],
  [
    'GET /me/sessions',
    async ({ p }) => {
      const r = await p.client.request('GET', '/me/sessions');
      if (r.status === 200) assert.ok(r.json<{ sessions: { current: boolean }[] }>().sessions.some((s) => s.current), 'the current session is listed');
      return [r];
    },
  ],
  ['POST /auth/second-factor/totp', async ({ p }) => [await p.client.request('POST', '/auth/second-factor/totp', { json: { code: wrongTotp(p.totpSecret) } })]],
  ['POST /auth/second-factor/recovery-code', async ({ p }) => [await p.client.request('POST', '/auth/second-factor/recovery-code', { json: { code: 'zzzz-zzzz-zzzz' } })]],
  ['POST /auth/second-factor/webauthn/options', async ({ p }) => [await p.client.request('POST', '/auth/second-factor/webauthn/options')]],
  ['POST /auth/second-factor/webauthn', async ({ p }) => [await p.client.request('POST', '/auth/second-factor/webauthn', { json: { response: {} } })]],
  [
    'POST /me/password',
    async ({ p }) => [await p.client.request('POST', '/me/password', { json: { currentPassword: `pas-${p.password}`, newPassword: 'Cerisier-Lointain-Brume-77!' } })],
  ],
  [
    'POST /me/totp/setup',
    async ({ p }) => {
      const r = await p.client.request('POST', '/me/totp/setup');
      if (r.status === 200) pendingSecret.set(p, r.json<{ secret: string }>().secret);
      return [r];
    },
  ],
  [
    'POST /me/totp/confirm',
    async ({ p }) => {
      const r = await p.client.request('POST', '/me/totp/confirm', { json: { code: wrongTotp(pendingSecret.get(p) ?? p.totpSecret) } });
      // The enrolled authenticator stays.
      const s = await p.client.request('GET', '/session');
      assert.equal(s.status, 200, s.text);
      assert.equal(s.json<{ user: { secondFactors: { totp: boolean } } }>().user.secondFactors.totp, true, 'TOTP still enrolled after a failed confirmation');
      return [r];
    },
  ],
  [
    'POST /me/recovery-codes',
    async ({ p }) => {
      await ensureFresh(p);
      return [await p.client.request('POST', '/me/recovery-codes')];
    },
  ],
  ['POST /me/webauthn/register/options', async ({ p }) => [await p.client.request('POST', '/me/webauthn/register/options')]],
  ['POST /me/webauthn/register', async ({ p }) => [await p.client.request('POST', '/me/webauthn/register', { json: { response: {} } })]],
  [
    'DELETE /me/webauthn/{credentialId}',
    async ({ p }) => {
      await ensureFresh(p);
      return [await p.client.request('DELETE', `/me/webauthn/${Buffer.from(`pas-une-clé-${p.email}`).toString('base64url')}`)];
    },
  ],
  [
    'DELETE /me/sessions/{sessionId}',
    async ({ p, otherSessions }) => {
      const replies: Reply[] = [];
      for (const s of otherSessions) replies.push(await p.client.request('DELETE', `/me/sessions/${s.id}`));
      // Nobody reaches someone else's session: theirs are still open.
      for (const s of otherSessions) {
        const alive = await s.owner.request('GET', '/session');
        assert.equal(alive.status, 200, `session ${s.id} survives: ${alive.text}`);
      }
      return replies;
    },
  ],
  [
    'POST /auth/logout',
    async ({ p }) => {
      const cookie = p.client.cookie;
      const r = await p.client.request('POST', '/auth/logout');
      if (r.status === 200 && cookie) {
        const after = await anonymous().request('GET', '/session', { headers: { cookie } });
        assert.equal(after.status, 401, `the session is over after sign-out: ${after.text}`);
      }
      return [r];
    },
  ],
];


/** Signs a dummy in again (after the resets of the walk) and returns that session's id. */
async function dummySession(c: Customer): Promise<{ id: string; owner: PeopleClient }> {
  const client = anonymous();
  const login = await client.login(c.dummy.email, dummyPassword.get(c.dummy.email) ?? c.dummy.password);
  assert.equal(login.status, 200, `dummy sign-in: ${login.text}`);
  if (login.json<{ stage: string }>().stage === 'second-factor') {
    const t = await client.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(c.dummy) } });
    assert.equal(t.status, 200, `dummy second factor: ${t.text}`);
  }
  const list = await client.request('GET', '/me/sessions');
  assert.equal(list.status, 200, `dummy GET /me/sessions: ${list.text}`);
  const current = list.json<{ sessions: { id: string; current: boolean }[] }>().sessions.find((s) => s.current);
  assert.ok(current, 'the dummy sees its current session');
  return { id: current.id, owner: client };
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

describe('route × role matrix of docs/SECURITY.md', () => {
  before(async () => {
    const dataDir = tempDir('authz');
    mkdirSync(dataDir, { recursive: true });
    // Deliberate failures (wrong codes, wrong passwords) must not be throttled here.
    writeFileSync(
      join(dataDir, 'server.json'),
      `${JSON.stringify({ v: 1, authThrottle: { accountFreeFailures: 1000, accountLockAfter: 2000, ipFreeFailures: 1000, ipLockAfter: 2000 } })}\n`,
      { mode: 0o600 },
    );
    server = await TestServer.start(dataDir);

    // One CLI process at a time: concurrent CLI writers can fail with "database is locked".
    const a = await cli(['org', 'create', ORG_NAMES.A, '--type', 'reseller']);
    const b = await cli(['org', 'create', ORG_NAMES.B, '--type', 'reseller']);
    const a1 = await cli(['org', 'create', ORG_NAMES.A1, '--type', 'customer', '--parent', ORG_NAMES.A]);
    const a2 = await cli(['org', 'create', ORG_NAMES.A2, '--type', 'customer', '--parent', ORG_NAMES.A]);
    const b1 = await cli(['org', 'create', ORG_NAMES.B1, '--type', 'customer', '--parent', ORG_NAMES.B]);

    const orgName = (where: 'operator' | 'A' | 'A1'): string => (where === 'operator' ? 'operator' : ORG_NAMES[where]);
    const signedUp: Partial<Record<Role, Person>> = {};
    for (const role of ROLES) signedUp[role] = await person(role, orgName(HOME_ORG[role]));
    people = signedUp as Record<Role, Person>;

    const list = await people['operator-admin'].client.request('GET', '/orgs');
    assert.equal(list.status, 200, list.text);
    const op = list.json<{ orgs: { id: string; type: string }[] }>().orgs.find((o) => o.type === 'operator');
    assert.ok(op, 'the operator organisation is listed');
    orgIds = { operator: op.id, A: a, B: b };

    const fixture = async (name: CustomerName, id: string): Promise<Customer> => {
      const orgName = ORG_NAMES[name];
      const machine = await enrollMachine(orgName, `poste-${name.toLowerCase()}`);
      const dummy = await person('customer-viewer', orgName);
      const s = await dummy.client.request('GET', '/session');
      assert.equal(s.status, 200, s.text);
      return { name: orgName, id, machineId: machine.machineId, dummy, dummyId: s.json<{ user: { id: string } }>().user.id };
    };
    customers = { A1: await fixture('A1', a1), A2: await fixture('A2', a2), B1: await fixture('B1', b1) };
    probeCredential = (await enrollMachine(ORG_NAMES.A1, 'sonde-a1')).credential;
  });

  after(async () => {
    if (!server) return;
    await server.stop();
    server.cleanup();
  });

  describe('the documented routes are exactly the served ones', () => {
    it('docs/SECURITY.md lists each route once, in one of its two tables', () => {
      const all = [...MATRIX, ...PUBLIC].map((r) => key(r.method, r.path));
      assert.deepEqual(all.filter((k, i) => all.indexOf(k) !== i), [], 'routes listed twice');
      assert.ok(TARGETED_ROWS.length > 0 && SELF_ROWS.length > 0 && MACHINE_ROUTES.length > 0);
    });

    it('GET /openapi.json lists exactly the matrix rows and the public/machine rows', async () => {
      const r = await anonymous().request('GET', '/openapi.json');
      assert.equal(r.status, 200, r.text);
      const paths = r.json<{ paths: Record<string, Record<string, unknown>> }>().paths;
      const served = new Set<string>();
      for (const [p, item] of Object.entries(paths)) {
        assert.ok(p.startsWith('/api/v1/'), `OpenAPI path ${p} is under /api/v1`);
        for (const m of Object.keys(item)) {
          const method = m.toUpperCase();
          if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) continue; // HEAD, OPTIONS, parameters…
          served.add(key(method, p.slice('/api/v1'.length)));
        }
      }
      const documented = new Set([...MATRIX, ...PUBLIC].map((row) => key(row.method, row.path)));
      assert.deepEqual(
        { servedButNotDocumented: [...served].filter((k) => !documented.has(k)).sort(), documentedButNotServed: [...documented].filter((k) => !served.has(k)).sort() },
        { servedButNotDocumented: [], documentedButNotServed: [] },
      );
    });
  });

  describe('machine and people credentials are not interchangeable', () => {
    const paramValues = (): Record<string, string> => ({
      orgId: customers.A1.id,
      userId: customers.A1.dummyId,
      machineId: customers.A1.machineId,
      sessionId: randomUUID(),
      credentialId: 'QUJDRA',
      id: 'ab'.repeat(32),
    });

    it('no machine route is a DELETE (machine credentials are append-only)', () => {
      assert.deepEqual(MACHINE_ROUTES.filter((r) => r.method === 'DELETE').map((r) => key(r.method, r.path)), []);
    });

    it('every matrix route called with a machine bearer credential and no cookie: 401', async () => {
      const valid = await anonymous().request('GET', '/machines', { headers: { authorization: `Bearer ${probeCredential}` } });
      assert.equal(valid.status, 200, `the probe credential works on a machine route: ${valid.text}`);
      const wrong: string[] = [];
      for (const row of MATRIX) {
        const k = key(row.method, row.path);
        const path = fillPath(row.path, paramValues()) + (QUERIES[k] ?? '');
        const body = BODIES[k];
        const t: Target = { orgId: customers.A1.id, parentId: customers.A1.id, userId: customers.A1.dummyId, machineId: customers.A1.machineId };
        const r = await anonymous().request(row.method, path, { headers: { authorization: `Bearer ${probeCredential}` }, ...(body ? { json: body(t) } : {}) });
        if (r.status !== 401) wrong.push(`${k}: ${describeReply(r)}`);
        else assertErrorBody(r, `${k} with a machine credential`);
      }
      assert.deepEqual(wrong, []);
      const still = await anonymous().request('GET', '/machines', { headers: { authorization: `Bearer ${probeCredential}` } });
      assert.equal(still.status, 200, 'the probe credential is still valid');
    });

    it('every machine route called with a full session cookie and no bearer: 401', async () => {
      const p = people['customer-admin'];
      const wrong: string[] = [];
      for (const row of MACHINE_ROUTES) {
        const k = key(row.method, row.path);
        const r = await p.client.request(row.method, fillPath(row.path, paramValues()), row.method === 'GET' ? {} : { json: {} });
        if (r.status !== 401) wrong.push(`${k}: ${describeReply(r)}`);
        else assertErrorBody(r, `${k} with a session cookie`);
      }
      assert.deepEqual(wrong, []);
      const s = await p.client.request('GET', '/session');
      assert.equal(s.status, 200, s.text);
      assert.equal(s.json<{ stage: string }>().stage, 'full', 'the cookie was a full session');
    });
  });

  describe('people: own and other tenant', () => {
    for (const row of TARGETED_ROWS) {
      const route = key(row.method, row.path);
      const targeted = row.tenant.startsWith('param:') || row.tenant.startsWith('body:');
      describe(route, () => {
        for (const role of ROLES) {
          const expected = row.cells[role];
          it(`${route} as ${role}: ${cellName(expected)}`, async () => {
            const calls = targeted
              ? [await callTargeted(role, row, ownTarget(role), 'own'), await callTargeted(role, row, otherTarget(), 'other')]
              : [await callTargeted(role, row, ownTarget(role), 'own')];
            const want = Object.fromEntries(calls.map((c) => [c.label, c.label === 'own' ? expected.own : expected.other]));
            const got = Object.fromEntries(calls.map((c) => [c.label, c.reply.status]));
            const detail = calls.map((c) => `${c.label}: ${c.reply.status} ${c.reply.status >= 400 ? c.reply.text.slice(0, 300) : ''}`).join('; ');
            assert.deepEqual(got, want, `${route} as ${role} — ${detail}`);
            for (const c of calls) {
              if (c.reply.status >= 400) assertErrorBody(c.reply, `${route} as ${role} (${c.label})`);
              // Refusals for lack of permission (403) and attempts on another tenant's object (404).
              if (c.reply.status === 403 || (c.reply.status === 404 && c.label === 'other')) refusals.push({ requestId: String(c.reply.headers['x-request-id']), what: `${route} as ${role} (${c.label})` });
            }
          });
        }
      });
    }

    it('every refusal for lack of permission, and every attempt on another tenant, is in the audit trail (access.denied)', async () => {
      assert.ok(refusals.length > 0, 'the walk saw refusals');
      const admin = people['operator-admin'];
      const seen = new Set<string>();
      let before: number | null = null;
      for (let page = 0; page < 20; page++) {
        const r = await admin.client.request('GET', `/audit?action=access.denied&limit=500${before === null ? '' : `&before=${before}`}`);
        assert.equal(r.status, 200, r.text);
        const b = r.json<{ entries: { requestId: string | null }[]; nextBefore: number | null }>();
        for (const e of b.entries) if (e.requestId) seen.add(e.requestId);
        if (b.nextBefore === null) break;
        before = b.nextBefore;
      }
      assert.deepEqual(
        refusals.filter((x) => !seen.has(x.requestId)).map((x) => x.what),
        [],
      );
    });
  });

  describe('people: self rows (the caller alone)', () => {
    const recipes = new Map(SELF_RECIPES);
    const order = SELF_RECIPES.map(([k]) => k);
    const rows = [...SELF_ROWS].sort((x, y) => {
      const ix = order.indexOf(key(x.method, x.path));
      const iy = order.indexOf(key(y.method, y.path));
      return (ix < 0 ? order.length : ix) - (iy < 0 ? order.length : iy);
    });
    const sessions = {} as Record<CustomerName, { id: string; owner: PeopleClient }>;

    before(async () => {
      // The walk reset the dummies' credentials (ending their sessions): sign them in again.
      for (const name of ['A1', 'A2', 'B1'] as const) sessions[name] = await dummySession(customers[name]);
    });

    for (const role of ROLES) {
      describe(`as ${role}`, () => {
        for (const row of rows) {
          const route = key(row.method, row.path);
          const expected = row.cells[role].own;
          it(`${route} as ${role}: ${expected}`, async () => {
            const recipe = recipes.get(route);
            assert.ok(recipe, `docs/SECURITY.md has a self row ${route} but the "self rows" paragraph gives no harmless call for it`);
            const p = people[role];
            const otherSessions = [sessions[OWN_CUSTOMER[role]], sessions.B1];
            const replies = await recipe({ p, otherSessions });
            assert.deepEqual(
              replies.map((r) => r.status),
              replies.map(() => expected),
              `${route} as ${role} — ${replies.map((r) => `${r.status} ${r.status >= 400 ? r.text.slice(0, 300) : ''}`).join('; ')}`,
            );
            for (const r of replies) if (r.status >= 400) assertErrorBody(r, `${route} as ${role}`);
          });
        }
      });
    }
  });
});
