import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, lstatSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestAgent, TestServer, expectCode, startWithAgent, tempDir } from '../src/kit.js';
import { buildFidelityTree, describeTree, diffTrees } from '../src/tree.js';

interface BackupJson {
  snapshot: string;
  incomplete: boolean;
  stats: { files: number; newFiles: number; changedFiles: number; unchangedFiles: number; bytes: number; addedChunks: number };
  warnings: { path: string; kind: string }[];
}

describe('backup → restore over HTTPS between real processes', () => {
  let server: TestServer;
  let agent: TestAgent;
  let src: string;

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer('cabinet-martin');
    agent = new TestAgent(server);
    expectCode(await agent.enroll('cabinet-martin', 'poste-accueil'), 0, 'enroll');
    src = join(tempDir('src'), 'data');
    buildFidelityTree(src);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    agent.cleanup();
    rmSync(join(src, '..'), { recursive: true, force: true });
  });

  test('a full backup keeps every detail, and restore gives the same tree back', async () => {
    const r = await agent.run(['backup', src, '--json']);
    expectCode(r, 0, 'backup');
    const b = JSON.parse(r.stdout) as BackupJson;
    assert.equal(b.incomplete, false);
    assert.ok(b.warnings.some((w) => w.kind === 'special' && w.path.endsWith('a-fifo')), 'the FIFO is reported as skipped');
    const target = tempDir('restore');
    expectCode(await agent.run(['restore', 'latest', '--target', target]), 0, 'restore');
    const diffs = diffTrees(describeTree(src, ['a-fifo']), describeTree(join(target, src)));
    assert.deepEqual(diffs, []);
    // Sparse-friendly: the 80 MiB file with two small writes restores as a sparse file.
    const sp = statSync(join(target, src, 'sparse.img'));
    assert.equal(sp.size, 80 * 1024 * 1024);
    assert.ok(sp.blocks * 512 < 4 * 1024 * 1024, `sparse file restored with ${sp.blocks} blocks`);
    // Symlinks were stored, not followed: the link to a directory is still a link.
    assert.ok(lstatSync(join(target, src, 'link-to-dir')).isSymbolicLink());
    rmSync(target, { recursive: true, force: true });
  });

  test('an unchanged tree is not re-read, and a changed file is', async () => {
    const againRun = await agent.run(["backup", src, "--json"]);
    const again = JSON.parse(againRun.stdout) as BackupJson;
    assert.equal(again.incomplete, false, againRun.stdout);
    assert.equal(again.stats.newFiles + again.stats.changedFiles, 0, againRun.stdout);
    assert.equal(again.stats.unchangedFiles, again.stats.files);
    // Only trees above the backed-up path may change (/tmp's mtime moves as tests run).
    assert.ok(again.stats.addedChunks <= 2, `added ${again.stats.addedChunks} chunks`);
    assert.ok((again.stats as { addedBytes?: number }).addedBytes! < 16 * 1024, 'no file data is uploaded again');
    appendFileSync(join(src, 'docs/2024/compte-rendu.txt'), 'addendum\n');
    writeFileSync(join(src, 'docs/new.txt'), 'new file\n');
    const third = JSON.parse((await agent.run(['backup', src, '--json'])).stdout) as BackupJson;
    assert.equal(third.stats.changedFiles, 1);
    assert.equal(third.stats.newFiles, 1);
    assert.ok(third.stats.addedChunks >= 2 && third.stats.addedChunks <= 8, `added ${third.stats.addedChunks} chunks`);
  });

  test('snapshots --json lists id, time, machine and paths; time is the server clock', async () => {
    const list = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as { id: string; time: string; machine: string; paths: string[] }[];
    assert.equal(list.length, 3);
    for (const s of list) {
      assert.match(s.id, /^[0-9a-f]{32}$/);
      assert.equal(s.machine, 'poste-accueil');
      assert.deepEqual(s.paths, [src]);
      assert.ok(Math.abs(Date.parse(s.time) - Date.now()) < 10 * 60_000);
    }
    const filtered = JSON.parse((await agent.run(['snapshots', '--machine', 'other', '--json'])).stdout) as unknown[];
    assert.equal(filtered.length, 0);
  });

  test('ls lists a snapshot and a sub-path', async () => {
    const r = await agent.run(['ls', 'latest', `${src}/docs/2024`]);
    expectCode(r, 0, 'ls');
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.includes(`${src}/docs/2024/compte-rendu.txt`), r.stdout);
    assert.ok(lines.includes(`${src}/docs/2024/empty.txt`));
    assert.ok(!lines.some((l) => l.includes('secret.key')));
  });

  test('selective restore of one file and of a directory (R3)', async () => {
    const target = tempDir('selective');
    expectCode(await agent.run(['restore', 'latest', '--target', target, '--include', `${src}/docs/2024/compte-rendu.txt`, '--include', 'private']), 0, 'restore');
    const restored = describeTree(target);
    const files = [...restored.entries()].filter(([, e]) => e.type === 'file').map(([k]) => k.split('/').slice(-2).join('/'));
    assert.deepEqual(files.sort(), ['2024/compte-rendu.txt', 'private/notes.md']);
    assert.equal(readFileSync(join(target, src, 'docs/2024/compte-rendu.txt'), 'utf8'), readFileSync(join(src, 'docs/2024/compte-rendu.txt'), 'utf8'));
    rmSync(target, { recursive: true, force: true });
  });

  test('restore to another machine of the same customer with the passphrase (R1)', async () => {
    const other = new TestAgent(server);
    const e = await other.enroll('cabinet-martin', 'poste-secours');
    expectCode(e, 0, 'enroll second machine');
    assert.match(e.stdout, /existing encryption key/);
    const list = JSON.parse((await other.run(['snapshots', '--json'])).stdout) as { machine: string }[];
    assert.equal(list.length, 3, 'the second machine sees the first machine\'s snapshots');
    const target = tempDir('other');
    // "latest" alone is this machine's (it has none): another machine's needs --machine.
    expectCode(await other.run(['restore', 'latest', '--target', target]), 1, 'no snapshot of its own');
    expectCode(await other.run(['restore', 'latest', '--machine', 'poste-accueil', '--target', target]), 0, 'restore elsewhere');
    assert.deepEqual(diffTrees(describeTree(src, ['a-fifo']), describeTree(join(target, src))), []);
    rmSync(target, { recursive: true, force: true });
    other.cleanup();
  });

  test('a wrong passphrase is a clear error with exit code 11', async () => {
    const other = new TestAgent(server, 'not the right passphrase');
    const e = await other.enroll('cabinet-martin', 'poste-intrus');
    assert.equal(e.code, 11, e.stderr);
    assert.match(e.stderr, /wrong passphrase/i);
    const r = await other.run(['snapshots']);
    assert.equal(r.code, 11);
    assert.match(r.stderr, /wrong passphrase/i);
    // And on an enrolled machine with a cached key, a wrong passphrase is still refused.
    const r2 = await agent.run(['snapshots'], { COFFRE_PASSPHRASE: 'wrong' });
    assert.equal(r2.code, 11);
    other.cleanup();
  });
});

