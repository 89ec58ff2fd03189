import { lchownSync, lutimesSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Setting times to the nanosecond needs utimensat(2): Node's fs.utimes takes seconds as a
 * double, which loses ~240 ns at today's epoch. A tiny N-API addon (packages/agent/native)
 * provides it; without it we fall back to fs.utimes (microsecond-ish precision).
 */
interface Native {
  utimens(path: string | Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, nofollow: boolean): void;
}
let native: Native | null = null;
try {
  native = createRequire(import.meta.url)('../../../native/build/Release/coffre_native.node') as Native;
} catch {
  native = null;
}

export const nanosecondTimes = native !== null;

function split(ns: string): [number, number] {
  const v = BigInt(ns);
  let sec = v / 1_000_000_000n;
  let nsec = v % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return [Number(sec), Number(nsec)];
}

export function setTimes(path: string | Buffer, atimeNs: string, mtimeNs: string, symlink: boolean): void {
  const [as, an] = split(atimeNs);
  const [ms, mn] = split(mtimeNs);
  if (native) {
    native.utimens(path, as, an, ms, mn, symlink);
    return;
  }
  const a = as + an / 1e9;
  const m = ms + mn / 1e9;
  if (symlink) lutimesSync(path, a, m);
  else utimesSync(path, a, m);
}

export const canChown = typeof process.getuid === 'function' && process.getuid() === 0;

export function setOwner(path: string | Buffer, uid: number, gid: number): void {
  if (canChown) lchownSync(path, uid, gid);
}
