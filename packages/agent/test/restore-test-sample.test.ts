import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExactPaths, pickSample } from '../src/engine/restore-test.js';

const files = (n: number, size = 10) => Array.from({ length: n }, (_, i) => ({ name: `f${i}`, size }));
/** A deterministic generator (LCG), so that the tests are reproducible. */
function seeded(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}
const limits = { percent: 5, maxFiles: 1000, maxBytes: 1e12 };

test('pickSample: ceil(percent) of the files, at least one, never more than there are', () => {
  const cases: [n: number, percent: number, expected: number][] = [
    [0, 5, 0],
    [1, 5, 1],
    [19, 5, 1],
    [21, 5, 2],
    [200, 5, 10],
    [200, 100, 200],
    [3, 0.01, 1],
  ];
  for (const [n, percent, expected] of cases) assert.equal(pickSample(files(n), { ...limits, percent }, seeded(1)).length, expected, `${n} files at ${percent} %`);
});

test('pickSample: capped by the number of files and by the byte budget; the smallest when nothing fits', () => {
  assert.equal(pickSample(files(100_000), limits, seeded(2)).length, 1000);
  const mixed = [...files(50, 100), { name: 'huge', size: 10_000 }];
  const picked = pickSample(mixed, { percent: 100, maxFiles: 1000, maxBytes: 1000 }, seeded(3));
  assert.equal(picked.length, 10, 'ten 100-byte files fit in 1000 bytes');
  assert.ok(!picked.some((f) => f.name === 'huge'));
  const onlyHuge = [{ name: 'a', size: 5000 }, { name: 'b', size: 3000 }];
  assert.deepEqual(pickSample(onlyHuge, { percent: 100, maxFiles: 10, maxBytes: 1000 }, seeded(4)).map((f) => f.name), ['b']);
});

test('pickSample: distinct files, input untouched, every file can be drawn', () => {
  const input = files(40);
  const copy = JSON.stringify(input);
  const seen = new Set<string>();
  for (let seed = 0; seed < 400; seed++) {
    const s = pickSample(input, { ...limits, percent: 10 }, seeded(seed));
    assert.equal(new Set(s.map((f) => f.name)).size, s.length, 'no file twice');
    s.forEach((f) => seen.add(f.name));
  }
  assert.equal(JSON.stringify(input), copy);
  assert.equal(seen.size, 40);
});

test('ExactPaths selects exactly the sampled files and walks only into their directories', () => {
  const sel = new ExactPaths(['/srv/dossiers/2024/a.pdf', '/srv/b.txt']);
  assert.equal(sel.empty, false);
  assert.equal(sel.matches('/srv/b.txt'), true);
  assert.equal(sel.matches('/srv/dossiers/2024/a.pdf'), true);
  assert.equal(sel.matches('/srv/dossiers/2024'), false, 'a directory is not selected with everything below it');
  assert.equal(sel.matches('/srv/b.txt.bak'), false);
  assert.equal(sel.couldMatchBelow('/srv'), true);
  assert.equal(sel.couldMatchBelow('/srv/dossiers/2024'), true);
  assert.equal(sel.couldMatchBelow('/srv/autre'), false);
  assert.equal(sel.couldMatchBelow('/srv/dossiers/2024/a.pdf'), false);
});
