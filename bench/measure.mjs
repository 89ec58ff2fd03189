// Process measurement helpers: wall time, peak RSS (GNU time), /proc VmHWM of
// a process tree, directory sizes.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { setTimeout, clearTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';

export const TIME_BIN = '/usr/bin/time';

/**
 * Inherited environment minus variables that would silently change how a tool
 * behaves (RESTIC_COMPRESSION, BORG_*, coffre test knobs such as a weakened KDF).
 */
export function baseEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(RESTIC_|BORG_|COFFRE_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/**
 * Run a command under `/usr/bin/time -f "%e %M %U %S"`.
 * stdout goes to `<logBase>.out`, stderr to `<logBase>.err`.
 * @returns {Promise<{ok:boolean, exit_code:number|null, signal:string|null, wall_ms:number,
 *   peak_rss_kib:number|null, user_s:number|null, sys_s:number|null, timed_out:boolean,
 *   stdout_file:string, stderr_file:string, cmdline:string}>}
 */
export async function runMeasured({ cmd, args = [], env = {}, cwd, logBase, timeoutMs = 3600_000 }) {
  fs.mkdirSync(path.dirname(logBase), { recursive: true });
  const timeFile = `${logBase}.time`;
  const outFile = `${logBase}.out`;
  const errFile = `${logBase}.err`;
  const out = fs.openSync(outFile, 'w');
  const err = fs.openSync(errFile, 'w');
  fs.rmSync(timeFile, { force: true });
  const t0 = performance.now();
  const child = spawn(TIME_BIN, ['-f', '%e %M %U %S', '-o', timeFile, cmd, ...args], {
    cwd, env: { ...baseEnv(), ...env }, stdio: ['ignore', out, err], detached: true,
  });
  fs.closeSync(out);
  fs.closeSync(err);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, timeoutMs);
  const { code, signal } = await new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: null, signal: null, error: e }));
    child.on('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  let peak = null;
  let user = null;
  let sys = null;
  try {
    const lines = fs.readFileSync(timeFile, 'utf8').trim().split('\n');
    const m = lines[lines.length - 1].trim().split(/\s+/).map(Number);
    if (m.length === 4 && m.every(Number.isFinite)) [, peak, user, sys] = m;
  } catch {
    // time output missing (killed)
  }
  return {
    ok: code === 0 && !timedOut,
    exit_code: code,
    signal,
    timed_out: timedOut,
    wall_ms: Math.round(wallMs * 10) / 10,
    peak_rss_kib: peak,
    user_s: user,
    sys_s: sys,
    stdout_file: outFile,
    stderr_file: errFile,
    cmdline: [cmd, ...args].map(shellQuote).join(' '),
  };
}

/** Run a helper command (not measured). Throws on failure unless allowFail. */
export function run(cmd, args, { env = {}, cwd, allowFail = false, input, timeoutMs = 600_000 } = {}) {
  const r = spawnSync(cmd, args, {
    cwd, env: { ...baseEnv(), ...env }, encoding: 'utf8', input, maxBuffer: 64 << 20, timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  if (!allowFail && (r.error || r.status !== 0)) {
    const msg = r.error ? r.error.message : `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`;
    throw new Error(`${cmd} ${args.join(' ')} failed: ${msg}\n${tail(r.stderr || '')}${tail(r.stdout || '')}`);
  }
  return r;
}

export function tail(text, lines = 15) {
  const t = String(text).trimEnd().split('\n');
  return t.slice(-lines).join('\n');
}

export function tailFile(file, lines = 15) {
  try {
    return tail(fs.readFileSync(file, 'utf8'), lines);
  } catch {
    return '';
  }
}

/** Apparent size in bytes of a directory tree (`du -sb`). */
export function duBytes(dir) {
  if (!fs.existsSync(dir)) return null;
  const r = run('du', ['-sb', dir], { allowFail: true });
  const n = parseInt(String(r.stdout).split(/\s/)[0], 10);
  return Number.isFinite(n) ? n : null;
}

export function syncDisks() {
  run('sync', [], { allowFail: true });
}

function readStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => {
      const m = s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) : null;
    };
    const name = (s.match(/^Name:\s+(.*)$/m) || [])[1];
    return { pid, name, hwm_kib: get('VmHWM'), rss_kib: get('VmRSS') };
  } catch {
    return null;
  }
}

let clkTck = null;
function ticksPerSecond() {
  if (clkTck == null) clkTck = Number(run('getconf', ['CLK_TCK'], { allowFail: true }).stdout) || 100;
  return clkTck;
}

/** Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat). */
export function machineBusySeconds() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + (steal || 0)) / ticksPerSecond();
}

/** CPU seconds used so far by pid and its live descendants (incl. reaped children). */
export function procTreeCpuSeconds(pid) {
  let ticks = 0;
  for (const p of procTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after "(comm) ": state=0 ... utime=11 stime=12 cutime=13 cstime=14
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // exited
    }
  }
  return ticks / ticksPerSecond();
}

function procTree(pid) {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch {
      // raced with exit
    }
  }
  const tree = new Set([pid]);
  for (let changed = true; changed;) {
    changed = false;
    for (const [p, pp] of parent) {
      if (!tree.has(p) && tree.has(pp)) {
        tree.add(p);
        changed = true;
      }
    }
  }
  return [...tree];
}

/** Peak and current RSS of pid and all its descendants, from /proc. */
export function procTreeMemory(pid) {
  const tree = procTree(pid);
  const procs = [...tree].map(readStatus).filter(Boolean);
  if (!procs.length) return null;
  const hwms = procs.map((p) => p.hwm_kib || 0);
  return {
    max_hwm_kib: Math.max(...hwms),
    sum_hwm_kib: hwms.reduce((a, b) => a + b, 0),
    sum_rss_kib: procs.reduce((a, p) => a + (p.rss_kib || 0), 0),
    processes: procs,
  };
}

/** Kill a detached process group politely, then forcefully. */
export async function stopGroup(child, graceMs = 15000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
    await Promise.race([exited, sleep(5000)]);
  }
}

export function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, "'\\''")}'`;
}
