import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CoffreError, gearBytes, gearFromBytes, type SiteRecord, type WriteKeys } from '@coffre/core';

/**
 * Agent state: one directory (`--config DIR`, `COFFRE_CONFIG_DIR`, or ~/.config/coffre).
 *   config.json   server URL, pinned certificate, machine credential (mode 0600)
 *   write-key     storage format 2: what unattended backups need and nothing that decrypts
 *                 stored data (chunk-id and manifest keys, chunker table, the customer's
 *                 public read key) plus this machine's local cache key (mode 0600; ADR 0010)
 *   key           format 1 only: the customer's master key, cached after the passphrase opened
 *                 it once (docs/adr/0002); removed when the repository moves to format 2
 *   cache/        chunk ids known to be stored, this machine's trees and snapshot roots
 *                 encrypted with the local cache key (pure cache: deletable)
 */
export interface AgentConfig {
  readonly v: 1;
  readonly server: string;
  /** SHA-256 of the server certificate, lowercase hex without colons. */
  readonly fingerprint: string;
  /** The pinned certificate itself (PEM), used as the only trust anchor (trust "pinned"). */
  readonly certPem: string;
  /**
   * "pinned" (default): a self-signed certificate, trusted by fingerprint alone. "system": a
   * certificate from a CA this machine trusts, checked with its host name at every request
   * (renewals keep working); the fingerprint was checked at enrollment only.
   */
  readonly trust?: 'pinned' | 'system';
  readonly machineId: string;
  readonly machineName: string;
  readonly customerId: string;
  readonly customerName: string;
  readonly credential: string;
  /** The installation's sites, as the server last listed them (failover when `server` is out of reach). */
  readonly sites?: readonly SiteRecord[];
  /** The highest site epoch seen (sent with every request: an old primary refuses writes). */
  readonly epoch?: number;
}

export function resolveConfigDir(flag?: string): string {
  if (flag) return flag;
  if (process.env.COFFRE_CONFIG_DIR) return process.env.COFFRE_CONFIG_DIR;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'coffre');
}

export class ConfigStore {
  readonly dir: string;
  constructor(dir: string) {
    // Absolute: a restore as root works from a pinned working directory (engine/restore.ts).
    this.dir = resolve(dir);
  }
  private get file(): string {
    return join(this.dir, 'config.json');
  }
  get cacheDir(): string {
    return join(this.dir, 'cache');
  }
  exists(): boolean {
    return existsSync(this.file);
  }
  load(): AgentConfig {
    if (!this.exists()) {
      throw new CoffreError('NOT_ENROLLED', `this machine is not enrolled (no ${this.file}); run "coffre enroll --server URL --token TOKEN" first`);
    }
    const c = JSON.parse(readFileSync(this.file, 'utf8')) as AgentConfig;
    if (c.v !== 1) throw new CoffreError('FORMAT', `unsupported agent configuration version in ${this.file}`);
    return c;
  }
  save(c: AgentConfig): void {
    this.ensureDir();
    writeSecret(this.file, JSON.stringify(c, null, 2) + '\n');
  }
  loadKey(): Buffer | null {
    const f = join(this.dir, 'key');
    if (!existsSync(f)) return null;
    const k = Buffer.from(readFileSync(f, 'utf8').trim(), 'hex');
    return k.length === 32 ? k : null;
  }
  saveKey(master: Buffer): void {
    this.ensureDir();
    writeSecret(join(this.dir, 'key'), master.toString('hex') + '\n');
  }
  /** Removes the cached master key (another repository, or the repository is now write-only). */
  forgetKey(): void {
    rmSync(join(this.dir, 'key'), { force: true });
  }
  /** The write keys of a format-2 repository, with the local cache key; null if none kept. */
  loadWriteKeys(customerId: string): { keys: WriteKeys; cacheKey: Buffer } | null {
    const f = join(this.dir, 'write-key');
    if (!existsSync(f)) return null;
    const w = JSON.parse(readFileSync(f, 'utf8')) as StoredWriteKeys;
    if (w.v !== 2) throw new CoffreError('FORMAT', `unsupported write-key version in ${f}`);
    if (w.customerId !== customerId) return null;
    const b = (s: string, n: number) => {
      const x = Buffer.from(s, 'base64');
      if (x.length !== n) throw new CoffreError('FORMAT', `${f} is damaged; remove it and run a command with the passphrase`);
      return x;
    };
    return {
      keys: { chunkId: b(w.chunkId, 32), manifestMac: b(w.manifestMac, 32), gear: gearFromBytes(b(w.gear, 1024)), readPublic: b(w.readPublic, 32) },
      cacheKey: b(w.cacheKey, 32),
    };
  }
  /** Saves the write keys; keeps the local cache key when the file already holds one for this customer. */
  saveWriteKeys(customerId: string, keys: WriteKeys): void {
    this.ensureDir();
    const cacheKey = this.loadWriteKeys(customerId)?.cacheKey ?? randomBytes(32);
    const w: StoredWriteKeys = {
      v: 2,
      customerId,
      chunkId: keys.chunkId.toString('base64'),
      manifestMac: keys.manifestMac.toString('base64'),
      gear: gearBytes(keys.gear).toString('base64'),
      readPublic: keys.readPublic.toString('base64'),
      cacheKey: cacheKey.toString('base64'),
    };
    writeSecret(join(this.dir, 'write-key'), JSON.stringify(w, null, 2) + '\n');
  }
  forgetWriteKeys(): void {
    rmSync(join(this.dir, 'write-key'), { force: true });
  }
  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }
}

interface StoredWriteKeys {
  readonly v: 2;
  readonly customerId: string;
  readonly chunkId: string;
  readonly manifestMac: string;
  readonly gear: string;
  readonly readPublic: string;
  readonly cacheKey: string;
}

/** Writes a file readable by its owner only, atomically (temp file + rename). */
export function writeSecret(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
