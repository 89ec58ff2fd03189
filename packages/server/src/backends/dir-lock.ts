import { readFile, realpath, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { createFileExclusive } from '../fsutil.js';

/** Who holds a data directory's lock file. */
export interface DirLockOwner {
  readonly pid: number;
  readonly host: string;
  /** The directory the owner locked (a copy of the directory carries a lock that is not its own). */
  readonly dir: string;
  /** 'server' or 'migrate-storage'. */
  readonly role: string;
  readonly since: string;
}

export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
  constructor(
    readonly dir: string,
    readonly owner: DirLockOwner,
  ) {
    super(`${dir} is in use by ${owner.role === 'server' ? 'a running coffre-server' : `coffre-server ${owner.role}`} (pid ${owner.pid} since ${owner.since}); stop it first`);
  }
}

const FILE = 'server.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Marks `dir` as used by this process until `release` (a lock file, DIR/server.lock). The
 * embedded deployment's data directory holds the data itself: one server process uses it,
 * and `migrate-storage` copies it only while no server does. A lock left by a process that
 * died, written on another host, or copied along with the directory (`cp -a`), is stale and
 * taken over.
 */
export async function lockDataDir(dir: string, role: string): Promise<{ release(): Promise<void> }> {
  const root = await realpath(dir);
  const file = path.join(root, FILE);
  const me: DirLockOwner = { pid: process.pid, host: hostname(), dir: root, role, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createFileExclusive(file, `${JSON.stringify(me)}\n`, 0o600)) {
      return {
        release: async () => {
          const current = await readOwner(file);
          if (current && current.pid === me.pid && current.since === me.since) await unlink(file).catch(() => undefined);
        },
      };
    }
    const owner = await readOwner(file);
    if (owner && owner.dir === root && owner.host === me.host && owner.pid !== process.pid && alive(owner.pid)) throw new DirLockedError(root, owner);
    if (owner && owner.pid === process.pid && owner.dir === root && owner.host === me.host) throw new DirLockedError(root, owner);
    await unlink(file).catch(() => undefined); // stale
  }
  throw new Error(`could not lock ${root}: ${FILE} keeps reappearing`);
}

/** The current owner of the directory's lock, if a live process on this host holds it. */
export async function dataDirOwner(dir: string): Promise<DirLockOwner | null> {
  const root = await realpath(dir);
  const owner = await readOwner(path.join(root, FILE));
  return owner && owner.dir === root && owner.host === hostname() && alive(owner.pid) ? owner : null;
}

async function readOwner(file: string): Promise<DirLockOwner | null> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as Partial<DirLockOwner>;
    if (typeof v.pid !== 'number' || typeof v.dir !== 'string' || typeof v.host !== 'string') return null;
    return { pid: v.pid, host: v.host, dir: v.dir, role: String(v.role ?? 'server'), since: String(v.since ?? '') };
  } catch {
    return null;
  }
}
