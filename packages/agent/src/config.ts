import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CoffreError, type SiteRecord } from '@coffre/core';

/**
 * Agent state: one directory (`--config DIR`, `COFFRE_CONFIG_DIR`, or ~/.config/coffre).
 *   config.json   server URL, pinned certificate, machine credential (mode 0600)
 *   key           the customer's master key, cached after the passphrase opened it once
 *                 (mode 0600) so that scheduled backups need no passphrase — see docs/adr/0002
 *   cache/        chunk ids known to be stored, encrypted tree blobs (pure cache: deletable)
 */
export interface AgentConfig {
  readonly v: 1;
  readonly server: string;
  /** SHA-256 of the server certificate, lowercase hex without colons. */
  readonly fingerprint: string;
  /** The pinned certificate itself (PEM), used as the only trust anchor. */
  readonly certPem: string;
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
    this.dir = dir;
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
  /** Removes the cached master key (the configuration now belongs to another repository). */
  forgetKey(): void {
    rmSync(join(this.dir, 'key'), { force: true });
  }
  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }
}

/** Writes a file readable by its owner only, atomically (temp file + rename). */
export function writeSecret(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
