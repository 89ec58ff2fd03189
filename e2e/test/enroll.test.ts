import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { COFFRE, TestAgent, TestServer, expectCode, run, tempDir } from '../src/kit.js';

describe('enrollment, certificate pinning, passphrase sources, revoked credentials', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
    await server.createCustomer('cabinet');
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  test('the fingerprint is accepted without colons and in lower case', async () => {
    const agent = new TestAgent(server);
    const token = await server.token('cabinet');
    const fp = server.fingerprint.replace(/:/g, '').toLowerCase();
    expectCode(await agent.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', fp, '--machine', 'lower']), 0, 'enroll');
    agent.cleanup();
  });

  test('a wrong fingerprint stops enrollment before the token is sent (exit 13)', async () => {
    const agent = new TestAgent(server);
    const token = await server.token('cabinet');
    const wrong = 'AB:'.repeat(31) + 'AB';
    const r = await agent.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', wrong, '--machine', 'mitm']);
    assert.equal(r.code, 13, r.stderr);
    assert.match(r.stderr, /fingerprint/);
    assert.equal(existsSync(join(agent.configDir, 'config.json')), false);
    // The token was not consumed: it still enrolls a machine.
    expectCode(await agent.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint, '--machine', 'after-mitm']), 0, 'token still valid');
    agent.cleanup();
  });

  test('without a fingerprint, a self-signed server is refused (exit 13)', async () => {
    const agent = new TestAgent(server);
    const r = await agent.run(['enroll', '--server', server.url, '--token', await server.token('cabinet'), '--machine', 'nofp']);
    assert.equal(r.code, 13, r.stderr);
    agent.cleanup();
  });

  test('a used token is refused (exit 10) and a machine name cannot be taken twice', async () => {
    const a = new TestAgent(server);
    const token = await server.token('cabinet');
    expectCode(await a.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint, '--machine', 'once']), 0, 'enroll');
    const b = new TestAgent(server);
    const r = await b.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint, '--machine', 'twice']);
    assert.equal(r.code, 10, r.stderr);
    assert.match(r.stderr, /invalid, expired or already used/);
    const c = new TestAgent(server);
    const dup = await c.enroll('cabinet', 'once');
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already enrolled/);
    for (const x of [a, b, c]) x.cleanup();
  });

  test('--passphrase-file works, and its wrong content is refused', async () => {
    const agent = new TestAgent(server);
    expectCode(await agent.enroll('cabinet', 'pfile'), 0, 'enroll');
    const dir = tempDir('pass');
    const good = join(dir, 'good');
    const bad = join(dir, 'bad');
    writeFileSync(good, `${agent.passphrase}\n`);
    writeFileSync(bad, 'nope\n');
    expectCode(await agent.run(['--passphrase-file', good, 'snapshots'], { COFFRE_PASSPHRASE: undefined }), 0, 'good file');
    const r = await agent.run(['--passphrase-file', bad, 'snapshots'], { COFFRE_PASSPHRASE: undefined });
    assert.equal(r.code, 11, r.stderr);
    rmSync(dir, { recursive: true, force: true });
    agent.cleanup();
  });

  test('a revoked machine credential is refused on its next request (exit 10)', async () => {
    const agent = new TestAgent(server);
    expectCode(await agent.enroll('cabinet', 'stolen-laptop'), 0, 'enroll');
    const src = tempDir('revoked');
    writeFileSync(join(src, 'f.txt'), 'x');
    expectCode(await agent.run(['backup', src]), 0, 'backup before revocation');
    expectCode(await server.admin(['machine', 'revoke', 'stolen-laptop', '--customer', 'cabinet']), 0, 'revoke');
    const r = await agent.run(['backup', src]);
    assert.equal(r.code, 10, r.stderr);
    assert.match(r.stderr, /refused this machine's credential/);
    rmSync(src, { recursive: true, force: true });
    agent.cleanup();
  });

  test('the token can come from standard input or a file instead of the command line', async () => {
    const a = new TestAgent(server);
    const viaStdin = await run(COFFRE, ['enroll', '--server', server.url, '--token', '-', '--fingerprint', server.fingerprint, '--machine', 'stdin-token'], { env: a.env(), input: `${await server.token('cabinet')}\n` });
    expectCode(viaStdin, 0, 'token from stdin');
    const b = new TestAgent(server);
    const file = join(tempDir('token'), 'token.txt');
    writeFileSync(file, await server.token('cabinet'), { mode: 0o600 });
    expectCode(await b.run(['enroll', '--server', server.url, '--token-file', file, '--fingerprint', server.fingerprint, '--machine', 'file-token']), 0, 'token from a file');
    const neither = await new TestAgent(server).run(['enroll', '--server', server.url, '--fingerprint', server.fingerprint]);
    expectCode(neither, 2, 'no token');
    assert.match(neither.stderr, /--token-file/);
    a.cleanup();
    b.cleanup();
  });
});
