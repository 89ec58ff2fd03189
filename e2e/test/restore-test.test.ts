import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';
import { signUp, type PeopleClient } from '../src/people.js';
import { flipObjectByte, packObjects, serverObjects } from '../src/objects.js';

interface RestoreTestJson {
  snapshot: string;
  result: 'success' | 'failed';
  totalFiles: number;
  sampledFiles: number;
  restoredFiles: number;
  comparedFiles: number;
  notComparedFiles: number;
  mismatches: number;
  files: { path: string; status: string; reason?: string }[];
  problems: { path: string; message: string }[];
  reportId: string | null;
  reported: boolean;
}
interface LastRestoreTest {
  snapshotId: string;
  result: 'success' | 'failed';
  sampledFiles: number;
  comparedFiles: number;
  mismatches: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;


/**
 * `coffre restore-test [SNAPSHOT] [--sample PERCENT] [--json]` with real processes (issue 5,
 * point 6; R6): a sample of the newest snapshot is restored to a private temporary directory
 * (removed afterwards, even on failure), compared with the unchanged sources, and reported to
 * the server; a file changed at the source is restored but not compared; damage exits 12 and
 * names the file.
 */
describe('coffre restore-test', { timeout: 180_000 }, () => {
  const customer = 'Cabinet Essai';
  let server: TestServer;
  let agent: TestAgent;
  let viewer: PeopleClient;
  let orgId: string;
  let snapshot: string;
  const src = tempDir('rt-src');
  // The agent's temporary directory: every restore test must leave it empty.
  const tmp = tempDir('rt-tmp');
  const names = ['ordonnance-001.txt', 'ordonnance-002.txt', 'courrier.txt', 'compta/janvier.csv', 'compta/fevrier.csv', 'imagerie/scanner.bin'];

  const restoreTest = (args: string[]) => agent.run(['restore-test', ...args], { TMPDIR: tmp });
  const lastRestoreTest = async (): Promise<LastRestoreTest | null> => {
    const r = await viewer.request('GET', `/orgs/${orgId}/machines`);
    assert.equal(r.status, 200, r.text);
    return r.json<{ machines: { lastRestoreTest: LastRestoreTest | null }[] }>().machines[0]!.lastRestoreTest;
  };

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer(customer);
    agent = new TestAgent(server);
    expectCode(await agent.enroll(customer, 'cabinet-1'), 0, 'enroll');
    mkdirSync(join(src, 'compta'));
    mkdirSync(join(src, 'imagerie'));
    names.forEach((n, i) => writeFileSync(join(src, n), n.endsWith('.bin') ? randomBytes(3 * 1024 * 1024) : `${n}\n`.repeat(50 + i)));
    const b = await agent.json<{ snapshot: string }>(['backup', src]);
    snapshot = b.snapshot;
    const customers = JSON.parse((await server.admin(['customer', 'list', '--json'])).stdout) as { id: string; name: string }[];
    orgId = customers.find((c) => c.name === customer)!.id;
    viewer = (await signUp(server, { role: 'customer-viewer', org: customer })).client;
  });
  after(async () => {
    await server?.stop();
    server?.cleanup();
    agent?.cleanup();
    rmSync(src, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  test('unchanged data: every sampled file is restored and identical; exit 0; the server has the report', async () => {
    assert.equal(await lastRestoreTest(), null, 'no restore test yet');
    const r = await restoreTest(['--sample', '100', '--json']);
    expectCode(r, 0, 'restore-test --sample 100 --json');
    const out = JSON.parse(r.stdout) as RestoreTestJson;
    assert.equal(out.snapshot, snapshot, "this machine's newest snapshot by default");
    assert.equal(out.result, 'success');
    assert.equal(out.totalFiles, names.length);
    assert.equal(out.sampledFiles, names.length);
    assert.equal(out.comparedFiles, names.length);
    assert.equal(out.mismatches, 0);
    assert.ok(out.files.every((f) => f.status === 'identical'), JSON.stringify(out.files));
    assert.match(out.reportId ?? '', UUID);
    assert.deepEqual(readdirSync(tmp), [], 'the temporary directory is removed');
    const seen = await lastRestoreTest();
    assert.ok(seen, 'the server has a restore test for the machine');
    const { snapshotId, result, sampledFiles, comparedFiles, mismatches } = seen;
    assert.deepEqual({ snapshotId, result, sampledFiles, comparedFiles, mismatches }, { snapshotId: snapshot, result: 'success', sampledFiles: names.length, comparedFiles: names.length, mismatches: 0 });
  });

  test('the default sample (5 %) restores at least one file; the summary is readable', async () => {
    const r = await restoreTest([]);
    expectCode(r, 0, 'restore-test');
    assert.match(r.stdout, new RegExp(`restore test of snapshot ${snapshot.slice(0, 8)} .*: 1 of ${names.length} files sampled \\(5 %\\), 1 restored intact`));
    assert.match(r.stdout, /compared byte for byte with the unchanged source: 1 file\(s\), 1 identical/);
    assert.match(r.stdout, /result: SUCCESS; reported to the server \([0-9a-f-]{36}\)/);
    assert.deepEqual(readdirSync(tmp), []);
  });

  test('a source file changed after the backup is restored but not compared, and that is no failure', async () => {
    const changed = join(src, 'courrier.txt');
    writeFileSync(changed, 'une autre lettre\n');
    const r = await restoreTest([snapshot.slice(0, 8), '--sample', '100', '--json']);
    expectCode(r, 0, 'restore-test PREFIX --sample 100 --json');
    const out = JSON.parse(r.stdout) as RestoreTestJson;
    assert.equal(out.result, 'success');
    assert.equal(out.restoredFiles, names.length);
    assert.equal(out.comparedFiles, names.length - 1);
    assert.equal(out.notComparedFiles, 1);
    assert.deepEqual(
      out.files.filter((f) => f.status === 'not-compared').map((f) => [f.path, f.reason]),
      [[changed, 'the source changed since the snapshot']],
    );
    const seen = await lastRestoreTest();
    assert.equal(seen?.comparedFiles, names.length - 1);
    assert.equal(seen?.result, 'success');
  });

  test('a restored file that differs from its unchanged source (same size and time) fails the test: exit 12, named', async () => {
    const victim = join(src, 'compta', 'janvier.csv');
    const st = statSync(victim, { bigint: true });
    const original = execFileSync('cat', [victim]);
    // Same length, other bytes, then the recorded modification time back, to the nanosecond.
    const other = Buffer.from(original);
    other[0] = other[0]! ^ 0x20;
    writeFileSync(victim, other);
    const stamp = `@${st.mtimeNs / 1_000_000_000n}.${(st.mtimeNs % 1_000_000_000n).toString().padStart(9, '0')}`;
    execFileSync('touch', ['-m', '-d', stamp, victim]);
    assert.equal(statSync(victim, { bigint: true }).mtimeNs, st.mtimeNs, 'test set-up: the time is back');
    try {
      const r = await restoreTest(['--sample', '100', '--json']);
      expectCode(r, 12, 'restore-test with a silently different source');
      assert.match(r.stderr, /RESTORE TEST PROBLEM: .*compta\/janvier\.csv: the restored content differs from the unchanged source/);
      const out = JSON.parse(r.stdout) as RestoreTestJson;
      assert.equal(out.result, 'failed');
      assert.equal(out.mismatches, 1);
      assert.deepEqual(out.files.filter((f) => f.status === 'differs').map((f) => f.path), [victim]);
      const seen = await lastRestoreTest();
      assert.equal(seen?.result, 'failed');
      assert.equal(seen?.mismatches, 1);
      assert.deepEqual(readdirSync(tmp), [], 'removed even when the test fails');
    } finally {
      writeFileSync(victim, original);
    }
  });

  test('a tampered pack on the server: the file cannot be restored, exit 12 naming it', async () => {
    // The largest stored pack holds the random file's data.
    const objects = serverObjects(server.dataDir);
    const [pack] = await packObjects(objects);
    const undo = await flipObjectByte(objects, pack!.key, Math.floor(pack!.size / 2));
    try {
      const r = await restoreTest(['latest', '--sample', '100']);
      expectCode(r, 12, 'restore-test over a damaged pack');
      assert.match(r.stderr, /RESTORE TEST PROBLEM: .*imagerie\/scanner\.bin: could not be restored/);
      assert.match(r.stderr, /the restore test FAILED/);
      assert.match(r.stdout, /result: FAILED, 1 problem\(s\); reported to the server/);
      const seen = await lastRestoreTest();
      assert.equal(seen?.result, 'failed');
      assert.deepEqual(readdirSync(tmp), []);
    } finally {
      await undo();
    }
    expectCode(await restoreTest(['--sample', '100']), 0, 'after the repair');
  });

  test('bad usage: a sample outside (0, 100] or an unknown snapshot', async () => {
    for (const bad of ['0', '150', 'beaucoup']) {
      const r = await restoreTest(['--sample', bad]);
      expectCode(r, 2, `--sample ${bad}`);
      assert.match(r.stderr, /the sample must be a percentage/);
    }
    const r = await restoreTest(['abcdef12']);
    expectCode(r, 1, 'unknown snapshot');
    assert.match(r.stderr, /no snapshot abcdef12/);
    assert.deepEqual(readdirSync(tmp), []);
  });
});
