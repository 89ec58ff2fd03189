/** Property-based tests of the reference list decoder (decodeRefs) and the manifest opener (openManifest). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CoffreError,
  decodeRefs,
  deriveSubkeys,
  encodeRefs,
  newMasterKey,
  openManifest,
  sealManifest,
  type ChunkId,
  type ManifestSecret,
  type ManifestUpload,
  type SnapshotId,
} from '../src/index.js';
import { fuzzParams, mutate, mutation } from './fuzz.js';

function orError<T>(codes: ReadonlySet<string>, f: () => T): T | CoffreError {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof CoffreError) || !codes.has(e.code)) throw new Error(`unexpected error: ${String(e)}`, { cause: e });
    return e;
  }
}

const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));
const chunkIdArb = hex(32) as fc.Arbitrary<ChunkId>;
const FORMAT = new Set(['FORMAT']);

test('refs round trip: decodeRefs(encodeRefs(ids)) is the sorted set of ids', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(chunkIdArb, fc.constantFrom('0'.repeat(64) as ChunkId, 'f'.repeat(64) as ChunkId)), { maxLength: 50 }), (ids) => {
      assert.deepEqual(decodeRefs(encodeRefs(ids)), [...new Set(ids)].sort());
    }),
    fuzzParams(500),
  );
});

test('refs: arbitrary and mutated lists decode to a strictly sorted list or FORMAT', () => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.tuple(fc.array(chunkIdArb, { maxLength: 20 }), mutation).map(([ids, m]) => mutate(encodeRefs(ids), m).out),
  );
  fc.assert(
    fc.property(input, (bytes) => {
      const r = orError(FORMAT, () => decodeRefs(bytes));
      if (!(r instanceof CoffreError)) {
        assert.equal(r.length * 32, bytes.length);
        for (let i = 1; i < r.length; i++) assert.ok(r[i - 1]! < r[i]!);
        assert.deepEqual(encodeRefs(r), Buffer.from(bytes), 'the encoding is canonical');
      }
    }),
    fuzzParams(1000),
  );
});

const keys = deriveSubkeys(newMasterKey());
const otherKeys = deriveSubkeys(newMasterKey());
const MANIFEST_ERRORS = new Set(['FORMAT', 'INTEGRITY']);

const secretArb: fc.Arbitrary<ManifestSecret> = fc.record({
  v: fc.constant(1 as const),
  root: chunkIdArb,
  hostname: fc.string({ maxLength: 30 }),
  paths: fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }),
  tags: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  clientTime: fc.constant('2026-01-01T00:00:00.000Z'),
  stats: fc.constant({ files: 1, dirs: 1, symlinks: 0, bytes: 10, newFiles: 1, changedFiles: 0, unchangedFiles: 0, addedChunks: 1, addedBytes: 10, skipped: 0, durationMs: 1 }),
  agentVersion: fc.constant('0.1.0'),
});
const sealed = fc
  .tuple(secretArb, hex(16), fc.option(hex(16)), fc.array(chunkIdArb, { maxLength: 10 }), fc.nat(), fc.uuid())
  .map(([secret, id, parent, refs, logicalSize, machineId]) => ({
    secret,
    machineId,
    m: sealManifest(keys, { id: id as SnapshotId, machineId, parent: parent as SnapshotId | null, refs: encodeRefs(refs), logicalSize, secret }),
  }));

test('manifest round trip: openManifest(sealManifest(x)) is x', () => {
  fc.assert(
    fc.property(sealed, ({ secret, machineId, m }) => {
      assert.deepEqual(openManifest(keys, JSON.parse(JSON.stringify(m)) as ManifestUpload, machineId), JSON.parse(JSON.stringify(secret)));
    }),
    fuzzParams(300),
  );
});

test('manifest: another machine, another key, or any changed field is refused with INTEGRITY or FORMAT', () => {
  const fields = ['v', 'id', 'parent', 'refsSha256', 'refCount', 'logicalSize', 'secret', 'mac'] as const;
  const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string(), fc.constantFrom(null, 0, 1, -1, '', 'AAAA', 1e21, '\ud800', { toString: 0 }, { toString: null, valueOf: null }));
  fc.assert(
    fc.property(sealed, fc.constantFrom(...fields), anyValue, fc.uuid(), fc.boolean(), ({ machineId, m }, f, value, otherMachine, useOtherKey) => {
      // As the agent receives it: JSON (so no object without a prototype, no undefined).
      const changed = JSON.parse(JSON.stringify({ ...m, [f]: value })) as ManifestUpload;
      // Known and left alone: the MAC input writes a null parent as '' (FORMAT.md §7.3), so the two are one value.
      const nullish = (x: unknown) => x === null || x === '';
      const same = JSON.stringify(changed[f]) === JSON.stringify(m[f]) || (f === 'parent' && nullish(changed.parent) && nullish(m.parent));
      const r = orError(MANIFEST_ERRORS, () => openManifest(keys, changed, machineId));
      if (!same) assert.ok(r instanceof CoffreError, `changed ${f} accepted`);
      assert.ok(orError(MANIFEST_ERRORS, () => openManifest(keys, m, otherMachine)) instanceof CoffreError || otherMachine === machineId);
      if (useOtherKey) assert.ok(orError(MANIFEST_ERRORS, () => openManifest(otherKeys, m, machineId)) instanceof CoffreError);
    }),
    fuzzParams(1000),
  );
});

test('manifest: arbitrary JSON where a manifest is expected is refused with FORMAT or INTEGRITY', () => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ v: fc.constant(1), id: fc.jsonValue({ maxDepth: 1 }), secret: fc.jsonValue({ maxDepth: 1 }), mac: fc.jsonValue({ maxDepth: 1 }) })), fc.uuid(), (m, machineId) => {
      const wire = JSON.parse(JSON.stringify(m)) as ManifestUpload;
      assert.ok(orError(MANIFEST_ERRORS, () => openManifest(keys, wire, machineId)) instanceof CoffreError);
    }),
    fuzzParams(1000),
  );
});

test('manifest: byte-level mutations of the sealed secret or the MAC are refused', () => {
  fc.assert(
    fc.property(sealed, mutation, fc.boolean(), ({ machineId, m }, mu, onMac) => {
      const src = onMac ? Buffer.from(m.mac, 'hex') : Buffer.from(m.secret, 'base64');
      const { out, changed } = mutate(src, mu);
      const changedM = { ...m, ...(onMac ? { mac: out.toString('hex') } : { secret: out.toString('base64') }) };
      const r = orError(MANIFEST_ERRORS, () => openManifest(keys, changedM, machineId));
      if (changed) assert.ok(r instanceof CoffreError);
    }),
    fuzzParams(500),
  );
});

test('manifest: whatever JSON the key holder sealed as the secret, openManifest returns a well-formed one or FORMAT', () => {
  // The MAC proves who wrote it, not that it is well-formed (another agent version, a bug).
  const secretJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), secretArb.map((s) => ({ ...s, root: 'zz' })), fc.constant(null));
  fc.assert(
    fc.property(secretJson, hex(16), fc.uuid(), (secret, id, machineId) => {
      const m = sealManifest(keys, { id: id as SnapshotId, machineId, parent: null, refs: Buffer.alloc(0), logicalSize: 0, secret: secret as unknown as ManifestSecret });
      const r = orError(MANIFEST_ERRORS, () => openManifest(keys, m, machineId));
      if (!(r instanceof CoffreError)) assert.equal(r.v, 1);
    }),
    fuzzParams(300),
  );
});
