import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/**
 * A job's pre or post command: run by the system shell (/bin/sh -c, cmd.exe on Windows)
 * in its own process group, with a time limit. Its output goes line by line to the
 * daemon's log (never to the server). The passphrase is not passed on.
 */
export interface HookResult {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  /** Set when the command could not be started at all. */
  readonly error?: string;
}

export interface HookOptions {
  readonly timeoutMs: number;
  /** Extra environment (COFFRE_JOB, COFFRE_HOOK, COFFRE_RESULT). */
  readonly env: Record<string, string>;
  readonly onLine: (stream: 'stdout' | 'stderr', line: string) => void;
}

/** Lines longer than this are cut; after this many lines, the rest is counted, not logged. */
const MAX_LINE = 2000;
const MAX_LINES = 500;

/** Running hooks, killed if the daemon has to stop before they end. */
const running = new Set<ChildProcess>();

function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    if (process.platform === 'win32') spawnSync('taskkill', ['/pid', String(child.pid), '/T', '/F'], { stdio: 'ignore' });
    else process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Kills every running hook (the daemon is stopping for good). */
export function killRunningHooks(): void {
  for (const c of running) killTree(c, 'SIGKILL');
}

export function hookEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.COFFRE_PASSPHRASE;
  return env;
}

export function runHook(command: string, o: HookOptions): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(command, { shell: true, detached: process.platform !== 'win32', stdio: ['ignore', 'pipe', 'pipe'], env: hookEnv(o.env), windowsHide: true });
    } catch (e) {
      resolve({ ok: false, exitCode: null, signal: null, timedOut: false, durationMs: 0, error: (e as Error).message });
      return;
    }
    running.add(child);
    let lines = 0;
    let dropped = 0;
    const reader = (stream: 'stdout' | 'stderr') => {
      let buf = '';
      const emit = (line: string) => {
        if (lines >= MAX_LINES) {
          dropped++;
          return;
        }
        lines++;
        o.onLine(stream, line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
      };
      return {
        data: (d: Buffer) => {
          buf += d.toString('utf8');
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            emit(buf.slice(0, i).replace(/\r$/, ''));
            buf = buf.slice(i + 1);
          }
          if (buf.length > MAX_LINE * 4) {
            emit(buf);
            buf = '';
          }
        },
        end: () => {
          if (buf) emit(buf);
          buf = '';
        },
      };
    };
    const out = reader('stdout');
    const err = reader('stderr');
    child.stdout!.on('data', out.data);
    child.stderr!.on('data', err.data);
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killTree(child, 'SIGTERM');
      killer = setTimeout(() => killTree(child, 'SIGKILL'), 5000);
    }, o.timeoutMs);
    let settled = false;
    const finish = (r: Omit<HookResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      if (timedOut) killTree(child, 'SIGKILL'); // nothing of a timed-out command lives on
      running.delete(child);
      out.end();
      err.end();
      if (dropped > 0) o.onLine('stderr', `(${dropped} more line(s) of output not logged)`);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({ ...r, durationMs: Date.now() - started });
    };
    child.on('error', (e) => finish({ ok: false, exitCode: null, signal: null, timedOut, error: e.message }));
    child.on('exit', (code, signal) => {
      const r = { ok: !timedOut && code === 0, exitCode: code, signal, timedOut };
      // Output still in the pipes arrives before 'close'; a command that left a background
      // process holding its output is not waited for beyond a second.
      child.once('close', () => finish(r));
      setTimeout(() => finish(r), 1000).unref();
    });
  });
}
