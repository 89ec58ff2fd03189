// Over 400 lines: the scale-out tests' kit (servers with an environment, PostgreSQL and S3
// inspection, agents pointed at either instance, people signing in) kept in one place.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { PG_ADMIN_URL, S3_ENDPOINT, ensureBucket, freshDatabase, freshStoreUrl, s3Env } from './backends.js';
import { COFFRE, COFFRE_SERVER, run, tempDir, type RunResult } from './kit.js';
import { PeopleClient, totpAt } from './people.js';
import { describeTree, diffTrees } from './tree.js';

/**
 * Test kit for several coffre-server instances on PostgreSQL + S3, and for moving an
 * embedded installation there: server processes started with a given environment and
 * listen address on a given data directory (their stdout and JSON log lines kept), agents
 * that can be pointed at another instance, and direct looks at the database and the bucket.
 */

/** A child's environment on top of the test process's; `undefined` removes a variable. */
export type Env = Record<string, string | undefined>;

/** No backend chosen by the environment: the data directory (server.json, or the embedded default) decides. */
export const NO_BACKEND_ENV: Env = { COFFRE_DATABASE_URL: undefined, COFFRE_STORE_URL: undefined, COFFRE_S3_ENDPOINT: undefined };

/** The acceptance form: PostgreSQL and S3 named by the environment, with the S3 endpoint and credentials. */
export function backendEnv(database: string, store: string, extra: Env = {}): Env {
  return { ...s3Env(), COFFRE_DATABASE_URL: database, COFFRE_STORE_URL: store, ...extra };
}

