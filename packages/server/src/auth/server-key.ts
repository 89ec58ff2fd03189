import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createFileExclusive } from '../fsutil.js';

/**
 * The server's own secret (DIR/secrets/server.key, 32 random bytes, 0600, created on first
 * use). It is not a customer key and protects no backup data: it seals TOTP secrets at
 * rest (a copied database alone does not give the codes) and derives CSRF tokens. Kept
 * outside the database on purpose. Losing it invalidates TOTP enrolments (people re-enrol
 * after an administrator resets their second factor) and open sessions; nothing else.
 */
export class ServerKeys {
  private readonly sealKey: Buffer;
  private readonly csrfKey: Buffer;
  private readonly checkKey: Buffer;

  constructor(master: Buffer) {
    if (master.length !== 32) throw new Error('server key must be 32 bytes');
    this.sealKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'coffre server seal v1', 32));
    this.csrfKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'coffre server csrf v1', 32));
    this.checkKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'coffre server key check v1', 32));
  }

  /**
   * A value that tells whether two processes hold the same key without revealing it, kept
   * in the database: instances of one installation (copies of one data directory) must
   * share the key, or sealed TOTP secrets and CSRF tokens of one would fail on the other.
   */
  checkValue(): string {
    return createHmac('sha256', this.checkKey).update('coffre installation', 'utf8').digest('hex');
  }

  /** AES-256-GCM with a random nonce; `purpose` is bound as associated data (a sealed TOTP secret cannot be replayed as something else). */
  seal(plain: Buffer, purpose: string): string {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.sealKey, nonce);
    c.setAAD(Buffer.from(purpose, 'utf8'));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return `v1.${Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64url')}`;
  }

  /** Throws if the value was not sealed by this key for this purpose. */
  open(sealed: string, purpose: string): Buffer {
    if (!sealed.startsWith('v1.')) throw new Error('unknown sealed format');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    if (raw.length < 28) throw new Error('sealed value truncated');
    const d = createDecipheriv('aes-256-gcm', this.sealKey, raw.subarray(0, 12));
    d.setAAD(Buffer.from(purpose, 'utf8'));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
  }

  /** The anti-forgery token of a session: derived from its cookie value, so nothing extra is stored. */
  csrfToken(sessionToken: string): string {
    return createHmac('sha256', this.csrfKey).update(sessionToken, 'utf8').digest('base64url');
  }

  csrfMatches(sessionToken: string, given: string | undefined): boolean {
    if (given === undefined) return false;
    const want = Buffer.from(this.csrfToken(sessionToken), 'utf8');
    const got = Buffer.from(given, 'utf8');
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

export async function loadServerKeys(secretsDir: string): Promise<ServerKeys> {
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  const file = path.join(secretsDir, 'server.key');
  await createFileExclusive(file, randomBytes(32).toString('base64') + '\n', 0o600);
  const raw = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
  if (raw.length !== 32) throw new Error(`${file} is damaged: expected 32 bytes of base64`);
  return new ServerKeys(raw);
}
