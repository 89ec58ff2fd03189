import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { COFFRE, TestAgent, TestServer, expectCode, startWithAgent, tempDir } from '../src/kit.js';
import { describeTree, diffTrees } from '../src/tree.js';
import { commitCraftedSnapshot, dirNode, fileNode } from '../src/craft.js';
import { flipObjectByte, packObjects, serverObjects } from '../src/objects.js';

describe('tampered or corrupted data on the server', () => {
  let server: TestServer;
  let agent: TestAgent;
  let stop: () => Promise<void>;
  let src: string;
  before(async () => {
    ({ server, agent, stop } = await startWithAgent());
    src = tempDir('tamper');
    writeFileSync(join(src, 'a-ordonnance.txt'), 'ordonnance\n'.repeat(100));
    writeFileSync(join(src, 'b-imagerie.bin'), randomBytes(6 * 1024 * 1024));
    writeFileSync(join(src, 'c-courrier.txt'), 'courrier\n'.repeat(100));
    expectCode(await agent.run(['backup', src]), 0, 'backup');
    expectCode(await agent.run(['verify', '--read-data']), 0, 'verify before tampering');
  });
  after(async () => {
    await stop();
    rmSync(src, { recursive: true, force: true });
  });

  test('a flipped byte in file data: verify --read-data and restore fail and name the file', async () => {
    const objects = serverObjects(server.dataDir);
    const [pack] = await packObjects(objects);
    const undo = await flipObjectByte(objects, pack!.key, Math.floor(pack!.size / 2));
    try {
      const v = await agent.run(['verify', '--read-data']);
      assert.equal(v.code, 12, v.stderr);
      assert.match(v.stderr, /b-imagerie\.bin/);
      const target = tempDir('tampered-restore');
      const r = await agent.run(['restore', 'latest', '--target', target]);
      assert.equal(r.code, 12, r.stderr);
      assert.match(r.stderr, /DAMAGED.*b-imagerie\.bin/);
      assert.equal(existsSync(join(target, src, 'b-imagerie.bin')), false, 'a damaged file is not left behind');
      assert.equal(readFileSync(join(target, src, 'a-ordonnance.txt'), 'utf8'), 'ordonnance\n'.repeat(100), 'intact files are restored');
      rmSync(target, { recursive: true, force: true });
    } finally {
      await undo();
    }
    expectCode(await agent.run(['verify', '--read-data']), 0, 'verify after repair');
  });

  test('a flipped byte anywhere in a pack header is detected by verify and restore', async () => {
    const objects = serverObjects(server.dataDir);
    for (const pack of await packObjects(objects)) {
      const count = (await objects.get(pack.key)).readUInt32BE(8);
      // Flip the SHA-256 field of each entry in turn (offset 12 + 80 i + 44).
      for (let i = 0; i < count; i++) {
        const undo = await flipObjectByte(objects, pack.key, 12 + 80 * i + 44);
        try {
          const v = await agent.run(['verify', '--read-data']);
          assert.equal(v.code, 12, `entry ${i}: ${v.stdout}${v.stderr}`);
          const target = tempDir('hdr');
          const r = await agent.run(['restore', 'latest', '--target', target]);
          assert.notEqual(r.code, 0, `restore with header entry ${i} damaged`);
          rmSync(target, { recursive: true, force: true });
        } finally {
          await undo();
        }
      }
    }
  });

  test('a flipped byte in a snapshot reference list is detected', async () => {
    const objects = serverObjects(server.dataDir);
    const refs = (await objects.list('snapshots/')).filter((o) => o.key.endsWith('.refs'));
    assert.equal(refs.length, 1);
    const undo = await flipObjectByte(objects, refs[0]!.key, 5);
    try {
      const v = await agent.run(['verify']);
      assert.equal(v.code, 12, v.stderr);
      const target = tempDir('refs');
      const r = await agent.run(['restore', 'latest', '--target', target]);
      assert.equal(r.code, 12, r.stderr);
      rmSync(target, { recursive: true, force: true });
    } finally {
      await undo();
    }
  });
});

describe('crafted trees cannot make restore write outside the target', () => {
  let agent: TestAgent;
  let stop: () => Promise<void>;
  before(async () => {
    ({ agent, stop } = await startWithAgent());
  });
  after(() => stop());

  for (const evil of ['..', '.', 'a/../../b', '/tmp/coffre-escape-abs', 'x\u0000y']) {
    test(`a node named ${JSON.stringify(evil)} is refused`, async () => {
      const id = await commitCraftedSnapshot(agent.configDir, (file, tree) => {
        const content = file('pwned\n');
        const inner = tree([fileNode('escape.txt', content, 6)]);
        return tree([dirNode(evil, inner), fileNode(evil === '..' ? 'ok.txt' : 'ok2.txt', content, 6)]);
      });
      const parent = tempDir('jail');
      const target = join(parent, 'target');
      const r = await agent.run(['restore', id, '--target', target]);
      assert.notEqual(r.code, 0, 'restore must fail');
      assert.match(r.stderr, /unsafe entry name|malformed tree/);
      assert.equal(existsSync(join(parent, 'escape.txt')), false);
      assert.equal(existsSync('/tmp/coffre-escape-abs'), false);
      assert.equal(existsSync('/escape.txt'), false);
      rmSync(parent, { recursive: true, force: true });
    });
  }

  test('restore never writes through a symbolic link already in the target', async () => {
    const src = tempDir('symsrc');
    writeFileSync(join(src, 'f.txt'), 'data\n');
    expectCode(await agent.run(['backup', src]), 0, 'backup');
    const target = tempDir('symtarget');
    const outside = tempDir('outside');
    // The target already holds "tmp" as a link to another directory.
    symlinkSync(outside, join(target, src.split('/')[1]!));
    const r = await agent.run(['restore', 'latest', '--target', target]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /symbolic link/);
    assert.deepEqual(readdirSync(outside), []);
    for (const d of [src, target, outside]) rmSync(d, { recursive: true, force: true });
  });
});