/** A fresh database and a fresh bucket prefix, and the environment that names them. */
export async function freshBackendEnv(): Promise<{ database: string; store: string; env: Env }> {
  const database = await freshDatabase('coffre_scale');
  const store = await freshStoreUrl('scale');
  return { database, store, env: backendEnv(database, store) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `coffre-server ARGS --data-dir DIR` with `env`. */
export function serverCli(dataDir: string, args: readonly string[], env: Env, timeoutMs = 180_000): Promise<RunResult> {
  return run(COFFRE_SERVER, [...args, '--data-dir', dataDir], { env, timeoutMs });
}

/** Runs a command that must succeed; its stdout. */
export async function ok(p: Promise<RunResult>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** A `coffre-server start` that is expected to stop by itself: its result and how long it took. */
export async function startUntilExit(dataDir: string, env: Env, listen = '127.0.0.1:0', timeoutMs = 120_000): Promise<RunResult & { ms: number }> {
  const t0 = Date.now();
  const r = await run(COFFRE_SERVER, ['start', '--data-dir', dataDir, '--listen', listen], { env, timeoutMs });
  return { ...r, ms: Date.now() - t0 };
}

export type LogEvent = Record<string, unknown>;

/** A running `coffre-server start`: its stdout, its stderr line by line (JSON log events), its exit. */
export class ServerProcess {
  url = '';
  fingerprint = '';
  private stdout = '';
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly proc: ChildProcess,
    readonly dataDir: string,
    readonly env: Env,
    readonly listen: string,
  ) {
    this.exited = watchOutput(proc, this.lines, this.waiters, (text) => {
      this.stdout += text;
      this.url ||= /listening on (https:\/\/\S+)/.exec(this.stdout)?.[1] ?? '';
      this.fingerprint ||= /fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/i.exec(this.stdout)?.[1] ?? '';
    });
  }

  /** Starts `coffre-server start --data-dir DIR --listen LISTEN` with `env` and waits until it listens. */
  static async start(dataDir: string, env: Env, opts: { listen?: string; timeoutMs?: number } = {}): Promise<ServerProcess> {
    const listen = opts.listen ?? `127.0.0.1:${await freePort()}`;
    const proc = spawn(COFFRE_SERVER, ['start', '--data-dir', dataDir, '--listen', listen], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new ServerProcess(proc, dataDir, env, listen);
    try {
      await s.until(() => s.url !== '' && s.fingerprint !== '', opts.timeoutMs ?? 90_000, 'listening');
    } catch (err) {
      await s.kill('SIGKILL');
      throw err;
    }
    return s;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get output(): string {
    return `${this.stdout}${this.lines.join('\n')}`;
  }

  /** The stderr lines that are JSON log events, parsed. */
  events(): LogEvent[] {
    const out: LogEvent[] = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l) as LogEvent);
      } catch {
        // not an event
      }
    }
    return out;
  }

  /** The first log event `pred` accepts, waiting for it at most `timeoutMs`. */
  async waitForEvent(pred: (e: LogEvent) => boolean, timeoutMs: number, what: string): Promise<LogEvent> {
    let hit: LogEvent | undefined;
    await this.until(() => (hit = this.events().find(pred)) !== undefined, timeoutMs, what);
    return hit!;
  }

  private until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) {
          done();
          resolve();
        } else if (!this.running) {
          done();
          reject(new Error(`coffre-server (${this.dataDir}) exited before ${what}:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`coffre-server (${this.dataDir}): no ${what} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Sends `signal` (SIGKILL after `timeoutMs`) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `coffre-server ARGS --data-dir` this server's directory, with its environment. */
  cli(args: readonly string[]): Promise<RunResult> {
    return serverCli(this.dataDir, args, this.env);
  }
}

/** Adds `patch` to DIR/server.json (creating the directory and a minimal file if needed). */
export function writeSettings(dataDir: string, patch: Record<string, unknown>): void {
  const file = join(dataDir, 'server.json');
  const current = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : { v: 1 };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify({ ...current, ...patch }, null, 2)}\n`, { mode: 0o600 });
}

export function readSettings(dataDir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as Record<string, unknown>;
}

/** An agent state directory driven through the real `coffre` CLI; it can be copied and pointed at another instance. */
export class Agent {
  readonly configDir: string;
  constructor(
    readonly passphrase = 'une phrase secrète assez longue',
    configDir?: string,
  ) {
    this.configDir = configDir ?? tempDir('agent');
  }

  env(extra: Env = {}): Env {
    // Cheap Argon2 keeps tests fast, as in kit.ts.
    return { COFFRE_CONFIG_DIR: this.configDir, COFFRE_PASSPHRASE: this.passphrase, COFFRE_TEST_ARGON2: '256,1,1', ...extra };
  }

  run(args: readonly string[], extraEnv: Env = {}, timeoutMs = 300_000): Promise<RunResult> {
    return run(COFFRE, args, { env: this.env(extraEnv), timeoutMs });
  }

  /** `coffre ARGS --json`, which must exit 0; the parsed output. */
  async json<T>(args: readonly string[]): Promise<T> {
    const r = await this.run([...args, '--json']);
    if (r.code !== 0) throw new Error(`coffre ${args.join(' ')} --json: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  enroll(server: { url: string; fingerprint: string }, token: string, machine: string): Promise<RunResult> {
    return this.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint, '--machine', machine]);
  }

  config(): { server: string; certPem: string; credential: string; fingerprint: string; machineName: string } {
    return JSON.parse(readFileSync(join(this.configDir, 'config.json'), 'utf8')) as { server: string; certPem: string; credential: string; fingerprint: string; machineName: string };
  }

  /** A copy of this agent's whole state (credential, pinned certificate, cached key, cache) that talks to `serverUrl`. */
  copyTo(serverUrl: string): Agent {
    const dir = tempDir('agent-copy');
    cpSync(this.configDir, dir, { recursive: true, preserveTimestamps: true });
    const file = join(dir, 'config.json');
    const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, `${JSON.stringify({ ...c, server: serverUrl }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return new Agent(this.passphrase, dir);
  }

  /** One request to the API with this machine's credential and pinned certificate (no retry): status, headers, body. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown }> {
    const c = this.config();
    const url = new URL(`/api/v1${path}`, c.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method,
          ca: [c.certPem],
          agent: false,
          checkServerIdentity: () => undefined, // pinned by `ca` alone, like the agent
          headers: { authorization: `Bearer ${c.credential}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? (JSON.parse(text) as unknown) : null;
            } catch {
              // not JSON (binary routes)
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
        },
      );
      req.setTimeout(120_000, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  cleanup(): void {
    rmSync(this.configDir, { recursive: true, force: true });
  }
}

export interface SnapshotInfo {
  readonly id: string;
  readonly time: string;
  readonly machine: string;
  readonly paths: string[];
}

