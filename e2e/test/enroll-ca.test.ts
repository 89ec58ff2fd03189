import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';

/**
 * Enrolment against a server whose certificate comes from a private CA, as a new user would
 * try it: the CA trusted through NODE_EXTRA_CA_CERTS, no --fingerprint. The certificate names
 * 127.0.0.2; the server listens on every loopback address, so 127.0.0.1 is "another host".
 */
function makePki(dir: string): { ca: string; cert: string; key: string } {
  const sh = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Test practice CA']);
  sh(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.2']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.2\nextendedKeyUsage=serverAuth\n');
  sh(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '30', '-extfile', 'ext.cnf']);
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'leaf.pem'), key: join(dir, 'leaf.key') };
}

describe('enrolment with a CA-signed server certificate', () => {
  let server: TestServer;
  let pki: { ca: string; cert: string; key: string };
  let dir: string;
  let port: string;
  const agents: TestAgent[] = [];
  const agent = () => {
    const a = new TestAgent(server);
    agents.push(a);
    return a;
  };

  before(async () => {
    dir = tempDir('pki');
    pki = makePki(dir);
    server = await TestServer.start(undefined, '0.0.0.0:0', ['--tls-cert', pki.cert, '--tls-key', pki.key]);
    port = new URL(server.url).port;
    await server.createCustomer('cabinet-ca');
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    for (const a of agents) a.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a certificate for another host: refused before the token is sent (exit 13), the token still works', async () => {
    const token = await server.token('cabinet-ca');
    const a = agent();
    const r = await a.run(['enroll', '--server', `https://127.0.0.1:${port}`, '--token', token, '--machine', 'poste-1'], { NODE_EXTRA_CA_CERTS: pki.ca });
    expectCode(r, 13, 'wrong host');
    assert.match(r.stderr, /not valid for 127\.0\.0\.1/);
    assert.match(r.stderr, /nothing was sent/);
    // The same token, to the right name: accepted, so the first attempt never reached the server.
    expectCode(await a.run(['enroll', '--server', `https://127.0.0.2:${port}`, '--token', token, '--machine', 'poste-1'], { NODE_EXTRA_CA_CERTS: pki.ca }), 0, 'right host, same token');
  });

  test('a certificate for the right host: enrols without a fingerprint and keeps working (CA and name checked)', async () => {
    const a = agent();
    const env = { NODE_EXTRA_CA_CERTS: pki.ca };
    expectCode(await a.run(['enroll', '--server', `https://127.0.0.2:${port}`, '--token', await server.token('cabinet-ca'), '--machine', 'poste-2'], env), 0, 'enroll');
    const cfg = JSON.parse(readFileSync(join(a.configDir, 'config.json'), 'utf8')) as { trust: string };
    assert.equal(cfg.trust, 'system');
    const src = tempDir('src');
    writeFileSync(join(src, 'f.txt'), 'x');
    expectCode(await a.run(['backup', src], env), 0, 'backup after enrolment');
    // Without the CA, the same machine refuses the server (nothing pinned that would bypass the CA).
    expectCode(await a.run(['snapshots'], {}), 13, 'CA no longer trusted');
    rmSync(src, { recursive: true, force: true });
  });

  test('with --fingerprint too: pinned for enrolment, and the CA and name are still checked', async () => {
    const a = agent();
    const env = { NODE_EXTRA_CA_CERTS: pki.ca };
    const token = await server.token('cabinet-ca');
    const wrong = await a.run(['enroll', '--server', `https://127.0.0.1:${port}`, '--token', token, '--fingerprint', server.fingerprint, '--machine', 'poste-3'], env);
    expectCode(wrong, 13, 'right fingerprint, wrong name');
    expectCode(await a.run(['enroll', '--server', `https://127.0.0.2:${port}`, '--token', token, '--fingerprint', server.fingerprint, '--machine', 'poste-3'], env), 0, 'right name');
  });

  test('without the CA and without a fingerprint: refused, with advice', async () => {
    const a = agent();
    const r = await a.run(['enroll', '--server', `https://127.0.0.2:${port}`, '--token', await server.token('cabinet-ca'), '--machine', 'poste-4'], { NODE_EXTRA_CA_CERTS: undefined });
    expectCode(r, 13, 'untrusted CA');
    assert.match(r.stderr, /--fingerprint/);
  });
});
