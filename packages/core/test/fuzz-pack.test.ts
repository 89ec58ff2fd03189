/** Property-based tests of the pack header parser (parsePackHeader, packEntryCount, verifyPack): the server's first contact with uploaded bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  CoffreError,
  MAX_PACK_ENTRIES,
  PACK_ENTRY_SIZE,
  PACK_HEADER_FIXED,
  PACK_MAGIC,
  PACK_VERSION,
  PackBuilder,
  packEntryCount,
  packHeaderSize,
  packIdOf,
  parsePackHeader,
  verifyPack,
  type ChunkId,
} from '../src/index.js';
import { fuzzParams, mutate, mutation } from './fuzz.js';

const PACK_ERRORS = new Set(['FORMAT', 'TOO_LARGE', 'INTEGRITY']);

/** Runs `f`; anything thrown must be a CoffreError with one of `codes`. */
function onlyCoffreErrors<T>(codes: ReadonlySet<string>, f: () => T): T | CoffreError {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof CoffreError) || !codes.has(e.code)) throw new Error(`unexpected error: ${String(e)}`, { cause: e });
    return e;
  }
}

/** Blobs with distinct ids: what an agent puts in a pack. */
const blobs = fc.uniqueArray(fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 1, maxLength: 300 })), {
  minLength: 1,
  maxLength: 12,
  selector: ([id]) => Buffer.from(id).toString('hex'),
});

function buildPack(items: readonly (readonly [Uint8Array, Uint8Array])[]) {
  const b = new PackBuilder();
  for (const [id, blob] of items) b.add(Buffer.from(id).toString('hex') as ChunkId, Buffer.from(blob));
  return b.finish();
}

test('round trip: a built pack parses back to the entries it was built with, and verifies', () => {
  fc.assert(
    fc.property(blobs, (items) => {
      const { id, data, entries } = buildPack(items);
      assert.deepEqual(parsePackHeader(data, data.length), entries);
      assert.deepEqual(parsePackHeader(data.subarray(0, packHeaderSize(items.length))), entries);
      assert.deepEqual(verifyPack(data, id), entries);
      assert.equal(packEntryCount(data.subarray(0, PACK_HEADER_FIXED)), items.length);
      entries.forEach((e, i) => {
        assert.equal(e.id, Buffer.from(items[i]![0]).toString('hex'));
        assert.equal(e.sha256, createHash('sha256').update(items[i]![1]).digest('hex'));
      });
    }),
    fuzzParams(300),
  );
});

test('arbitrary bytes: the parsers return or throw a CoffreError (FORMAT, TOO_LARGE), nothing else', () => {
  // Random bytes behind a valid magic get past the first check far more often than pure noise.
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 400 })).map(
      ([v, reserved, n, rest]) => {
        const b = Buffer.alloc(PACK_HEADER_FIXED);
        PACK_MAGIC.copy(b, 0);
        b[4] = v % 3 === 0 ? PACK_VERSION : v;
        if (v % 2 === 0) Buffer.from(reserved).copy(b, 5);
        b.writeUInt32BE(n % 7 === 0 ? n : (n % 5) + 1, 8);
        return Buffer.concat([b, rest]);
      },
    ),
  );
  fc.assert(
    fc.property(input, fc.option(fc.nat({ max: 1 << 30 })), (bytes, total) => {
      onlyCoffreErrors(new Set(['FORMAT']), () => packEntryCount(bytes));
      const r = onlyCoffreErrors(new Set(['FORMAT', 'TOO_LARGE']), () => parsePackHeader(bytes, total ?? undefined));
      if (!(r instanceof CoffreError)) {
        // Whatever parses is well-formed: contiguous, non-empty, distinct, and within the bytes given.
        let expected = packHeaderSize(r.length);
        assert.ok(r.length >= 1 && r.length <= MAX_PACK_ENTRIES && bytes.length >= expected);
        for (const e of r) {
          assert.equal(e.offset, expected);
          assert.ok(e.length >= 1);
          expected += e.length;
        }
        assert.equal(new Set(r.map((e) => e.id)).size, r.length);
        if (total !== null) assert.equal(expected, total);
      }
      onlyCoffreErrors(PACK_ERRORS, () => verifyPack(bytes));
    }),
    fuzzParams(2000),
  );
});

test('mutations of a valid pack: verifyPack against its id rejects every change, with a CoffreError', () => {
  fc.assert(
    fc.property(blobs, mutation, (items, m) => {
      const { id, data } = buildPack(items);
      const { out, changed } = mutate(data, m);
      const r = onlyCoffreErrors(PACK_ERRORS, () => verifyPack(out, id));
      if (changed) assert.ok(r instanceof CoffreError, `a ${m.kind} mutation went undetected`);
      // Without the id (what a reader of a stored header sees) only the parse's own checks apply: still no other error.
      onlyCoffreErrors(PACK_ERRORS, () => parsePackHeader(out, out.length));
    }),
    fuzzParams(1000),
  );
});

test('header field tampering: count, offsets, lengths and reserved bytes are each checked', () => {
  const field = fc.constantFrom('count', 'offset', 'length', 'reserved-entry', 'reserved-fixed', 'version', 'duplicate-id');
  fc.assert(
    fc.property(blobs, field, fc.nat(), fc.integer({ min: 1, max: 0xffffffff }), (items, f, which, value) => {
      const { id, data } = buildPack(items);
      const out = Buffer.from(data);
      const i = which % items.length;
      const p = PACK_HEADER_FIXED + i * PACK_ENTRY_SIZE;
      switch (f) {
        case 'count':
          out.writeUInt32BE((out.readUInt32BE(8) + value) >>> 0, 8);
          break;
        case 'offset':
          out.writeBigUInt64BE(out.readBigUInt64BE(p + 32) + BigInt(value), p + 32);
          break;
        case 'length':
          out.writeUInt32BE((out.readUInt32BE(p + 40) + value) >>> 0, p + 40);
          break;
        case 'reserved-entry':
          out.writeUInt32BE(value, p + 76);
          break;
        case 'reserved-fixed':
          out[5 + (which % 3)] = (value % 255) + 1;
          break;
        case 'version':
          out[4] = (PACK_VERSION + (value % 255)) & 0xff || 2;
          break;
        case 'duplicate-id':
          if (items.length < 2) return;
          data.copy(out, PACK_HEADER_FIXED + ((i + 1) % items.length) * PACK_ENTRY_SIZE, p, p + 32);
          break;
      }
      if (out.equals(data)) return;
      const r = onlyCoffreErrors(PACK_ERRORS, () => parsePackHeader(out, out.length));
      assert.ok(r instanceof CoffreError || packIdOf(out.subarray(0, packHeaderSize(items.length))) !== id, `${f} tampering parsed`);
      assert.ok(onlyCoffreErrors(PACK_ERRORS, () => verifyPack(out, id)) instanceof CoffreError);
    }),
    fuzzParams(1000),
  );
});
