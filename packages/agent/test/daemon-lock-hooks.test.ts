import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonLock, DaemonLockedError } from '../src/daemon/lock.js';
import { runHook } from '../src/daemon/hooks.js';

function withDir(fn: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coffre-daemon-unit-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'lock: a second holder is refused while the first lives; released on demand',
  withDir((dir) => {
    const a = new DaemonLock(dir);
    a.acquire();
    assert.equal(readFileSync(a.file, 'utf8').trim(), String(process.pid));
    // Another live node process "holds" it.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(a.file, `${other.pid}\n`);
      assert.throws(() => new DaemonLock(dir).acquire(), (e: unknown) => e instanceof DaemonLockedError && e.pid === other.pid && /already running/.test(e.message));
    } finally {
      other.kill('SIGKILL');
    }
    writeFileSync(a.file, `${process.pid}\n`);
    a.release();
    assert.equal(existsSync(a.file), false);
  }),
);

test(
  'lock: a lock left by a dead daemon is stale and taken over',
  withDir(async (dir) => {
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => dead.once('exit', r));
    writeFileSync(join(dir, 'daemon.pid'), `${dead.pid}\n`);
    const l = new DaemonLock(dir);
    l.acquire();
    assert.equal(readFileSync(l.file, 'utf8').trim(), String(process.pid));
    l.release();
  }),
);

test('hooks: output goes line by line to the log; the job is in the environment, the passphrase is not', async () => {
  process.env.COFFRE_PASSPHRASE = 'secret phrase';
  try {
    const lines: string[] = [];
    const r = await runHook('echo "un"; echo "deux" >&2; echo "job=$COFFRE_JOB pass=${COFFRE_PASSPHRASE:-none}"', {
      timeoutMs: 10_000,
      env: { COFFRE_JOB: 'soir' },
      onLine: (stream, line) => lines.push(`${stream}:${line}`),
    });
    assert.equal(r.ok, true);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(lines.sort(), ['stderr:deux', 'stdout:job=soir pass=none', 'stdout:un']);
  } finally {
    delete process.env.COFFRE_PASSPHRASE;
  }
});

test('hooks: a non-zero exit is a failure', async () => {
  const r = await runHook('exit 3', { timeoutMs: 10_000, env: {}, onLine: () => undefined });
  assert.equal(r.ok, false);
  assert.equal(r.exitCode, 3);
  assert.equal(r.timedOut, false);
});

test(
  'hooks: a command past its time limit is killed with everything it started',
  withDir(async (dir) => {
    const marker = join(dir, 'still-running');
    const started = Date.now();
    const r = await runHook(`(sleep 1; touch ${marker}) & sleep 30`, { timeoutMs: 300, env: {}, onLine: () => undefined });
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - started < 5000, 'did not wait for the command');
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(existsSync(marker), false, 'the background child was killed too');
  }),
);
