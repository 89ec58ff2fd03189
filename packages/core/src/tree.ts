import type { ChunkId } from './bytes.js';
import { isChunkId } from './bytes.js';
import { CoffreError } from './errors.js';

/**
 * Directory tree (docs/FORMAT.md §6): one JSON document per directory, stored as an
 * encrypted blob like file data. Names are kept byte-exact: a name that is valid UTF-8 is
 * stored as a JSON string (exact code points, no normalisation); any other byte sequence
 * is stored as base64 in `nameB64`.
 */
export const TREE_VERSION = 1;
export const MAX_TREE_SIZE = 256 * 1024 * 1024;

export type NodeType = 'file' | 'dir' | 'symlink';

/** One content chunk of a file: [chunk id, plaintext length]. */
export type ChunkRef = readonly [ChunkId, number];

export interface TreeNode {
  readonly name?: string;
  readonly nameB64?: string;
  readonly type: NodeType;
  /** Permission bits including setuid, setgid and sticky (mask 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Times in nanoseconds since the Unix epoch, as decimal strings (exceed 2^53). */
  readonly mtime: string;
  readonly atime?: string;
  readonly ctime?: string;
  /** Inode, device and link count: change detection and hard-link restore. */
  readonly ino?: string;
  readonly dev?: string;
  readonly nlink?: number;
  /** file: byte size and content chunks, in order. */
  readonly size?: number;
  readonly content?: readonly ChunkRef[];
  /** dir: id of the tree blob of its entries. */
  readonly subtree?: ChunkId;
  /** symlink: target, as UTF-8 or base64 of raw bytes. */
  readonly target?: string;
  readonly targetB64?: string;
}

export interface Tree {
  readonly v: 1;
  readonly nodes: readonly TreeNode[];
}

/** The raw bytes of a node's name. */
export function nodeNameBytes(n: TreeNode): Buffer {
  if (n.nameB64 !== undefined) return Buffer.from(n.nameB64, 'base64');
  return Buffer.from(n.name ?? '', 'utf8');
}

/** Encodes raw name bytes into the `name` / `nameB64` fields. */
export function encodeName(raw: Buffer): { name: string } | { nameB64: string } {
  const s = raw.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(raw)) return { name: s };
  return { nameB64: raw.toString('base64') };
}

export function compareNames(a: TreeNode, b: TreeNode): number {
  return Buffer.compare(nodeNameBytes(a), nodeNameBytes(b));
}

export function encodeTree(nodes: TreeNode[]): Buffer {
  // Byte order of names (not UTF-16 order); keys computed once, not per comparison.
  const keyed = nodes.map((n) => ({ n, k: nodeNameBytes(n) }));
  keyed.sort((a, b) => Buffer.compare(a.k, b.k));
  const sorted = keyed.map((x) => x.n);
  return Buffer.from(JSON.stringify({ v: TREE_VERSION, nodes: sorted }), 'utf8');
}

function bad(msg: string): never {
  throw new CoffreError('FORMAT', `malformed tree: ${msg}`);
}

/**
 * Parses and validates a tree. Validation matters: a tree is attacker-controlled input
 * for whoever restores it (a name like ".." or "a/b" must never reach the file system).
 */
export function decodeTree(data: Uint8Array): Tree {
  let t: unknown;
  try {
    t = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    bad('not JSON');
  }
  if (typeof t !== 'object' || t === null) bad('not an object');
  const tree = t as { v?: unknown; nodes?: unknown };
  if (tree.v !== TREE_VERSION) bad(`unsupported version ${typeof tree.v === 'number' ? tree.v : typeof tree.v}`); // String({"toString":0}) throws
  if (!Array.isArray(tree.nodes)) bad('nodes is not an array');
  const seen = new Set<string>();
  for (const n of tree.nodes as TreeNode[]) {
    if (typeof n !== 'object' || n === null) bad('node is not an object');
    if (typeof (n.nameB64 !== undefined ? n.nameB64 : n.name) !== 'string') bad('name is not a string'); // as nodeNameBytes reads it
    const raw = nodeNameBytes(n);
    if (!isSafeName(raw)) bad(`unsafe entry name ${JSON.stringify(raw.toString('utf8'))}`);
    const key = raw.toString('hex');
    if (seen.has(key)) bad('duplicate entry name');
    seen.add(key);
    if (n.type !== 'file' && n.type !== 'dir' && n.type !== 'symlink') bad('unknown node type');
    if (!Number.isInteger(n.mode) || n.mode < 0 || n.mode > 0o7777) bad('bad mode');
    if (typeof n.mtime !== 'string' || !/^-?\d{1,25}$/.test(n.mtime)) bad('bad mtime');
    if (n.type === 'file') {
      if (!Number.isSafeInteger(n.size) || n.size! < 0) bad('bad size');
      if (!Array.isArray(n.content)) bad('file without content list');
      let total = 0;
      for (const c of n.content!) {
        if (!Array.isArray(c) || !isChunkId(c[0]) || !Number.isInteger(c[1]) || c[1] < 0) bad('bad chunk reference');
        total += c[1];
      }
      if (total !== n.size) bad('chunk lengths do not add up to the file size');
    } else if (n.type === 'dir') {
      if (!isChunkId(n.subtree)) bad('directory without subtree');
    } else if (typeof (n.targetB64 !== undefined ? n.targetB64 : n.target) !== 'string') { // as symlinkTargetBytes reads it
      bad('symlink without target');
    }
  }
  return tree as Tree;
}

/** A single path component that cannot escape its directory. */
export function isSafeName(raw: Buffer): boolean {
  if (raw.length === 0 || raw.length > 4096) return false;
  if (raw.includes(0x2f) || raw.includes(0)) return false; // '/' and NUL
  const s = raw.toString('latin1');
  if (s === '.' || s === '..') return false;
  if (process.platform === 'win32' && (raw.includes(0x5c) || /^[a-zA-Z]:/.test(s))) return false;
  return true;
}

export function symlinkTargetBytes(n: TreeNode): Buffer {
  if (n.targetB64 !== undefined) return Buffer.from(n.targetB64, 'base64');
  return Buffer.from(n.target ?? '', 'utf8');
}
