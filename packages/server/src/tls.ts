import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatFingerprint } from '@coffre/core';
import { fsync, writeFileAtomic } from './fsutil.js';

export interface TlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 of the DER certificate, colon-separated uppercase hex (what agents pin). */
  readonly fingerprint: string;
}

/** Self-signed certificates last 10 years: agents trust them by pinned fingerprint, and a
 *  renewal would change the pin on every enrolled machine. */
const SELF_SIGNED_DAYS = 3650;

export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

export function certificateFingerprint(certPem: string): string {
  return formatFingerprint(new X509Certificate(certPem).fingerprint256);
}

/** Reads a certificate and its key, checking that they belong together. */
export async function loadTls(certFile: string, keyFile: string): Promise<TlsMaterial> {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = await readFile(certFile, 'utf8');
    keyPem = await readFile(keyFile, 'utf8');
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new TlsConfigError(`${certFile} is not a PEM certificate`);
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new TlsConfigError(`${keyFile} is not the private key of ${certFile}`);
  } catch (err) {
    if (err instanceof TlsConfigError) throw err;
    throw new TlsConfigError(`${keyFile} is not a PEM private key`);
  }
  return { certPem, keyPem, fingerprint: certificateFingerprint(certPem) };
}

function subjectAltNames(): { type: 2 | 7; value?: string; ip?: string }[] {
  const names: { type: 2 | 7; value?: string; ip?: string }[] = [
    { type: 2, value: 'localhost' },
    { type: 7, ip: '127.0.0.1' },
    { type: 7, ip: '::1' },
  ];
  const host = os.hostname().toLowerCase();
  if (host && host !== 'localhost' && isIP(host) === 0 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) {
    names.push({ type: 2, value: host });
  }
  return names;
}

/**
 * Returns `dir/cert.pem` + `dir/key.pem`, creating a self-signed ECDSA P-256 pair on the
 * first call. The pair is written to a private temp directory that is then renamed to
 * `dir`: two processes initialising at once can never mix one's key with the other's
 * certificate (the loser's rename fails and it uses the winner's pair).
 */
export async function ensureSelfSigned(dir: string): Promise<TlsMaterial> {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  // An existing directory is never overwritten, even if broken: that needs a person.
  if (await access(dir).then(() => true, () => false)) return loadTls(certFile, keyFile);
  const { generate } = await import('selfsigned'); // heavy; needed once per data dir
  const notBeforeDate = new Date(Date.now() - 60_000);
  const pems = await generate([{ name: 'commonName', value: os.hostname() || 'coffre-server' }, { name: 'organizationName', value: 'coffre' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + SELF_SIGNED_DAYS * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: subjectAltNames() },
    ],
  });
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  await mkdir(tmp, { mode: 0o700 });
  try {
    await writeFileAtomic(path.join(tmp, 'key.pem'), pems.private, 0o600);
    await writeFileAtomic(path.join(tmp, 'cert.pem'), pems.cert, 0o644);
    await rename(tmp, dir);
    await fsync(path.dirname(dir));
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
  }
  return loadTls(certFile, keyFile);
}
