import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Database } from '../db/database.js';
import { recordAuditKey, recordedAuditKey } from '../db/queries/audit-signing.js';
import { createFileExclusive, writeFileAtomic } from '../fsutil.js';
import { AuditKeyError, auditKeyId, parseAuditPublicKey, signCheckpoint, type AuditPublicKey, type CheckpointBody, type SignedCheckpoint } from './checkpoint.js';

/**
 * The installation's audit signing key (ADR 0011): an Ed25519 private key in a file OUTSIDE
 * the data directory, so that whoever can write the database and the data directory cannot
 * sign a rewritten chain. Where it is, first match:
 *
 *   1. `coffre-server start --audit-key FILE`
 *   2. COFFRE_AUDIT_KEY_FILE
 *   3. $XDG_CONFIG_HOME/coffre/audit-keys/INSTALLATION-ID.key (~/.config/… without XDG_CONFIG_HOME)
 *
 * `start` creates it (0600, its directory 0700) when the installation has no key yet and
 * records the public half in the database; from then on every process that finds a key must
 * find THAT one (another key is refused), and `start` refuses to run without it, so the
 * instances of a PostgreSQL installation all need a copy. Other commands use it when they
 * find it (they sign checkpoints) and do without otherwise.
 */

export { AuditKeyError };

export interface AuditSigner extends AuditPublicKey {
  /** Where the private key was read from. */
  readonly file: string;
  sign(body: CheckpointBody): SignedCheckpoint;
  /**
   * The newest {seq, hash} this key holder signed in this database (FILE.ID.last beside the key): the signer's own
   * memory, outside the database. It refuses to sign a chain that no longer holds it, and
   * `audit verify` fails if the database's checkpoints stop before it (checkpoints removed).
   */
  lastSigned(): Promise<{ seq: number; hash: string } | null>;
  recordSigned(link: { seq: number; hash: string }): Promise<void>;
}

export const AUDIT_KEY_ENV = 'COFFRE_AUDIT_KEY_FILE';

/** The key file found is not the key the database records: `start` refuses; other commands do not sign but verify against the file's key. */
export class AuditKeyMismatchError extends AuditKeyError {
  constructor(
    message: string,
    readonly found: AuditSigner,
  ) {
    super(message);
  }
}

/** Where the key is looked for, and why there. */
export function auditKeyLocation(installationId: string, option?: string): { file: string; from: string } {
  if (option) return { file: path.resolve(option), from: '--audit-key' };
  const env = process.env[AUDIT_KEY_ENV];
  if (env) return { file: path.resolve(env), from: AUDIT_KEY_ENV };
  const config = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return { file: path.join(config, 'coffre', 'audit-keys', `${installationId}.key`), from: 'the default location' };
}

function inside(dir: string, file: string): boolean {
  const rel = path.relative(path.resolve(dir), file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function signerOf(privateKey: KeyObject, file: string, chain: string): AuditSigner {
  const pub = parseAuditPublicKey(createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString());
  // One memory per chain (database) the key signs: copies of a data directory (a restored
  // backup, the embedded copy a migration leaves) are forks of one installation, each its own chain.
  const memory = `${file}.${createHash('sha256').update(chain).digest('hex').slice(0, 16)}.last`;
  const lastSigned = async (): Promise<{ seq: number; hash: string } | null> => {
    try {
      const v = JSON.parse(await readFile(memory, 'utf8')) as { seq?: unknown; hash?: unknown };
      return typeof v.seq === 'number' && typeof v.hash === 'string' ? { seq: v.seq, hash: v.hash } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new AuditKeyError(`cannot read ${memory} (the audit signer's memory): ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    ...pub,
    file,
    sign: (body) => signCheckpoint(body, privateKey, pub.keyId),
    lastSigned,
    async recordSigned(link) {
      const current = await lastSigned();
      if (current && current.seq >= link.seq) return;
      await writeFileAtomic(memory, `${JSON.stringify(link)}\n`, 0o600);
    },
  };
}

async function readSigner(file: string, chain: string): Promise<AuditSigner | null> {
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) throw new AuditKeyError(`the audit signing key ${file} is readable by other accounts (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (err instanceof AuditKeyError) throw err;
    throw new AuditKeyError(`cannot read the audit signing key ${file}: ${(err as Error).message}`, { cause: err });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (err) {
    throw new AuditKeyError(`${file} is not a PEM private key (${(err as Error).message})`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(`${file} is a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return signerOf(key, file, chain);
}

export interface LoadAuditKeyOptions {
  readonly installationId: string;
  /** The data directory: the key may not be in it. */
  readonly dataDir: string;
  /** `--audit-key`. */
  readonly file?: string | undefined;
  /** `start`: create the key when the installation has none yet, and refuse to run without it. */
  readonly required: boolean;
  readonly now: string;
  /** The database the chain is in (its description, without password): the signer's memory is per chain. */
  readonly chain: string;
}

/**
 * The installation's audit signer, or null (a command other than `start` where the key is
 * not found). Throws AuditKeyError when the key is in the data directory, unreadable, not
 * the installation's, or missing for `start` while the installation has one.
 */
export async function loadAuditSigner(db: Database, o: LoadAuditKeyOptions): Promise<AuditSigner | null> {
  const { file, from } = auditKeyLocation(o.installationId, o.file);
  if (inside(o.dataDir, file)) throw new AuditKeyError(`the audit signing key (${file}, from ${from}) must not be kept in the data directory ${o.dataDir}: whoever can write the directory could then re-sign a rewritten audit trail`);
  const recorded = await recordedAuditKey(db);
  let signer = await readSigner(file, o.chain);
  if (!signer) {
    if (!o.required) return null;
    if (recorded) {
      throw new AuditKeyError(
        `the installation's audit signing key (${recorded.keyId.slice(0, 16)}…) is not at ${file} (${from}): copy it there from the instance that holds it (mode 0600), or give its place with --audit-key FILE or ${AUDIT_KEY_ENV}`,
      );
    }
    signer = await createKey(file, o.chain);
  }
  if (recorded && recorded.keyId !== signer.keyId) {
    throw new AuditKeyMismatchError(
      `${file} (${from}) holds audit key ${signer.keyId.slice(0, 16)}…, but the database records ${recorded.keyId.slice(0, 16)}… as this installation's: give the installation's key (or, if this file is the one the installation was created with, the database's record was replaced)`,
      signer,
    );
  }
  if (!recorded && o.required) {
    const won = await recordAuditKey(db, { keyId: signer.keyId, publicKey: signer.pem, createdAt: o.now });
    if (won.keyId !== signer.keyId) {
      throw new AuditKeyError(`another instance created this installation's audit signing key (${won.keyId.slice(0, 16)}…) at the same time: copy its key to ${file} and start again`);
    }
  }
  return signer;
}

async function createKey(file: string, chain: string): Promise<AuditSigner> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  if (!(await createFileExclusive(file, pem, 0o600))) {
    // Another process created it meanwhile: use that one.
    const other = await readSigner(file, chain);
    if (other) return other;
    await unlink(file).catch(() => undefined);
    throw new AuditKeyError(`could not create the audit signing key ${file}`);
  }
  return signerOf(privateKey, file, chain);
}

/** The public keys a verification accepts, by id. */
export function keyMap(...keys: readonly AuditPublicKey[]): Map<string, AuditPublicKey> {
  return new Map(keys.map((k) => [k.keyId, k]));
}

export { auditKeyId };
