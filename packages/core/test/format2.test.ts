import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import {
  BlobCodec,
  chunkId,
  deriveAdminKey,
  deriveReadKey,
  deriveSubkeys,
  deriveWriteKeys,
  ed25519Sign,
  ed25519Verify,
  gearBytes,
  isCoffreError,
  keySlotsChangeMessage,
  keySlotsDigest,
  makePassphraseSlot,
  MAX_ARGON2,
  newMasterKey,
  newSealSession,
  openManifest,
  openWithPassphrase,
  passphraseOpens,
  sealManifest,
  type ManifestSecret,
  type SnapshotId,
} from '../src/index.js';

const CHEAP = { m: 256, t: 1, p: 1 };

test('format 2: a blob sealed with the write keys opens with the master key only', () => {
  const master = newMasterKey();
  const w = deriveWriteKeys(master);
  const plain = randomBytes(10_000);
  const id = chunkId(w.chunkId, plain);
  const blob = new BlobCodec({ seal: newSealSession(w.readPublic) }).encode(id, plain, { level: 3 });
  assert.equal(blob[0], 2, 'version 2');
  // The reader with the read key gets the plaintext back.
  const reader = new BlobCodec({ read: deriveReadKey(master), v1: deriveSubkeys(master).encryption });
  assert.deepEqual(reader.decode(id, blob, 20_000, w.chunkId), plain);
  // Without the read key: NO_KEY, with the version-1 key too.
  assert.throws(() => new BlobCodec({ v1: deriveSubkeys(master).encryption }).decode(id, blob, 20_000, w.chunkId), (e) => isCoffreError(e, 'NO_KEY'));
  // No secret a write-only machine keeps decrypts the blob as an AES-256-GCM key.
  for (const k of [w.chunkId, w.manifestMac, w.readPublic, gearBytes(w.gear).subarray(0, 32)]) {
    assert.throws(() => {
      const d = createDecipheriv('aes-256-gcm', k, blob.subarray(34, 46));
      d.setAuthTag(blob.subarray(blob.length - 16));
      d.update(blob.subarray(46, blob.length - 16));
      d.final();
    });
  }
  // Another customer's read key does not open it.
  assert.throws(() => new BlobCodec({ read: deriveReadKey(newMasterKey()) }).decode(id, blob, 20_000, w.chunkId), (e) => isCoffreError(e, 'INTEGRITY'));
});

test('format 2: a tampered ephemeral key, flag or byte is refused', () => {
  const master = newMasterKey();
  const w = deriveWriteKeys(master);
  const plain = Buffer.from('x'.repeat(1000));
  const id = chunkId(w.chunkId, plain);
  const blob = new BlobCodec({ seal: newSealSession(w.readPublic) }).encode(id, plain, { level: 3 });
  const reader = new BlobCodec({ read: deriveReadKey(master) });
  for (const at of [2, 20, 34, 50, blob.length - 1]) {
    const bad = Buffer.from(blob);
    bad[at]! ^= 1;
    assert.throws(() => reader.decode(id, bad, 2000, w.chunkId), (e) => isCoffreError(e, 'INTEGRITY'), `byte ${at}`);
  }
  // A low-order ephemeral key (all zero) gives no guessable key.
  const zero = Buffer.from(blob);
  zero.fill(0, 2, 34);
  assert.throws(() => reader.decode(id, zero, 2000, w.chunkId), (e) => isCoffreError(e, 'INTEGRITY'));
});

test('format 2: version-1 blobs and chunk ids stay valid after an upgrade (deduplication keeps working)', () => {
  const master = newMasterKey();
  const plain = randomBytes(5000);
  const v1 = deriveSubkeys(master);
  const w = deriveWriteKeys(master);
  assert.deepEqual(w.chunkId, v1.chunkId);
  assert.deepEqual(w.gear, v1.gear);
  const id = chunkId(v1.chunkId, plain);
  const old = new BlobCodec(v1.encryption).encode(id, plain);
  assert.deepEqual(new BlobCodec({ v1: v1.encryption, read: deriveReadKey(master) }).decode(id, old, 10_000, w.chunkId), plain);
});

