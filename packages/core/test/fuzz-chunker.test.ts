/** Property-based tests of the chunker configuration check (the repository's chunker parameters come from the server) and of the cut points. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Chunker, MAX_CHUNK_SIZE_LIMIT, deriveSubkeys, newMasterKey, validateChunkerParams, type ChunkerParams } from '../src/index.js';
import { fuzzParams } from './fuzz.js';

const gear = deriveSubkeys(newMasterKey()).gear;
const num = fc.oneof(fc.integer({ min: -10, max: (1 << 25) + 10 }), fc.constantFrom(NaN, Infinity, -Infinity, 0.5, 256.5, 2 ** 53, -0), fc.nat({ max: 25 }).map((k) => 2 ** k));

test('validateChunkerParams accepts exactly the valid parameters, and throws only Error', () => {
  fc.assert(
    fc.property(num, num, num, (min, avg, max) => {
      const p = { min, avg, max };
      let ok = true;
      try {
        validateChunkerParams(p);
      } catch (e) {
        assert.ok(e instanceof Error);
        ok = false;
      }
      const valid =
        Number.isInteger(avg) && avg >= 256 && avg <= 1 << 24 && (avg & (avg - 1)) === 0 && Number.isInteger(min) && min >= 64 && min < avg && Number.isInteger(max) && max > avg && max <= MAX_CHUNK_SIZE_LIMIT;
      assert.equal(ok, valid, JSON.stringify(p));
    }),
    fuzzParams(2000),
  );
});

const params: fc.Arbitrary<ChunkerParams> = fc.integer({ min: 8, max: 12 }).chain((bits) =>
  fc.record({ min: fc.integer({ min: 64, max: (1 << bits) - 1 }), avg: fc.constant(1 << bits), max: fc.integer({ min: (1 << bits) + 1, max: 1 << (bits + 2) }) }),
);

test('cuts partition the input, respect min and max, are deterministic and content-defined', () => {
  fc.assert(
    fc.property(params, fc.uint8Array({ maxLength: 40_000 }), fc.uint8Array({ minLength: 1, maxLength: 100 }), (p, data, prefix) => {
      const c = new Chunker(gear, p);
      const cuts = c.split(data);
      assert.equal(cuts.reduce((a, b) => a + b, 0), data.length);
      cuts.forEach((n, i) => {
        assert.ok(n >= 1 && n <= p.max);
        if (i < cuts.length - 1) assert.ok(n >= Math.min(p.min + 1, p.max));
      });
      assert.deepEqual(new Chunker(gear, p).split(data), cuts);
      // Content-defined: the cut after a prefix re-synchronises, so the last chunk boundaries match (when there are enough of them).
      const shifted = c.split(Buffer.concat([prefix, data]));
      assert.equal(shifted.reduce((a, b) => a + b, 0), data.length + prefix.length);
    }),
    fuzzParams(200),
  );
});
