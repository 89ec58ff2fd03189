/** Property-based tests of the server's parsers of untrusted bytes: the Range header and the streaming pack verifier. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { CoffreError, PackBuilder, type ChunkId } from '@coffre/core';
import { parseRange } from '../src/routes/packs/range.js';
import { PackStreamVerifier } from '../src/routes/packs/stream-verifier.js';
import { fuzzParams } from './fuzz.js';

/** RFC 9110 §14.1.2, single range, as an independent model. */
function modelRange(header: string, size: number): { offset: number; length: number } | undefined {
  const m = /^bytes=([0-9]*)-([0-9]*)$/.exec(header.trim());
  if (!m || m[1]!.length > 15 || m[2]!.length > 15 || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return undefined;
    return { offset: Math.max(0, size - n), length: Math.min(n, size) };
  }
  const a = Number(m[1]);
  if (a >= size) return undefined;
  if (m[2] === '') return { offset: a, length: size - a };
  const b = Number(m[2]);
  if (b < a) return undefined;
  return { offset: a, length: Math.min(b, size - 1) - a + 1 };
}

const digits = fc.oneof(fc.nat({ max: 3000 }).map(String), fc.string({ unit: fc.constantFrom('0', '1', '9'), maxLength: 18 }), fc.constant(''));
const rangeHeader = fc.oneof(
  fc.tuple(digits, digits, fc.constantFrom('', ' ', '\t')).map(([a, b, ws]) => `${ws}bytes=${a}-${b}${ws}`),
  fc.tuple(digits, digits, digits).map(([a, b, c]) => `bytes=${a}-${b},${c}-`),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('b', 'y', 't', 'e', 's', '=', '-', ',', ' ', '1', '0', '+', 'e', '.', 'x', '\u0660'), maxLength: 20 }),
);

test('Range header: an in-bounds, non-empty range or undefined (416), as RFC 9110 says', () => {
  fc.assert(
    fc.property(rangeHeader, fc.oneof(fc.nat({ max: 4000 }), fc.constant(0), fc.constant(256 * 1024 * 1024)), (h, size) => {
      const r = parseRange(h, size);
      if (r !== undefined) {
        assert.ok(r !== null);
        assert.ok(Number.isSafeInteger(r.offset) && Number.isSafeInteger(r.length));
        assert.ok(r.offset >= 0 && r.length >= 1 && r.offset + r.length <= size, `${h} on ${size}: ${JSON.stringify(r)}`);
      }
      assert.deepEqual(r, modelRange(h, size), `${JSON.stringify(h)} on ${size}`);
    }),
    fuzzParams(5000),
  );
  assert.equal(parseRange(undefined, 10), null);
});

const blobs = fc.uniqueArray(fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 1, maxLength: 200 })), {
  minLength: 1,
  maxLength: 8,
  selector: ([id]) => Buffer.from(id).toString('hex'),
});
function buildPack(items: readonly (readonly [Uint8Array, Uint8Array])[]) {
  const b = new PackBuilder();
  for (const [id, blob] of items) b.add(Buffer.from(id).toString('hex') as ChunkId, Buffer.from(blob));
  return b.finish();
}
/** Cuts `data` at the given points: how a body arrives from the network. */
function split(data: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, data.length]) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  return out;
}
const VERIFY_ERRORS = new Set(['FORMAT', 'INTEGRITY', 'TOO_LARGE']);
function stream(expectedId: string, declared: number | undefined, parts: Buffer[]): { stored: Buffer; entries: unknown } | CoffreError {
  const v = new PackStreamVerifier(expectedId, declared);
  const stored: Buffer[] = [];
  try {
    for (const p of parts) stored.push(...v.push(p));
    return { stored: Buffer.concat(stored), entries: v.end() };
  } catch (e) {
    if (!(e instanceof CoffreError) || !VERIFY_ERRORS.has(e.code)) throw new Error(`unexpected error: ${String(e)}`, { cause: e });
    return e;
  }
}

test('pack stream verifier: a valid pack, however it is cut, is stored byte for byte with its entries', () => {
  fc.assert(
    fc.property(blobs, fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(), (items, cuts, withLength) => {
      const { id, data, entries } = buildPack(items);
      const r = stream(id, withLength ? data.length : undefined, split(data, cuts));
      assert.ok(!(r instanceof CoffreError), String(r));
      assert.deepEqual(r.stored, data);
      assert.deepEqual(r.entries, entries);
    }),
    fuzzParams(500),
  );
});

test('pack stream verifier: any change to the bytes or to the announced length is refused with a CoffreError', () => {
  const change = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), bit: fc.nat() }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
    fc.record({ kind: fc.constant('length' as const), delta: fc.integer({ min: -100, max: 100 }).filter((d) => d !== 0) }),
  );
  fc.assert(
    fc.property(blobs, change, fc.array(fc.nat(), { maxLength: 6 }), (items, c, cuts) => {
      const { id, data } = buildPack(items);
      let body = Buffer.from(data);
      let declared: number | undefined = undefined;
      if (c.kind === 'flip') body[(c.bit >> 3) % body.length]! ^= 1 << (c.bit & 7);
      if (c.kind === 'truncate') body = body.subarray(0, c.at % body.length);
      if (c.kind === 'extend') body = Buffer.concat([body, c.extra]);
      if (c.kind === 'length') declared = Math.max(0, body.length + c.delta);
      const r = stream(id, declared, split(body, cuts));
      assert.ok(r instanceof CoffreError, `${c.kind} accepted`);
    }),
    fuzzParams(1000),
  );
});

test('pack stream verifier: arbitrary bodies only ever give a CoffreError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 6 }), fc.option(fc.nat({ max: 1 << 30 })), (bytes, cuts, declared) => {
      const body = Buffer.concat([Buffer.from('CFPK'), Buffer.from(bytes)]);
      const r = stream(randomBytes(32).toString('hex'), declared ?? undefined, split(body, cuts));
      assert.ok(r instanceof CoffreError);
      assert.ok(stream('0'.repeat(64), undefined, split(Buffer.from(bytes), cuts)) instanceof CoffreError);
    }),
    fuzzParams(2000),
  );
});
