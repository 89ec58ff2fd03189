import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { base32Decode } from '@coffre/core';
import type { TestServer } from './kit.js';

/**
 * A person's HTTP client for black-box tests of the control plane: keeps the session
 * cookie like a browser (replacing it when the server rotates it) and sends the CSRF
 * token on every unsafe request unless told not to.
 */
export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface RequestOpts {
  readonly json?: unknown;
  readonly headers?: Record<string, string>;
  /** Leave out the X-CSRF-Token header (to test the anti-forgery check). */
  readonly noCsrf?: boolean;
  /** Send no cookie at all. */
  readonly anonymous?: boolean;
}

export class PeopleClient {
  cookie: string | null = null;
  csrf: string | null = null;
  /** Every Set-Cookie header seen, for attribute checks. */
  readonly setCookies: string[] = [];

  constructor(
    readonly baseUrl: string,
    private readonly ca: string,
  ) {}

  static for(server: TestServer): PeopleClient {
    return new PeopleClient(server.url, readFileSync(join(server.dataDir, 'tls', 'cert.pem'), 'utf8'));
  }

  request(method: string, path: string, o: RequestOpts = {}): Promise<Reply> {
    const headers: Record<string, string> = { 'user-agent': 'coffre-e2e', ...o.headers };
    let body: Buffer | undefined;
    if (o.json !== undefined) {
      body = Buffer.from(JSON.stringify(o.json));
      headers['content-type'] = 'application/json';
    }
    if (!o.anonymous && this.cookie) headers.cookie = this.cookie;
    if (!o.noCsrf && this.csrf && !['GET', 'HEAD'].includes(method)) headers['x-csrf-token'] = this.csrf;
    return new Promise((resolve, reject) => {
      const req = https.request(new URL(`/api/v1${path}`, this.baseUrl), { method, headers, ca: this.ca, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const set = res.headers['set-cookie'];
          for (const c of set ?? []) {
            this.setCookies.push(c);
            const pair = c.split(';', 1)[0]!;
            this.cookie = pair.endsWith('=') ? null : pair;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          const reply: Reply = { status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
          if (reply.status < 300 && (res.headers['content-type'] ?? '').includes('json')) {
            const b = JSON.parse(text) as { csrfToken?: unknown };
            if (b && typeof b === 'object' && typeof b.csrfToken === 'string') this.csrf = b.csrfToken;
          }
          resolve(reply);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  login(email: string, password: string): Promise<Reply> {
    return this.request('POST', '/auth/login', { json: { email, password } });
  }
}

/** RFC 6238 code of a base32 secret, `offset` steps from now (tests use +1 for a second proof within the window). */
export function totp(secretBase32: string, offset = 0, nowMs = Date.now()): string {
  return totpAt(secretBase32, Math.floor(nowMs / 30_000) + offset);
}

export function totpAt(secretBase32: string, step: number): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', base32Decode(secretBase32)).update(msg).digest();
  const o = h[h.length - 1]! & 0x0f;
  const n = (h.readUInt32BE(o) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

export interface Person {
  readonly email: string;
  readonly name: string;
  readonly password: string;
  readonly totpSecret: string;
  readonly recoveryCodes: readonly string[];
  readonly client: PeopleClient;
  /** Last TOTP time step used: the server refuses it and every earlier one. */
  lastStep: number;
}

/**
 * The next code the server will accept for this person: a step after the last one used,
 * within the server's window (now ± 1 step), waiting for time to move on if needed.
 */
export async function nextTotp(p: Person): Promise<string> {
  for (;;) {
    const now = Math.floor(Date.now() / 30_000);
    const step = Math.max(now - 1, p.lastStep + 1);
    if (step <= now + 1) {
      p.lastStep = step;
      return totpAt(p.totpSecret, step);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

let seq = 0;

/**
 * Creates a person with the CLI (as acceptance scripts do), then goes through the first
 * sign-in like the console: temporary password → new password → TOTP enrolment. Returns
 * a client whose session is complete ('full').
 */
export async function signUp(server: TestServer, o: { role: string; org: string; email?: string; name?: string }): Promise<Person> {
  const n = ++seq;
  const email = o.email ?? `person${n}.${o.role}@example.fr`;
  const name = o.name ?? `Personne Test${n}`;
  const r = await server.admin(['user', 'create', '--email', email, '--name', name, '--role', o.role, '--org', o.org]);
  if (r.code !== 0) throw new Error(`user create failed (${r.code}): ${r.stderr}`);
  const temporary = r.stdout.trim();
  const client = PeopleClient.for(server);
  const login = await client.login(email, temporary);
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  const password = `Tr0mbone-Vert-Horizon-${n}!`;
  const changed = await client.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword: password } });
  if (changed.status !== 200) throw new Error(`password change failed: ${changed.status} ${changed.text}`);
  const setup = await client.request('POST', '/me/totp/setup');
  if (setup.status !== 200) throw new Error(`totp setup failed: ${setup.status} ${setup.text}`);
  const secret = setup.json<{ secret: string }>().secret;
  const step = Math.floor(Date.now() / 30_000);
  const confirm = await client.request('POST', '/me/totp/confirm', { json: { code: totpAt(secret, step) } });
  if (confirm.status !== 200) throw new Error(`totp confirm failed: ${confirm.status} ${confirm.text}`);
  const session = await client.request('GET', '/session');
  if (session.json<{ stage: string }>().stage !== 'full') throw new Error(`session not complete after set-up: ${session.text}`);
  return { email, name, password, totpSecret: secret, recoveryCodes: confirm.json<{ recoveryCodes: string[] }>().recoveryCodes, client, lastStep: step };
}

/** Signs in again from scratch (password + the next unused TOTP step); returns the new client. */
export async function signIn(server: TestServer, p: Person): Promise<PeopleClient> {
  const client = PeopleClient.for(server);
  const r = await client.login(p.email, p.password);
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
  const t = await client.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(p) } });
  if (t.status !== 200) throw new Error(`second factor failed: ${t.status} ${t.text}`);
  return client;
}
