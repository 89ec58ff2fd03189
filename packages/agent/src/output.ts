import cliProgress from 'cli-progress';
import { CoffreError, isCoffreError, type ErrorCode } from '@coffre/core';

/** Documented exit codes (README, docs/OPERATIONS.md). */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  INCOMPLETE: 3,
  CREDENTIAL: 10,
  KEY: 11,
  INTEGRITY: 12,
  UNREACHABLE: 13,
  /** coffre daemon: another daemon already runs with this configuration directory. */
  LOCKED: 14,
} as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: EXIT.USAGE,
  UNAUTHORIZED: EXIT.CREDENTIAL,
  NOT_ENROLLED: EXIT.CREDENTIAL,
  WRONG_PASSPHRASE: EXIT.KEY,
  WRONG_RECOVERY_KEY: EXIT.KEY,
  NO_KEY: EXIT.KEY,
  INTEGRITY: EXIT.INTEGRITY,
  UNREACHABLE: EXIT.UNREACHABLE,
  TLS_PIN_MISMATCH: EXIT.UNREACHABLE,
};

export function exitCodeFor(e: unknown): number {
  return isCoffreError(e) ? (BY_CODE[e.code] ?? EXIT.ERROR) : EXIT.ERROR;
}

export function errorLine(e: unknown): string {
  if (e instanceof CoffreError) return `coffre: error: ${e.message}`;
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') return 'coffre: error: no space left on the device';
  if (err?.code === 'EACCES' || err?.code === 'EPERM') return `coffre: error: permission denied: ${err.message}`;
  return `coffre: error: ${err?.message ?? String(e)}`;
}

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${u[i]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * Progress display: a bar on a terminal (files, bytes, rate, ETA), a plain line every
 * 10 seconds otherwise, nothing with --json or --quiet. Always on stderr.
 */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = Date.now();
  private readonly started = Date.now();
  constructor(
    private readonly mode: 'tty' | 'plain' | 'none',
    private readonly label: string,
  ) {}

  static for(label: string, opts: { json?: boolean; quiet?: boolean }): Progress {
    if (opts.json || opts.quiet) return new Progress('none', label);
    return new Progress(process.stderr.isTTY ? 'tty' : 'plain', label);
  }

  update(p: { bytes: number; totalBytes?: number | undefined; files: number; totalFiles?: number | undefined }): void {
    if (this.mode === 'none') return;
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? p.bytes / secs : 0;
    if (this.mode === 'tty') {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          {
            format: `${this.label} [{bar}] {percentage}% | {files} files | {done}/{tot} | {rate}/s | ETA {eta_formatted}`,
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: false,
            etaBuffer: 50,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(Math.max(1, p.totalBytes ?? 1), 0);
      }
      if (p.totalBytes !== undefined) this.bar.setTotal(Math.max(1, p.totalBytes));
      this.bar.update(p.bytes, {
        files: p.totalFiles !== undefined ? `${p.files}/${p.totalFiles}` : String(p.files),
        done: formatBytes(p.bytes),
        tot: p.totalBytes !== undefined ? formatBytes(p.totalBytes) : '?',
        rate: formatBytes(rate),
      });
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 10_000) return;
    this.lastLine = now;
    const pct = p.totalBytes ? ` (${Math.floor((100 * p.bytes) / Math.max(1, p.totalBytes))}%)` : '';
    process.stderr.write(`${this.label}: ${p.files} files, ${formatBytes(p.bytes)}${pct}, ${formatBytes(rate)}/s, ${formatDuration(now - this.started)}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
