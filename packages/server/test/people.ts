import { base32Decode } from '@coffre/core';
import { adminCreateOrg, adminCreateUser } from '../src/admin/index.js';
import { totpCode, totpStep } from '../src/auth/totp.js';
import type { Role } from '../src/http/roles.js';
import type { HttpResponse, RequestOptions, TestServer } from './kit.js';

/**
 * A person's client for in-process HTTP tests: a cookie jar of one session cookie, and the
 * CSRF token sent on every unsafe request. The server rotates the cookie at second-factor
 * proofs; the jar follows.
 */
export class Browser {
  cookie: string | null = null;
  csrf: string | null = null;
  constructor(private readonly ts: TestServer) {}

  async request(method: string, path: string, o: RequestOptions & { noCsrf?: boolean } = {}): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...o.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (this.csrf && !o.noCsrf && method !== 'GET') headers['x-csrf-token'] = this.csrf;
    const res = await this.ts.request(method, path, { ...o, headers });
    for (const c of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
      const pair = c.split(';', 1)[0]!;
      this.cookie = pair.endsWith('=') ? null : pair;
    }
    if (res.status < 300 && String(res.headers['content-type']).includes('json')) {
      const b = res.json<{ csrfToken?: string }>();
      if (b && typeof b.csrfToken === 'string') this.csrf = b.csrfToken;
    }
    return res;
  }
}

export interface TestPerson {
  readonly id: string;
  readonly email: string;
  readonly password: string;
  readonly secret: Buffer;
  readonly browser: Browser;
  lastStep: number;
}

/** The next TOTP code the server accepts for this person (a later step each time, within ±1 of the server clock). */
export function nextCode(ts: TestServer, p: TestPerson): string {
  const now = totpStep(ts.clock.now().getTime());
  const step = Math.max(now - 1, p.lastStep + 1);
  if (step > now + 1) {
    ts.clock.advance(30_000);
    return nextCode(ts, p);
  }
  p.lastStep = step;
  return totpCode(p.secret, step);
}

let seq = 0;

/** Creates a person (admin functions, like the CLI) and completes the first sign-in: new password, TOTP. */
export async function person(ts: TestServer, role: Role, orgName: string): Promise<TestPerson> {
  const n = ++seq;
  const email = `p${n}.${role}@example.fr`;
  const { user, temporaryPassword } = await adminCreateUser(ts.admin, { email, name: `Personne Numéro${n}`, role, orgName });
  const b = new Browser(ts);
  const ok = (r: HttpResponse, what: string): HttpResponse => {
    if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.body.toString()}`);
    return r;
  };
  ok(await b.request('POST', '/auth/login', { json: { email, password: temporaryPassword } }), 'login');
  const password = `Clavecin-Orange-${n}-Marée!`;
  ok(await b.request('POST', '/me/password', { json: { currentPassword: temporaryPassword, newPassword: password } }), 'password');
  const setup = ok(await b.request('POST', '/me/totp/setup'), 'totp setup').json<{ secret: string }>();
  const secret = base32Decode(setup.secret);
  const step = totpStep(ts.clock.now().getTime());
  ok(await b.request('POST', '/me/totp/confirm', { json: { code: totpCode(secret, step) } }), 'totp confirm');
  return { id: user.id, email, password, secret, browser: b, lastStep: step };
}

export async function org(ts: TestServer, name: string, type: 'reseller' | 'customer', parent?: string): Promise<string> {
  return (await adminCreateOrg(ts.admin, name, type, parent)).id;
}