describe('interrupted processes', () => {
  test('an agent killed mid-backup leaves a repository where the next backup and earlier snapshots work', async () => {
    const { server, agent, stop } = await startWithAgent();
    const src = tempDir('killed');
    writeFileSync(join(src, 'first.txt'), 'first snapshot\n');
    expectCode(await agent.run(['backup', src]), 0, 'first backup');
    const first = describeTree(src);
    for (let i = 0; i < 8; i++) writeFileSync(join(src, `big-${i}.bin`), randomBytes(12 * 1024 * 1024));
    const child = spawn(COFFRE, ['backup', src], { env: { ...process.env, ...agent.env() }, stdio: 'ignore' });
    // Kill it once at least one pack is stored (or after 15 s at most).
    const objects = serverObjects(server.dataDir);
    const before = (await packObjects(objects)).length;
    for (let t = 0; t < 300 && (await packObjects(objects)).length <= before && child.exitCode === null; t++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    expectCode(await agent.run(['backup', src]), 0, 'backup after the kill');
    const list = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as { id: string }[];
    assert.equal(list.length, 2);
    const t1 = tempDir('k1');
    expectCode(await agent.run(['restore', list[0]!.id, '--target', t1]), 0, 'restore first');
    assert.deepEqual(diffTrees(first, describeTree(join(t1, src))), []);
    const t2 = tempDir('k2');
    expectCode(await agent.run(['restore', 'latest', '--target', t2]), 0, 'restore latest');
    assert.deepEqual(diffTrees(describeTree(src), describeTree(join(t2, src))), []);
    expectCode(await agent.run(['verify', '--read-data']), 0, 'verify');
    await stop();
    for (const d of [src, t1, t2]) rmSync(d, { recursive: true, force: true });
  });

  test('a server killed mid-upload never has a partial pack indexed', async () => {
    const { server, agent, stop } = await startWithAgent();
    const src = tempDir('srvkill');
    for (let i = 0; i < 8; i++) writeFileSync(join(src, `big-${i}.bin`), randomBytes(12 * 1024 * 1024));
    const child = spawn(COFFRE, ['backup', src], { env: { ...process.env, ...agent.env() }, stdio: 'ignore' });
    const exit = new Promise<number>((r) => child.once('close', (c) => r(c ?? 1)));
    const objects = serverObjects(server.dataDir);
    for (let t = 0; t < 300 && (await packObjects(objects)).length === 0; t++) await new Promise((r) => setTimeout(r, 20));
    await server.stop('SIGKILL');
    const code = await exit;
    assert.equal(code, 13, 'the agent reports the server as unreachable');
    await server.restart();
    expectCode(await agent.run(['verify', '--read-data']), 0, 'nothing half-written is indexed');
    expectCode(await agent.run(['backup', src]), 0, 'backup after restart');
    const target = tempDir('srvkill-restore');
    expectCode(await agent.run(['restore', 'latest', '--target', target]), 0, 'restore');
    assert.deepEqual(diffTrees(describeTree(src), describeTree(join(target, src))), []);
    await stop();
    for (const d of [src, target]) rmSync(d, { recursive: true, force: true });
  });
});

describe('unreadable files', () => {
  test('an unreadable file is a warning: the backup completes with exit code 3', async () => {
    const server = await TestServer.start();
    await server.createCustomer('c');
    const agent = new TestAgent(server);
    const asRoot = process.getuid?.() === 0;
    // Root reads everything: run the agent as an unprivileged user to make a file unreadable.
    if (asRoot) {
      chownSync(agent.configDir, 65534, 65534);
    }
    const src = tempDir('unreadable');
    chmodSync(src, 0o755);
    writeFileSync(join(src, 'ok.txt'), 'fine\n');
    chmodSync(join(src, 'ok.txt'), 0o644);
    writeFileSync(join(src, 'locked.txt'), 'secret\n');
    chmodSync(join(src, 'locked.txt'), 0o000);
    mkdirSync(join(src, 'locked-dir'), { mode: 0o000 });
    chmodSync(join(src, 'locked-dir'), 0o000);
    const wrap = (args: string[]) => (asRoot ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', COFFRE, ...args]] : [COFFRE, args]) as [string, string[]];
    const runAs = async (args: string[]) => {
      const [cmd, a] = wrap(args);
      const { run } = await import('../src/kit.js');
      return run(cmd, a, { env: { ...agent.env(), HOME: agent.configDir } });
    };
    const token = await server.token('c');
    expectCode(await runAs(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint, '--machine', 'm']), 0, 'enroll');
    const r = await runAs(['backup', src, '--json']);
    assert.equal(r.code, 3, r.stderr);
    const out = JSON.parse(r.stdout) as { incomplete: boolean; warnings: { path: string; kind: string }[] };
    assert.equal(out.incomplete, true);
    assert.ok(out.warnings.some((w) => w.path === join(src, 'locked.txt') && w.kind === 'unreadable'), JSON.stringify(out.warnings));
    assert.ok(out.warnings.some((w) => w.path === join(src, 'locked-dir') && w.kind === 'unreadable'));
    const ls = await runAs(['ls', 'latest']);
    assert.match(ls.stdout, /ok\.txt/);
    await server.stop();
    chmodSync(join(src, 'locked-dir'), 0o755);
    rmSync(src, { recursive: true, force: true });
    server.cleanup();
    agent.cleanup();
  });
});
