import { createHash } from 'node:crypto';
import { closeSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * A tree that exercises everything the agent must keep: contents, modes, nanosecond
 * mtimes, symlinks (never followed), hard links, empty files and directories, names in
 * any Unicode form and raw bytes, spaces and quotes, deep and long paths, sparse files.
 */
export function buildFidelityTree(root: string): { special: string[] } {
  mkdirSync(root, { recursive: true });
  const w = (rel: string, data: string | Buffer, mode = 0o644) => {
    writeFileSync(join(root, rel), data);
    chmodSync(join(root, rel), mode);
  };
  mkdirSync(join(root, 'docs/2024'), { recursive: true });
  w('docs/2024/compte-rendu.txt', 'Compte rendu de consultation\n'.repeat(2000));
  w('docs/2024/empty.txt', '');
  w('docs/secret.key', 'k', 0o600);
  w('docs/script.sh', '#!/bin/sh\necho ok\n', 0o755);
  w('docs/setuid-tool', 'x', 0o4755);
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'private'), { mode: 0o700 });
  chmodSync(join(root, 'private'), 0o700);
  w('private/notes.md', '# notes\n');
  // Names: spaces, quotes, both Unicode forms side by side, emoji, leading dash, newline.
  mkdirSync(join(root, 'names'));
  for (const n of ['with space.txt', `quote's "double".txt`, 'é-nfc.txt'.normalize('NFC'), 'é-nfc.txt'.normalize('NFD'), '😀 emoji', '-leading-dash', 'new\nline', 'back\\slash', 'tab\there']) {
    w(join('names', n), `name: ${n}\n`);
  }
  // Raw non-UTF-8 bytes in a name.
  const rawName = Buffer.concat([Buffer.from(join(root, 'names') + '/'), Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0xe9, 0xff])]);
  writeFileSync(rawName, 'latin-1 name\n');
  // Deep and long path (about 2,000 bytes).
  let deep = join(root, 'deep');
  for (let i = 0; i < 30; i++) deep = join(deep, `level-${i}-${'x'.repeat(50)}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'bottom.txt'), 'at the bottom\n');
  // Symlinks: relative, absolute, dangling, to a directory — stored, never followed.
  symlinkSync('docs/2024/compte-rendu.txt', join(root, 'link-relative'));
  symlinkSync('/etc/hostname', join(root, 'link-absolute'));
  symlinkSync('does/not/exist', join(root, 'link-dangling'));
  symlinkSync('docs', join(root, 'link-to-dir'));
  // Hard links.
  w('hard-a.txt', 'shared inode\n');
  linkSync(join(root, 'hard-a.txt'), join(root, 'docs/hard-b.txt'));
  // A multi-chunk file of varied content, and a sparse file with holes.
  const big = Buffer.alloc(11 * 1024 * 1024);
  for (let i = 0, c = 0; i < big.length; c++) i += createHash('sha256').update(String(c)).digest().copy(big, i);
  w('big.bin', big);
  const fd = openSync(join(root, 'sparse.img'), 'w');
  writeSync(fd, Buffer.from('start'), 0, 5, 0);
  writeSync(fd, Buffer.from('middle'), 0, 6, 40 * 1024 * 1024);
  writeSync(fd, Buffer.from('end'), 0, 3, 80 * 1024 * 1024 - 3);
  closeSync(fd);
  // Nanosecond mtimes (GNU touch keeps them), including one before 1970.
  execFileSync('touch', ['-h', '-d', '@1700000000.123456789', join(root, 'docs/2024/compte-rendu.txt')]);
  execFileSync('touch', ['-h', '-d', '@1600000000.000000001', join(root, 'link-relative')]);
  execFileSync('touch', ['-d', '@-86400.5', join(root, 'docs/secret.key')]);
  execFileSync('touch', ['-d', '@1500000000.999999999', join(root, 'empty-dir')]);
  // A special file: skipped with a warning.
  execFileSync('mkfifo', [join(root, 'a-fifo')]);
  return { special: ['a-fifo'] };
}

export interface Entry {
  readonly type: string;
  readonly mode: number;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly sha?: string;
  readonly target?: string;
  readonly inodeGroup?: string;
}

/** Describes a tree: relative raw path (hex-safe key) → metadata and content hash. */
export function describeTree(root: string, skip: readonly string[] = []): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const inodes = new Map<string, string>();
  const walk = (dir: Buffer, rel: string) => {
    for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const r = rel ? `${rel}/${name.toString('latin1')}` : name.toString('latin1');
      if (skip.includes(r)) continue;
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = lstatSync(p, { bigint: true });
      const base = { mode: Number(st.mode & 0o7777n), size: st.size, mtimeNs: st.mtimeNs, uid: Number(st.uid), gid: Number(st.gid) };
      if (st.isDirectory()) {
        out.set(r, { type: 'dir', ...base, size: 0n });
        walk(p, r);
      } else if (st.isSymbolicLink()) {
        out.set(r, { type: 'symlink', ...base, target: readlinkSync(p, { encoding: 'buffer' }).toString('latin1') });
      } else if (st.isFile()) {
        let group: string | undefined;
        if (st.nlink > 1n) {
          const k = `${st.dev}:${st.ino}`;
          group = inodes.get(k) ?? r;
          inodes.set(k, group);
        }
        out.set(r, { type: 'file', ...base, sha: createHash('sha256').update(readFileSync(p)).digest('hex'), ...(group ? { inodeGroup: group } : {}) });
      } else {
        out.set(r, { type: 'special', ...base });
      }
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

/** Lists differences between two descriptions (empty when identical). */
export function diffTrees(a: Map<string, Entry>, b: Map<string, Entry>): string[] {
  const diffs: string[] = [];
  for (const [k, ea] of a) {
    const eb = b.get(k);
    if (!eb) {
      diffs.push(`missing: ${k}`);
      continue;
    }
    for (const f of ['type', 'mode', 'size', 'mtimeNs', 'uid', 'gid', 'sha', 'target', 'inodeGroup'] as const) {
      // Directory sizes and symlink modes are file-system artefacts, not data.
      if (f === 'size' && ea.type === 'dir') continue;
      if (f === 'mode' && ea.type === 'symlink') continue;
      if (String(ea[f]) !== String(eb[f])) diffs.push(`${k}: ${f} ${String(ea[f])} != ${String(eb[f])}`);
    }
  }
  for (const k of b.keys()) if (!a.has(k)) diffs.push(`unexpected: ${k}`);
  return diffs;
}