/** Restores snapshot `ref` with `agent` into a scratch directory and lists how it differs from `src` (empty: byte-identical). */
export async function restoreDiff(agent: Agent, ref: string, src: string, skip: readonly string[] = []): Promise<string[]> {
  const target = tempDir('restore');
  try {
    const r = await agent.run(['restore', ref, '--target', target]);
    if (r.code !== 0) return [`restore ${ref} exited ${r.code}: ${r.stderr.trim()}`];
    return diffTrees(describeTree(src, skip), describeTree(join(target, src)));
  } finally {
    rmSync(target, { recursive: true, force: true });
  }
}

/**
 * A tree of binary files: `files` small ones (1 to `smallMaxKiB` KiB) spread over nested
 * directories, `big` files of `bigMiB` MiB, an empty file, a private file and a symlink.
 * Random content: nothing deduplicates against another tree or compresses.
 */
export function buildBinaryTree(root: string, opts: { files: number; smallMaxKiB?: number; big?: number; bigMiB?: number }): { bytes: number } {
  let bytes = 0;
  const put = (rel: string, data: Buffer, mode = 0o644): void => {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, data, { mode });
    chmodSync(p, mode);
    bytes += data.length;
  };
  for (let i = 0; i < opts.files; i++) {
    const kib = 1 + (randomBytes(2).readUInt16BE(0) % (opts.smallMaxKiB ?? 64));
    put(`dossiers/${String(i % 7)}/${String(i % 3)}/fichier-${i}.bin`, randomBytes(kib * 1024 - (i % 97)));
  }
  for (let i = 0; i < (opts.big ?? 0); i++) put(`imagerie/serie-${i}.dcm`, randomBytes((opts.bigMiB ?? 4) * 1024 * 1024 + 12345));
  put('vide.txt', Buffer.alloc(0));
  put('prive/cle.pem', randomBytes(3000), 0o600);
  mkdirSync(join(root, 'liens'), { recursive: true });
  writeFileSync(join(root, 'liens', 'cible.txt'), 'cible\n');
  symlinkSync('cible.txt', join(root, 'liens', 'lien'));
  return { bytes };
}

/** Rows of one query on `url` (a short-lived client). */
export async function pgQuery<T = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** The tables of the public schema of `url`. */
export async function pgTables(url: string): Promise<string[]> {
  const rows = await pgQuery<{ table_name: string }>(url, "select table_name from information_schema.tables where table_schema = 'public' order by 1");
  return rows.map((r) => r.table_name);
}

/** Drops a test database (best effort: forgets connections still open). */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!/^[a-z0-9_]+$/.test(name)) return;
  await pgQuery(PG_ADMIN_URL, `drop database if exists ${name} with (force)`).catch(() => undefined);
}

