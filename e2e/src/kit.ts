import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareDataDir } from './backends.js';

/**
 * Black-box test kit: real `coffre-server` and `coffre` processes from ./bin, talking
 * HTTPS on loopback, each test with its own temporary directories.
 */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const COFFRE = join(ROOT, 'bin/coffre');
export const COFFRE_SERVER = join(ROOT, 'bin/coffre-server');

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `coffre-${prefix}-`));
}

export class TestServer {
  private constructor(
    readonly dataDir: string,
    readonly url: string,
    readonly fingerprint: string,
    private proc: ChildProcess | null,
    private readonly listen: string,
  ) {}

  /** `extraArgs` go to `coffre-server start` (e.g. --tls-cert/--tls-key, recorded in the data directory). */
  static async start(dataDir = tempDir('server'), listen = '127.0.0.1:0', extraArgs: readonly string[] = []): Promise<TestServer> {
    await prepareDataDir(dataDir);
    const { proc, url, fingerprint } = await TestServer.spawnServer(dataDir, listen, extraArgs);
    return new TestServer(dataDir, url, fingerprint, proc, listen);
  }

  private static spawnServer(dataDir: string, listen: string, extraArgs: readonly string[] = []): Promise<{ proc: ChildProcess; url: string; fingerprint: string }> {
    return new Promise((res, rej) => {
      const proc = spawn(COFFRE_SERVER, ['start', '--data-dir', dataDir, '--listen', listen, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const timer = setTimeout(() => rej(new Error(`server did not start in time: ${out}${err}`)), 60_000);
      proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const url = /listening on (https:\/\/\S+)/.exec(out)?.[1];
        const fp = /fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/i.exec(out)?.[1];
        if (url && fp) {
          clearTimeout(timer);
          res({ proc, url, fingerprint: fp });
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`server exited with ${code}: ${out}${err}`));
      });
    });
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async admin(args: readonly string[]): Promise<RunResult> {
    return run(COFFRE_SERVER, [...args, '--data-dir', this.dataDir]);
  }

  async createCustomer(name: string): Promise<void> {
    const r = await this.admin(['customer', 'create', name]);
    if (r.code !== 0) throw new Error(`customer create failed: ${r.stderr}`);
  }

