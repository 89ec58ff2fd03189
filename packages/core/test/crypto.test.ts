import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  BlobCodec,
  CoffreError,
  PackBuilder,
  chunkId,
  decodeRefs,
  decodeTree,
  deriveSubkeys,
  encodeName,
  encodeRefs,
  encodeTree,
  isSafeName,
  makePassphraseSlot,
  makeRecoverySlot,
  newMasterKey,
  newRecoveryKey,
  newSnapshotId,
  openManifest,
  openWithPassphrase,
  openWithRecoveryKey,
  parsePackHeader,
  sealManifest,
  verifyPack,
  type ChunkId,
  type ManifestSecret,
  type TreeNode,
} from '../src/index.js';

const cheap = { m: 64, t: 1, p: 1 };
const master = newMasterKey();
const keys = deriveSubkeys(master);
const codec = new BlobCodec(keys.encryption);

const isCode = (code: string) => (e: unknown) => e instanceof CoffreError && e.code === code;

test('subkeys are distinct and deterministic', () => {
  const again = deriveSubkeys(master);
  assert.deepEqual(again.encryption, keys.encryption);
  assert.notDeepEqual(keys.encryption, keys.chunkId);
  assert.notDeepEqual(keys.chunkId, keys.manifestMac);
});

test('passphrase slot opens with the right passphrase only', async () => {
  const slot = await makePassphraseSlot(master, 'correct horse battery', cheap);
  assert.deepEqual(await openWithPassphrase([slot], 'correct horse battery'), master);
  await assert.rejects(openWithPassphrase([slot], 'wrong'), isCode('WRONG_PASSPHRASE'));
  // Unicode passphrases are NFC-normalised: the same text typed in NFD opens the slot.
  const s2 = await makePassphraseSlot(master, 'café', cheap);
  assert.deepEqual(await openWithPassphrase([s2], 'cafe\u0301'), master);
});

test('a tampered slot does not open; parameters out of range are refused', async () => {
  const slot = await makePassphraseSlot(master, 'pw', cheap);
  const w = Buffer.from(slot.wrapped, 'base64');
  w[3] = w[3]! ^ 1;
  await assert.rejects(openWithPassphrase([{ ...slot, wrapped: w.toString('base64') }], 'pw'), isCode('WRONG_PASSPHRASE'));
  await assert.rejects(openWithPassphrase([{ ...slot, kdf: { ...slot.kdf, m: 1 << 30 } as never }], 'pw'), isCode('FORMAT'));
});

test('recovery key slot', () => {
  const rk = newRecoveryKey();
  const slot = makeRecoverySlot(master, rk.raw);
  assert.match(rk.text, /^([A-Z2-7]{4}-){12}[A-Z2-7]{4}$/);
  assert.deepEqual(openWithRecoveryKey([slot], rk.text.toLowerCase()), master);
  assert.throws(() => openWithRecoveryKey([slot], newRecoveryKey().text), isCode('WRONG_RECOVERY_KEY'));
  assert.throws(() => openWithRecoveryKey([slot], 'not-a-key'), isCode('WRONG_RECOVERY_KEY'));
});

test('blob round trip, compressed and not', () => {
  for (const plain of [Buffer.from('patient record '.repeat(5000)), randomBytes(300_000), Buffer.alloc(0), Buffer.from('x')]) {
    const id = chunkId(keys.chunkId, plain);
    const blob = codec.encode(id, plain, { level: 3 });
    assert.deepEqual(codec.decode(id, blob, 1 << 20, keys.chunkId), plain);
  }
  const text = Buffer.from('abc'.repeat(10000));
  assert.equal(codec.encode(chunkId(keys.chunkId, text), text)[1], 1, 'compressible data is compressed');
  const rnd = randomBytes(100000);
  assert.equal(codec.encode(chunkId(keys.chunkId, rnd), rnd)[1], 0, 'random data is stored as is');
});

test('every flipped byte of a blob is detected', () => {
  const plain = Buffer.from('confidential '.repeat(300));
  const id = chunkId(keys.chunkId, plain);
  const blob = codec.encode(id, plain);
  for (let i = 0; i < blob.length; i++) {
    const bad = Buffer.from(blob);
    bad[i] = bad[i]! ^ 0x40;
    assert.throws(() => codec.decode(id, bad, 1 << 20, keys.chunkId), (e: unknown) => e instanceof CoffreError, `byte ${i}`);
  }
});

test('a blob moved under another id fails; a wrong key fails', () => {
  const a = Buffer.from('A'.repeat(1000));
  const b = Buffer.from('B'.repeat(1000));
  const blobA = codec.encode(chunkId(keys.chunkId, a), a);
  assert.throws(() => codec.decode(chunkId(keys.chunkId, b), blobA, 1 << 20, keys.chunkId), isCode('INTEGRITY'));
  const other = deriveSubkeys(newMasterKey());
  assert.throws(() => new BlobCodec(other.encryption).decode(chunkId(keys.chunkId, a), blobA, 1 << 20, keys.chunkId), isCode('INTEGRITY'));
});