/** The keys under an s3://BUCKET/PREFIX store URL, relative to the prefix. */
export async function listStoreKeys(storeUrl: string): Promise<string[]> {
  await ensureBucket();
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(storeUrl);
  if (!m) throw new Error(`not an s3:// URL: ${storeUrl}`);
  const bucket = m[1]!;
  const prefix = m[2] ? `${m[2]}/` : '';
  const env = s3Env();
  const s3 = new S3Client({
    region: env.AWS_REGION!,
    endpoint: S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of r.Contents ?? []) keys.push(o.Key!.slice(prefix.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  } finally {
    s3.destroy();
  }
}

/** Polls `probe` until it returns a value other than undefined (fails with `what` after `timeoutMs`). */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A person's client for an instance at `url` whose certificate is in `dataDir`. */
export function peopleClient(url: string, dataDir: string): PeopleClient {
  return new PeopleClient(url, readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8'));
}

/**
 * A first sign-in's set-up on a session in stage setup: the temporary password changed to
 * `password`, a TOTP secret set up and confirmed (with `confirmWith`, which may be another
 * client holding the same session). Returns the secret and the TOTP step used.
 */
export async function completeSetup(client: PeopleClient, temporary: string, password: string, confirmWith: PeopleClient = client): Promise<{ secret: string; step: number }> {
  const changed = await client.request('POST', '/me/password', { json: { currentPassword: temporary, newPassword: password } });
  if (changed.status !== 200) throw new Error(`password change failed: ${changed.status} ${changed.text}`);
  const setup = await client.request('POST', '/me/totp/setup');
  if (setup.status !== 200) throw new Error(`totp setup failed: ${setup.status} ${setup.text}`);
  const secret = setup.json<{ secret: string }>().secret;
  // The oldest step the server accepts (now - 1): the next sign-ins need not wait for the clock.
  const step = Math.floor(Date.now() / 30_000) - 1;
  const confirm = await confirmWith.request('POST', '/me/totp/confirm', { json: { code: totpAt(secret, step) } });
  if (confirm.status !== 200) throw new Error(`totp confirm failed: ${confirm.status} ${confirm.text}`);
  return { secret, step };
}

/** Signs in with password and the TOTP step after `lastStep` (waiting for it if needed); the client and the step used. */
export async function signInWithTotp(client: PeopleClient, email: string, password: string, secret: string, lastStep: number): Promise<{ client: PeopleClient; step: number; stage: string }> {
  const r = await client.login(email, password);
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
  let step: number;
  for (;;) {
    const now = Math.floor(Date.now() / 30_000);
    step = Math.max(now - 1, lastStep + 1);
    if (step <= now + 1) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  const t = await client.request('POST', '/auth/second-factor/totp', { json: { code: totpAt(secret, step) } });
  if (t.status !== 200) throw new Error(`second factor failed: ${t.status} ${t.text}`);
  return { client, step, stage: t.json<{ stage: string }>().stage };
}

/**
 * A new PostgreSQL role with a password of its own and a new database it owns: its URL.
 * Tests that check that a password is never printed use it (the service's admin password
 * is also the test bucket's name). `drop` removes both.
 */
export async function freshDatabaseWithOwnRole(): Promise<{ url: string; password: string; drop: () => Promise<void> }> {
  const suffix = randomBytes(5).toString('hex');
  const role = `coffre_role_${suffix}`;
  const name = `coffre_scale_${suffix}`;
  const password = `Pg-Pw-${randomBytes(9).toString('hex')}`;
  await pgQuery(PG_ADMIN_URL, `create role ${role} login password '${password}'`);
  await pgQuery(PG_ADMIN_URL, `create database ${name} owner ${role}`);
  const u = new URL(PG_ADMIN_URL);
  u.username = role;
  u.password = password;
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    password,
    drop: async () => {
      await pgQuery(PG_ADMIN_URL, `drop database if exists ${name} with (force)`).catch(() => undefined);
      await pgQuery(PG_ADMIN_URL, `drop role if exists ${role}`).catch(() => undefined);
    },
  };
}

/** `url` with its host and port replaced (e.g. to go through a proxy). */
export function withHostPort(url: string, hostPort: string): string {
  const u = new URL(url);
  u.host = hostPort;
  return u.toString();
}

/** A command whose stderr is watched line by line as it comes (e.g. to kill it at a given progress line). */
export class WatchedProcess {
  stdout = '';
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly proc: ChildProcess) {
    this.exited = watchOutput(proc, this.lines, this.waiters, (text) => {
      this.stdout += text;
    });
  }

  static spawn(cmd: string, args: readonly string[], env: Env): WatchedProcess {
    return new WatchedProcess(spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get output(): string {
    return `${this.stdout}${this.lines.join('\n')}`;
  }

  /** The first stderr line matching `re`; fails if the process exits first or after `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.lines.find((l) => re.test(l));
        if (hit !== undefined) {
          done();
          resolve(hit);
        } else if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          done();
          reject(new Error(`the process exited (${this.proc.exitCode ?? this.proc.signalCode}) before a line matching ${re}:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/** Every file under `dir`, relative to it, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  if (existsSync(dir)) walk('');
  return out.sort();
}

/**
 * Follows a child process: its stdout goes to `onStdout` as it comes, its stderr into
 * `lines` one line at a time; every waiter is woken on each change and at exit.
 */
function watchOutput(
  proc: ChildProcess,
  lines: string[],
  waiters: ReadonlySet<() => void>,
  onStdout: (text: string) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let partial = '';
  const wake = (): void => waiters.forEach((w) => w());
  proc.stdout!.on('data', (d: Buffer) => {
    onStdout(d.toString());
    wake();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    wake();
  });
  return new Promise((res) =>
    proc.once('exit', (code, signal) => {
      if (partial) lines.push(partial);
      wake();
      res({ code, signal });
    }),
  );
}