describe('unreadable and changing files', () => {
  test('a file that keeps changing while read is reported, not stored torn; exit code 3', async () => {
    const { agent, stop } = await startWithAgent();
    const src = tempDir('changing');
    writeFileSync(join(src, 'stable.txt'), 'stable\n');
    const growing = join(src, 'growing.log');
    writeFileSync(growing, Buffer.alloc(30 * 1024 * 1024, 1));
    const timer = setInterval(() => appendFileSync(growing, 'x'), 1);
    const r = await agent.run(['backup', src, '--json']);
    clearInterval(timer);
    assert.equal(r.code, 3, r.stderr);
    const b = JSON.parse(r.stdout) as BackupJson;
    assert.equal(b.incomplete, true);
    assert.ok(b.warnings.some((w) => w.kind === 'changed' && w.path === growing));
    const ls = await agent.run(['ls', 'latest']);
    assert.ok(ls.stdout.includes('stable.txt'));
    assert.ok(!ls.stdout.includes('growing.log'), 'the torn file is not in the snapshot');
    await stop();
    rmSync(src, { recursive: true, force: true });
  });
});

describe('no plaintext on the server', () => {
  test('contents and names never reach the server data directory', async () => {
    const { server, agent, stop } = await startWithAgent();
    const src = tempDir('marker');
    const nameMarker = 'PATIENT-NAME-MARKER-7f3a9';
    const contentMarker = 'DIAGNOSIS-CONTENT-MARKER-c41d2';
    writeFileSync(join(src, `${nameMarker}.txt`), `${contentMarker}\n`.repeat(1000));
    writeFileSync(join(src, 'small.txt'), contentMarker);
    expectCode(await agent.run(['backup', src]), 0, 'backup');
    await server.stop();
    const hits: string[] = [];
    const scan = (dir: string) => {
      for (const n of readdirSync(dir)) {
        const p = join(dir, n);
        if (n.includes(nameMarker) || n.includes(contentMarker)) hits.push(p);
        const st = lstatSync(p);
        if (st.isDirectory()) scan(p);
        else if (st.isFile()) {
          const data = readFileSync(p);
          for (const m of [nameMarker, contentMarker, src]) {
            if (data.includes(Buffer.from(m)) || data.includes(Buffer.from(m, 'utf16le'))) hits.push(`${p} contains ${m}`);
          }
        }
      }
    };
    scan(server.dataDir);
    assert.ok(existsSync(server.dataDir));
    assert.deepEqual(hits, []);
    await stop();
    rmSync(src, { recursive: true, force: true });
  });
});