test('decompression is bounded by the caller', () => {
  const plain = Buffer.alloc(4 * 1024 * 1024); // compresses to a few hundred bytes
  const id = chunkId(keys.chunkId, plain);
  const blob = codec.encode(id, plain);
  assert.ok(blob.length < 10_000);
  assert.throws(() => codec.decode(id, blob, 1024 * 1024, keys.chunkId), isCode('TOO_LARGE'));
});

test('pack: build, parse, verify; corruption and truncation detected', () => {
  const pb = new PackBuilder();
  const ids: ChunkId[] = [];
  for (let i = 0; i < 5; i++) {
    const plain = randomBytes(1000 + i);
    const id = chunkId(keys.chunkId, plain);
    ids.push(id);
    assert.equal(pb.add(id, codec.encode(id, plain)), true);
    assert.equal(pb.add(id, codec.encode(id, plain)), false, 'duplicate ids are dropped');
  }
  const { id, data, entries } = pb.finish();
  assert.deepEqual(verifyPack(data, id), entries);
  assert.deepEqual(entries.map((e) => e.id), ids);
  const bad = Buffer.from(data);
  bad[data.length - 3] = bad[data.length - 3]! ^ 1;
  assert.throws(() => verifyPack(bad, id), isCode('INTEGRITY'));
  assert.throws(() => verifyPack(data.subarray(0, data.length - 1)), isCode('FORMAT'));
  const badMagic = Buffer.from(data);
  badMagic[0] = 0;
  assert.throws(() => parsePackHeader(badMagic, badMagic.length), isCode('FORMAT'));
  assert.throws(() => verifyPack(data, '0'.repeat(64)), isCode('INTEGRITY'));
});

test('tree: names byte-exact, unsafe names refused', () => {
  const nodes: TreeNode[] = [
    { ...encodeName(Buffer.from('é.txt'.normalize('NFD'))), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 0, content: [] },
    { ...encodeName(Buffer.from('é.txt'.normalize('NFC'))), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 0, content: [] },
    { ...encodeName(Buffer.from([0x66, 0xff, 0xfe])), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: '1', target: '../x' },
  ];
  const t = decodeTree(encodeTree(nodes));
  assert.equal(t.nodes.length, 3);
  assert.ok(t.nodes.some((n) => n.nameB64 === Buffer.from([0x66, 0xff, 0xfe]).toString('base64')));
  for (const bad of ['..', '.', 'a/b', '', 'x\0y']) {
    assert.equal(isSafeName(Buffer.from(bad)), false, bad);
    const enc = encodeTree([{ name: bad, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 0, content: [] }]);
    assert.throws(() => decodeTree(enc), isCode('FORMAT'), bad);
  }
  assert.throws(() => decodeTree(Buffer.from('{"v":1,"nodes":[{"name":"a","type":"file","mode":420,"mtime":"1","size":5,"content":[]}]}')), isCode('FORMAT'));
});

test('manifest: MAC binds the clear part; secret part is confidential', () => {
  const refs = encodeRefs([chunkId(keys.chunkId, Buffer.from('a')), chunkId(keys.chunkId, Buffer.from('b'))]);
  assert.equal(decodeRefs(refs).length, 2);
  const secret: ManifestSecret = {
    v: 1,
    root: chunkId(keys.chunkId, Buffer.from('root')),
    hostname: 'cabinet-dr-martin',
    paths: ['/srv/patients'],
    tags: [],
    clientTime: new Date().toISOString(),
    stats: { files: 1, dirs: 1, symlinks: 0, bytes: 1, newFiles: 1, changedFiles: 0, unchangedFiles: 0, addedChunks: 1, addedBytes: 1, skipped: 0, durationMs: 1 },
    agentVersion: 'test',
  };
  const m = sealManifest(keys, { id: newSnapshotId(), machineId: 'm1', parent: null, refs, logicalSize: 42, secret });
  assert.ok(!JSON.stringify(m).includes('patients'));
  assert.deepEqual(openManifest(keys, m, 'm1').paths, ['/srv/patients']);
  assert.throws(() => openManifest(keys, m, 'm2'), isCode('INTEGRITY'), 'moved to another machine');
  assert.throws(() => openManifest(keys, { ...m, logicalSize: 43 }, 'm1'), isCode('INTEGRITY'));
  assert.throws(() => openManifest(keys, { ...m, parent: newSnapshotId() }, 'm1'), isCode('INTEGRITY'));
  assert.throws(() => openManifest(deriveSubkeys(newMasterKey()), m, 'm1'), isCode('INTEGRITY'));
  assert.throws(() => decodeRefs(Buffer.concat([refs.subarray(32), refs.subarray(0, 32)])), isCode('FORMAT'));
});
