/** Property-based tests of the tree decoder (decodeTree): attacker-controlled input for whoever restores. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CoffreError, decodeTree, encodeName, encodeTree, isSafeName, nodeNameBytes, symlinkTargetBytes, type ChunkId, type TreeNode } from '../src/index.js';
import { fuzzParams, mutate, mutation } from './fuzz.js';

function decodeOrError(data: Uint8Array): ReturnType<typeof decodeTree> | CoffreError {
  try {
    return decodeTree(data);
  } catch (e) {
    if (!(e instanceof CoffreError) || e.code !== 'FORMAT') throw new Error(`unexpected error: ${String(e)}`, { cause: e });
    return e;
  }
}

const chunkIdArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex') as ChunkId);
/** Raw names: any bytes a file system allows in one component (valid UTF-8 or not). */
const rawName = fc
  .oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map((s) => Buffer.from(s, 'utf8')),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b)),
  )
  .filter((b) => isSafeName(b));
const decimal = fc.bigInt({ min: -(10n ** 20n), max: 10n ** 24n }).map(String);

const node = (raw: Buffer): fc.Arbitrary<TreeNode> => {
  const common = fc.record({ mode: fc.integer({ min: 0, max: 0o7777 }), uid: fc.nat(), gid: fc.nat(), mtime: decimal });
  const file = fc.tuple(common, fc.array(fc.tuple(chunkIdArb, fc.nat({ max: 1 << 24 })), { maxLength: 5 })).map(([c, content]) => ({
    ...encodeName(raw),
    type: 'file' as const,
    ...c,
    size: content.reduce((s, [, n]) => s + n, 0),
    content: content as TreeNode['content'],
  }));
  const dir = fc.tuple(common, chunkIdArb).map(([c, subtree]) => ({ ...encodeName(raw), type: 'dir' as const, ...c, subtree }));
  const link = fc.tuple(common, fc.string({ maxLength: 50 })).map(([c, target]) => ({ ...encodeName(raw), type: 'symlink' as const, ...c, target }));
  return fc.oneof(file, dir, link);
};
const nodes = fc
  .uniqueArray(rawName, { maxLength: 12, selector: (b) => b.toString('hex') })
  .chain((names) => (names.length === 0 ? fc.constant([] as TreeNode[]) : fc.tuple(...names.map(node))));

test('round trip: decodeTree(encodeTree(nodes)) gives the nodes in byte order of names, raw names intact', () => {
  fc.assert(
    fc.property(nodes, (ns) => {
      const t = decodeTree(encodeTree([...ns]));
      assert.equal(t.v, 1);
      const want = [...ns].sort((a, b) => Buffer.compare(nodeNameBytes(a), nodeNameBytes(b)));
      assert.deepEqual(t.nodes, want);
    }),
    fuzzParams(300),
  );
});

/** Any JSON value, including the awkward ones (huge numbers, -0, deep nesting, odd strings). */
const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(null, true, 0, -1, 1.5, 1e308, 2 ** 53, 'file', 'dir', 'symlink', '.', '..', 'a/b', '', '\u0000', '\ud800', [], {}),
  // Objects that String() and template literals cannot convert (JSON gives them all).
  fc.constantFrom({ toString: 0 }, { toString: null, valueOf: null }, { valueOf: {} , toString: [] }, JSON.parse('{"__proto__":{"v":1}}') as unknown),
);

test('arbitrary JSON documents and node fields: decodeTree returns or throws FORMAT, nothing else', () => {
  const fields = ['name', 'nameB64', 'type', 'mode', 'uid', 'gid', 'mtime', 'size', 'content', 'subtree', 'target', 'targetB64', 'nlink', 'atime'];
  const doc = fc.oneof(
    jsonish,
    fc.record({ v: fc.oneof(fc.constant(1), jsonish), nodes: fc.oneof(jsonish, fc.array(jsonish, { maxLength: 3 })) }),
    // A valid tree with one field of one node replaced by anything.
    fc.tuple(nodes, fc.nat(), fc.constantFrom(...fields), jsonish, fc.boolean()).map(([ns, i, f, value, remove]) => {
      const list = ns.map((n) => ({ ...n })) as Record<string, unknown>[];
      if (list.length > 0) {
        const n = list[i % list.length]!;
        if (remove) delete n[f];
        else n[f] = value;
      } else list.push({ [f]: value });
      return { v: 1, nodes: list };
    }),
  );
  fc.assert(
    fc.property(doc, (d) => {
      const r = decodeOrError(Buffer.from(JSON.stringify(d) ?? 'undefined', 'utf8'));
      if (!(r instanceof CoffreError)) {
        // Whatever decodes is safe to restore: safe, distinct names and known types.
        const names = r.nodes.map((n) => nodeNameBytes(n).toString('hex'));
        assert.equal(new Set(names).size, names.length);
        for (const n of r.nodes) {
          assert.ok(isSafeName(nodeNameBytes(n)));
          assert.ok(['file', 'dir', 'symlink'].includes(n.type));
          if (n.type === 'symlink') assert.ok(Buffer.isBuffer(symlinkTargetBytes(n))); // what restore reads next
        }
      }
    }),
    fuzzParams(2000),
  );
});

test('byte-level mutations of an encoded tree: FORMAT or a tree that is still safe', () => {
  fc.assert(
    fc.property(nodes, mutation, (ns, m) => {
      const { out } = mutate(encodeTree([...ns]), m);
      const r = decodeOrError(out);
      if (!(r instanceof CoffreError)) for (const n of r.nodes) assert.ok(isSafeName(nodeNameBytes(n)));
    }),
    fuzzParams(1000),
  );
});

test('unsafe names are always refused, as name or as nameB64', () => {
  const unsafe = fc.oneof(
    fc.constantFrom('', '.', '..', '/', 'a/b', '../x', 'x\u0000y', 'é/'),
    fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([a, b]) => `${a}/${b}`),
    fc.string({ minLength: 4097, maxLength: 4200 }),
  );
  fc.assert(
    fc.property(unsafe, fc.boolean(), (name, b64) => {
      const n = { ...(b64 ? { nameB64: Buffer.from(name, 'utf8').toString('base64') } : { name }), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', subtree: '0'.repeat(64) };
      const r = decodeOrError(Buffer.from(JSON.stringify({ v: 1, nodes: [n] })));
      assert.ok(r instanceof CoffreError, JSON.stringify(name));
    }),
    fuzzParams(500),
  );
});
