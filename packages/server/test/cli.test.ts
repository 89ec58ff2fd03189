import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type { EnrollResponse, MachineRecord } from '@coffre/core';
import { prepareDataDir } from './backends.js';
import { CLI_ENTRY, httpsRequest, runCli, tempDir } from './kit.js';

const CLI = CLI_ENTRY;
const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

const run = runCli;

/** Starts `coffre-server start` and resolves with its first stdout lines once it is ready. */
async function startServerProcess(dataDir: string): Promise<{ child: ChildProcessWithoutNullStreams; lines: string[] }> {
  const child = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--listen', '127.0.0.1:0']);
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start; stdout so far: ${lines.join('\n')}`)), 20_000);
    child.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length === 2) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, lines };
}

describe('coffre-server CLI', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('coffre-cli-test-');
  });
  after(() => tmp.cleanup());

  it('start prints the URL then the fingerprint, serves HTTPS, and stops cleanly on SIGTERM', async () => {
    const dataDir = path.join(tmp.dir, 'start');
    await prepareDataDir(dataDir);
    const { child, lines } = await startServerProcess(dataDir);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = /^coffre-server listening on (https:\/\/127\.0\.0\.1:(\d+))$/.exec(lines[0]!);
      assert.ok(url, `first line: ${lines[0]}`);
      assert.notEqual(url[2], '0', 'the actual port is printed');
      const fp = /^TLS certificate SHA-256 fingerprint: (.+)$/.exec(lines[1]!);
      assert.ok(fp && FINGERPRINT.test(fp[1]!), `second line: ${lines[1]}`);

      const certPem = await readFile(path.join(dataDir, 'tls', 'cert.pem'), 'utf8');
      const health = await httpsRequest(url[1]!, certPem, 'GET', '/api/v1/health');
      assert.equal(health.status, 200);

      const printed = await run(['fingerprint', '--data-dir', dataDir]);
      assert.equal(printed.code, 0);
      assert.equal(printed.stdout, `${fp[1]}\n`);

      // Management commands work on the live data dir; the running server sees the result.
      assert.equal((await run(['customer', 'create', 'Cabinet Live', '--data-dir', dataDir])).code, 0);
      const token = (await run(['enroll-token', 'create', '--customer', 'Cabinet Live', '--data-dir', dataDir])).stdout.trim();
      const enrolled = await httpsRequest(url[1]!, certPem, 'POST', '/api/v1/enroll', { json: { token, machineName: 'poste', hostname: 'h', os: 'linux', agentVersion: '0.1.0' } });
      assert.equal(enrolled.status, 200);
      const machines = await run(['machine', 'list', '--customer', 'Cabinet Live', '--data-dir', dataDir, '--json']);
      const list = JSON.parse(machines.stdout) as MachineRecord[];
      assert.deepEqual(list.map((x) => [x.id, x.name]), [[enrolled.json<EnrollResponse>().machineId, 'poste']]);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  it('enroll-token create initialises a fresh data dir and prints only the token', async () => {
    const dataDir = path.join(tmp.dir, 'fresh');
    await prepareDataDir(dataDir); // with postgres-s3: only server.json naming the database and store
    const created = await run(['customer', 'create', 'Cabinet Neuf', '--data-dir', dataDir]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^[0-9a-f-]{36}\n$/);
    const res = await run(['enroll-token', 'create', '--customer', 'Cabinet Neuf', '--data-dir', dataDir, '--ttl-hours', '2']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^cfe_[A-Za-z0-9_-]{43}\n$/);
    assert.match(res.stderr, /valid until/);
    const list = await run(['customer', 'list', '--data-dir', dataDir, '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as { name: string }[]).map((c) => c.name), ['Cabinet Neuf']);
  });

  it('reports errors on one stderr line with exit 1, usage errors with exit 2', async () => {
    const dataDir = path.join(tmp.dir, 'errors');
    await prepareDataDir(dataDir);
    assert.equal((await run(['customer', 'create', 'Doublon', '--data-dir', dataDir])).code, 0);
    const dup = await run(['customer', 'create', 'Doublon', '--data-dir', dataDir]);
    assert.equal(dup.code, 1);
    assert.equal(dup.stdout, '');
    assert.match(dup.stderr, /^coffre-server: error: A customer with this name already exists\..*\n$/);
    const unknown = await run(['enroll-token', 'create', '--customer', 'Personne', '--data-dir', dataDir]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, '');
    assert.ok(!unknown.stderr.includes('    at '), 'no stack trace');

    const usage = await Promise.all([
      run(['start']),
      run(['start', '--data-dir', dataDir, '--listen', 'nowhere']),
      run(['start', '--data-dir', dataDir, '--tls-cert', 'only-a-cert.pem']),
      run(['frobnicate']),
      run(['enroll-token', 'create', '--customer', 'Doublon', '--data-dir', dataDir, '--ttl-hours', 'soon']),
    ]);
    assert.deepEqual(usage.map((u) => u.code), [2, 2, 2, 2, 2], usage.map((u) => u.stderr).join('\n'));
    assert.equal((await run(['--help'])).code, 0);
  });
});
