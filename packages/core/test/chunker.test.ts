import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Chunker, DEFAULT_CHUNKER, deriveSubkeys, validateChunkerParams } from '../src/index.js';

/** Deterministic pseudo-random bytes (SHA-256 in counter mode): stable across runs. */
function prng(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0, c = 0; i < n; c++) {
    const h = createHash('sha256').update(`${seed}:${c}`).digest();
    i += h.copy(out, i);
  }
  return out;
}

const fixedKey = Buffer.alloc(32, 7);
const gear = deriveSubkeys(fixedKey).gear;

test('chunk boundaries for a fixed key and input are stable (golden)', () => {
  const data = prng('golden', 16 * 1024 * 1024);
  const cuts = new Chunker(gear).split(data);
  const digest = createHash('sha256').update(cuts.join(',')).digest('hex').slice(0, 16);
  // Boundaries are part of the format (dedup across agent versions): a change here must be deliberate.
  assert.equal(cuts.reduce((a, b) => a + b, 0), data.length);
  assert.equal(digest, GOLDEN_DIGEST, `boundaries changed: ${cuts.join(',')}`);
});

test('every chunk respects min and max; average is near 1 MiB', () => {
  const data = prng('sizes', 64 * 1024 * 1024);
  const cuts = new Chunker(gear).split(data);
  for (const [i, c] of cuts.entries()) {
    if (i < cuts.length - 1) assert.ok(c >= DEFAULT_CHUNKER.min, `chunk ${i} too small: ${c}`);
    assert.ok(c <= DEFAULT_CHUNKER.max, `chunk ${i} too large: ${c}`);
  }
  const avg = data.length / cuts.length;
  assert.ok(avg > 700 * 1024 && avg < 1600 * 1024, `average ${avg}`);
});

test('boundaries resynchronise after an insertion (content-defined)', () => {
  const data = prng('shift', 32 * 1024 * 1024);
  const ch = new Chunker(gear);
  const a = ch.split(data);
  const edited = Buffer.concat([data.subarray(0, 5_000_000), Buffer.from('inserted bytes'), data.subarray(5_000_000)]);
  const b = ch.split(edited);
  const ends = (cuts: number[], shift: number, from: number) => {
    const s = new Set<number>();
    let p = 0;
    for (const c of cuts) {
      p += c;
      if (p > from) s.add(p - shift);
    }
    return s;
  };
  const after = ends(a, 0, 8_000_000);
  const afterB = ends(b, 14, 8_000_000);
  const common = [...after].filter((x) => afterB.has(x)).length;
  assert.ok(common >= after.size - 1, `only ${common}/${after.size} boundaries survived an insertion`);
});

test('the gear table is keyed: another key gives other boundaries', () => {
  const data = prng('keyed', 16 * 1024 * 1024);
  const a = new Chunker(gear).split(data);
  const b = new Chunker(deriveSubkeys(Buffer.alloc(32, 8)).gear).split(data);
  assert.notDeepEqual(a, b);
});

test('short input and empty input', () => {
  const ch = new Chunker(gear);
  assert.deepEqual(ch.split(Buffer.alloc(0)), []);
  assert.deepEqual(ch.split(Buffer.alloc(100)), [100]);
  assert.deepEqual(ch.split(Buffer.alloc(DEFAULT_CHUNKER.max * 2 + 5)), [DEFAULT_CHUNKER.max, DEFAULT_CHUNKER.max, 5]);
});

test('parameter validation', () => {
  assert.throws(() => validateChunkerParams({ min: 10, avg: 1000, max: 2000 }));
  assert.throws(() => validateChunkerParams({ min: 1024, avg: 4096, max: 64 * 1024 * 1024 }));
  assert.doesNotThrow(() => validateChunkerParams(DEFAULT_CHUNKER));
});

const GOLDEN_DIGEST = '162fffd9ee544018';
