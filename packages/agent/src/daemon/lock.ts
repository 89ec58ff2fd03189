import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One daemon per agent directory: `daemon.pid` is created exclusively (O_EXCL) and holds
 * the owner's process id. A file left by a daemon that died (no such process) is stale and
 * taken over; one whose process still runs means another daemon is at work.
 */
export class DaemonLockedError extends Error {
  constructor(
    readonly pid: number,
    readonly file: string,
  ) {
    super(`another coffre daemon (process ${pid}) is already running with this configuration directory (${file}); stop it first, or use another --config directory`);
    this.name = 'DaemonLockedError';
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A recycled id of an unrelated process is not a daemon (Linux can tell; elsewhere trust it).
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /coffre|cli\.js|node/.test(cmd);
  } catch {
    return true;
  }
}

export class DaemonLock {
  readonly file: string;
  private held = false;
  constructor(dir: string) {
    this.file = join(dir, 'daemon.pid');
  }

  /** Takes the lock or throws DaemonLockedError. */
  acquire(): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.file, 'wx', 0o600);
        try {
          writeSync(fd, `${process.pid}\n`);
        } finally {
          closeSync(fd);
        }
        this.held = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let owner = Number.NaN;
      try {
        owner = Number.parseInt(readFileSync(this.file, 'utf8').trim(), 10);
      } catch {
        // vanished or unreadable in between: try again
      }
      if (owner === process.pid) {
        this.held = true;
        return;
      }
      if (alive(owner)) throw new DaemonLockedError(owner, this.file);
      rmSync(this.file, { force: true }); // stale: its daemon is gone
    }
    throw new DaemonLockedError(Number.NaN, this.file);
  }

  /** Releases the lock if this process holds it. Safe to call twice. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if (Number.parseInt(readFileSync(this.file, 'utf8').trim(), 10) === process.pid) rmSync(this.file, { force: true });
    } catch {
      // already gone
    }
  }
}