  async token(customer: string): Promise<string> {
    const r = await this.admin(['enroll-token', 'create', '--customer', customer]);
    if (r.code !== 0) throw new Error(`enroll-token create failed: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** Stops the server (SIGTERM, or SIGKILL to simulate a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill(signal);
    });
    this.proc = null;
  }

  /** Restarts on the same port and data directory (after stop). */
  async restart(): Promise<void> {
    const port = new URL(this.url).port;
    const { proc } = await TestServer.spawnServer(this.dataDir, `127.0.0.1:${port}`);
    this.proc = proc;
  }

  cleanup(): void {
    rmSync(this.dataDir, { recursive: true, force: true });
  }
  get listenSpec(): string {
    return this.listen;
  }
}

export class TestAgent {
  readonly configDir: string;
  constructor(
    readonly server: TestServer,
    readonly passphrase = 'une phrase secrète assez longue',
    configDir?: string,
  ) {
    this.configDir = configDir ?? tempDir('agent');
  }

  env(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    // Cheap Argon2 keeps tests fast; production uses 64 MiB (see docs/FORMAT.md).
    return { COFFRE_CONFIG_DIR: this.configDir, COFFRE_PASSPHRASE: this.passphrase, COFFRE_TEST_ARGON2: '256,1,1', ...extra };
  }

  run(args: readonly string[], extraEnv: Record<string, string | undefined> = {}, timeoutMs?: number): Promise<RunResult> {
    return run(COFFRE, args, { env: this.env(extraEnv), ...(timeoutMs ? { timeoutMs } : {}) });
  }

  async enroll(customer: string, machine: string): Promise<RunResult> {
    const token = await this.server.token(customer);
    return this.run(['enroll', '--server', this.server.url, '--token', token, '--fingerprint', this.server.fingerprint, '--machine', machine]);
  }

  async json<T>(args: readonly string[]): Promise<T> {
    const r = await this.run([...args, '--json']);
    if (r.code !== 0 && r.code !== 3) throw new Error(`coffre ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /**
   * A request to the API with this machine's own credential and pinned certificate, as its
   * agent would make it: for tests that need a machine to say something the agent only says
   * in rare situations (a failed run).
   */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const c = JSON.parse(readFileSync(join(this.configDir, 'config.json'), 'utf8')) as { server: string; certPem: string; credential: string };
    const url = new URL(`/api/v1${path}`, c.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method,
          ca: [c.certPem],
          checkServerIdentity: () => undefined, // pinned by `ca` alone, like the agent
          headers: { authorization: `Bearer ${c.credential}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : null }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Reports a failed backup run with this machine's credential (a failure the agent would report). */
  async reportFailedRun(errorCode: string, durationMs = 60_000): Promise<void> {
    const r = await this.api('POST', '/runs', {
      startedAt: new Date(Date.now() - durationMs).toISOString(),
      finishedAt: new Date().toISOString(),
      result: 'failed',
      files: 0,
      bytes: 0,
      addedBytes: 0,
      warnings: 0,
      errorCode,
    });
    if (r.status !== 201) throw new Error(`run report refused: ${r.status} ${JSON.stringify(r.body)}`);
  }

  cleanup(): void {
    rmSync(this.configDir, { recursive: true, force: true });
  }
}

/** Fails with the whole output when a command did not exit as expected. */
export function expectCode(r: RunResult, code: number, what: string): void {
  if (r.code !== code) throw new Error(`${what}: expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** A fresh server with one customer and one enrolled agent; `stop` removes everything. */
export async function startWithAgent(customer = 'c', machine = 'm'): Promise<{ server: TestServer; agent: TestAgent; stop: () => Promise<void> }> {
  const server = await TestServer.start();
  await server.createCustomer(customer);
  const agent = new TestAgent(server);
  expectCode(await agent.enroll(customer, machine), 0, 'enroll');
  return {
    server,
    agent,
    stop: async () => {
      await server.stop();
      server.cleanup();
      agent.cleanup();
    },
  };
}

/** A real SMTP server process (e2e/src/smtp-sink.ts) and the emails it received, parsed. */
export class SmtpSink {
  private constructor(
    private readonly proc: ChildProcess,
    readonly dir: string,
    readonly port: number,
  ) {}

  static start(opts: { cert?: string; key?: string; rejectFirst?: number } = {}): Promise<SmtpSink> {
    const dir = tempDir('smtp');
    const args = [join(ROOT, 'e2e/dist/src/smtp-sink.js'), '--dir', dir];
    if (opts.cert && opts.key) args.push('--cert', opts.cert, '--key', opts.key);
    if (opts.rejectFirst) args.push('--reject-first', String(opts.rejectFirst));
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    return new Promise((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new Error(`smtp sink did not start: ${out}`)), 15_000);
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const port = /listening on (\d+)/.exec(out)?.[1];
        if (port) {
          clearTimeout(timer);
          res(new SmtpSink(proc, dir, Number(port)));
        }
      });
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      proc.on('exit', (code) => rej(new Error(`smtp sink exited with ${code}: ${out}`)));
    });
  }

  /** The URL the server should use (plain SMTP; STARTTLS when the sink offers it). */
  get url(): string {
    return `smtp://127.0.0.1:${this.port}?tls.rejectUnauthorized=false`;
  }

  /** Every email received so far, in arrival order, parsed (mailparser) with its envelope. */
  async messages(): Promise<ReceivedEmail[]> {
    const { simpleParser } = await import('mailparser');
    const names = readdirSync(this.dir).filter((f) => f.endsWith('.eml')).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    const out: ReceivedEmail[] = [];
    for (const f of names) {
      const env = JSON.parse(readFileSync(join(this.dir, f.replace(/\.eml$/, '.json')), 'utf8')) as { to: string[]; secure: boolean };
      const mail = await simpleParser(readFileSync(join(this.dir, f)));
      out.push({ to: env.to, secure: env.secure, subject: mail.subject ?? '', text: mail.text ?? '', html: typeof mail.html === 'string' ? mail.html : '', from: mail.from?.text ?? '' });
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      await new Promise<void>((r) => {
        this.proc.once('exit', () => r());
        this.proc.kill('SIGTERM');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ReceivedEmail {
  readonly to: readonly string[];
  /** The SMTP session was upgraded to TLS. */
  readonly secure: boolean;
  readonly from: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/**
 * A long-running `coffre` process (the daemon) whose stderr is read line by line as it
 * comes: tests wait for a log line instead of sleeping.
 */
export class AgentProcess {
  readonly lines: string[] = [];
  private stdout = '';
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly proc: ChildProcess) {
    let partial = '';
    proc.stderr!.on('data', (d: Buffer) => {
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
      this.waiters.forEach((w) => w());
    });
    proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.exited = new Promise((res) =>
      proc.once('exit', (code, signal) => {
        if (partial) this.lines.push(partial);
        this.waiters.forEach((w) => w());
        res({ code, signal });
      }),
    );
  }

  /** Starts `coffre ARGS` with the agent's environment. */
  static start(agent: TestAgent, args: readonly string[], extraEnv: Record<string, string | undefined> = {}): AgentProcess {
    return new AgentProcess(spawn(COFFRE, args, { env: { ...process.env, ...agent.env(extraEnv) }, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get output(): string {
    return `${this.stdout}${this.lines.join('\n')}`;
  }

  /** The log lines that are JSON objects (the daemon's events), parsed. */
  events(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not an event
      }
    }
    return out;
  }

  /** Resolves with the first event (from index `from` on) that `pred` accepts; fails with the log after `timeoutMs`. */
  waitForEvent(pred: (e: Record<string, unknown>) => boolean, timeoutMs: number, from = 0): Promise<Record<string, unknown>> {
    return new Promise((res, rej) => {
      const check = () => {
        const hit = this.events().slice(from).find(pred);
        if (hit) {
          done();
          res(hit);
        } else if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          done();
          rej(new Error(`the process exited before the awaited event:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`no such event within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Sends a signal and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
