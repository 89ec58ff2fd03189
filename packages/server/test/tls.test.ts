import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate } from 'selfsigned';
import { initDataDir } from '../src/datadir.js';
import { startServer } from '../src/server.js';
import { certificateFingerprint, TlsConfigError } from '../src/tls.js';
import { prepareDataDir } from './backends.js';
import { httpsRequest, tempDir } from './kit.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli.js');

async function cliFingerprint(dataDir: string): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'fingerprint', '--data-dir', dataDir]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.on('close', resolve));
  return out.trim();
}

describe('TLS material', () => {
  it('creates a self-signed ECDSA certificate for localhost with a private key file', async () => {
    const tmp = await tempDir();
    try {
      const dir = await initDataDir(path.join(tmp.dir, 'd'));
      const cert = new X509Certificate(dir.tls.certPem);
      assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
      for (const san of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) assert.ok(cert.subjectAltName?.includes(san), `missing ${san}`);
      assert.ok(Date.parse(cert.validTo) > Date.now() + 5 * 365 * 86_400_000);
      assert.equal((await stat(path.join(dir.paths.tlsDir, 'key.pem'))).mode & 0o777, 0o600);
      assert.match(dir.tls.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      assert.equal((await initDataDir(dir.paths.root)).tls.fingerprint, dir.tls.fingerprint, 'reopening keeps the certificate');
    } finally {
      await tmp.cleanup();
    }
  });

  it('concurrent first initialisations agree on one certificate and key', async () => {
    const tmp = await tempDir();
    try {
      const dirs = await Promise.all([1, 2, 3, 4].map(() => initDataDir(path.join(tmp.dir, 'race'))));
      assert.equal(new Set(dirs.map((d) => d.tls.fingerprint)).size, 1);
      assert.equal(new Set(dirs.map((d) => d.tls.keyPem)).size, 1);
    } finally {
      await tmp.cleanup();
    }
  });

  it('serves a given certificate and records it for `fingerprint`', async () => {
    const tmp = await tempDir();
    try {
      const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
        keyType: 'rsa',
        algorithm: 'sha256',
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
      });
      const cert = path.join(tmp.dir, 'server.crt');
      const key = path.join(tmp.dir, 'server.key');
      await writeFile(cert, pems.cert);
      await writeFile(key, pems.private);
      const dataDir = path.join(tmp.dir, 'd');
      await prepareDataDir(dataDir);
      const server = await startServer({ dataDir, listen: '127.0.0.1:0', tls: { cert, key }, log: () => undefined });
      try {
        assert.equal(server.fingerprint, certificateFingerprint(pems.cert));
        assert.equal((await httpsRequest(server.url, pems.cert, 'GET', '/api/v1/health')).status, 200);
      } finally {
        await server.close();
      }
      assert.equal(await cliFingerprint(dataDir), certificateFingerprint(pems.cert));

      const other = await generate([{ name: 'commonName', value: 'other' }], { keyType: 'ec' });
      await writeFile(key, other.private);
      await assert.rejects(startServer({ dataDir, listen: '127.0.0.1:0', tls: { cert, key } }), TlsConfigError);
    } finally {
      await tmp.cleanup();
    }
  });
});