test('format 2: a sealed manifest passes its MAC check with the write keys, opens with the read key only', () => {
  const master = newMasterKey();
  const w = deriveWriteKeys(master);
  const secret: ManifestSecret = {
    v: 1,
    root: chunkId(w.chunkId, Buffer.from('root')),
    hostname: 'poste-accueil',
    paths: ['/srv/patients'],
    tags: [],
    clientTime: new Date().toISOString(),
    agentVersion: 'test',
    stats: { files: 1, dirs: 1, symlinks: 0, bytes: 1, newFiles: 1, changedFiles: 0, unchangedFiles: 0, addedChunks: 1, addedBytes: 1, skipped: 0, durationMs: 1 },
  };
  const id = randomBytes(16).toString('hex') as SnapshotId;
  const m = sealManifest({ readPublic: w.readPublic, manifestMac: w.manifestMac }, { id, machineId: 'm1', parent: null, refs: Buffer.alloc(32), logicalSize: 1, secret });
  assert.equal(m.v, 2);
  assert.throws(() => openManifest({ manifestMac: w.manifestMac }, m, 'm1'), (e) => isCoffreError(e, 'NO_KEY'));
  assert.deepEqual(openManifest({ manifestMac: w.manifestMac, read: deriveReadKey(master) }, m, 'm1'), secret);
  // The MAC binds the machine and the version: moved to another machine, or relabelled v1, it fails.
  assert.throws(() => openManifest({ manifestMac: w.manifestMac, read: deriveReadKey(master) }, m, 'm2'), (e) => isCoffreError(e, 'INTEGRITY'));
  assert.throws(() => openManifest({ manifestMac: w.manifestMac, encryption: deriveSubkeys(master).encryption }, { ...m, v: 1 }, 'm1'), (e) => isCoffreError(e, 'INTEGRITY'));
});

test('key-admin signatures: only the master key signs a slot change, and a signature fits one state', async () => {
  const master = newMasterKey();
  const admin = deriveAdminKey(master);
  const slot = await makePassphraseSlot(master, 'une phrase secrète assez longue', CHEAP);
  const before = keySlotsDigest([]);
  const msg = keySlotsChangeMessage('cust', 2, before, [slot]);
  const sig = ed25519Sign(admin.privateKey, msg);
  assert.ok(ed25519Verify(admin.publicKey, msg, sig));
  assert.ok(!ed25519Verify(deriveAdminKey(newMasterKey()).publicKey, msg, sig), 'another key');
  assert.ok(!ed25519Verify(admin.publicKey, keySlotsChangeMessage('cust', 2, keySlotsDigest([slot]), [slot]), sig), 'replayed on another state');
  assert.ok(!ed25519Verify(admin.publicKey, keySlotsChangeMessage('cust', 5, before, [slot]), sig), 'replayed on the same set, a later generation');
  assert.ok(!ed25519Verify(admin.publicKey, keySlotsChangeMessage('other', 2, before, [slot]), sig), 'another customer');
  assert.ok(!ed25519Verify(admin.publicKey, msg, Buffer.alloc(10)), 'malformed signature: false, no throw');
  assert.ok(await passphraseOpens(slot, 'une phrase secrète assez longue'));
  assert.ok(!(await passphraseOpens(slot, 'une autre phrase')));
});

test('agents refuse a key slot that asks for more than the documented Argon2 bound', async () => {
  const master = newMasterKey();
  const slot = await makePassphraseSlot(master, 'p', CHEAP);
  const greedy = { ...slot, kdf: { ...slot.kdf, m: MAX_ARGON2.m * 2 } } as typeof slot;
  await assert.rejects(openWithPassphrase([greedy], 'p'), (e) => isCoffreError(e, 'FORMAT'));
  assert.ok(MAX_ARGON2.m <= 1024 * 1024);
});

