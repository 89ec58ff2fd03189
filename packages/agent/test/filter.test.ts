import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PathFilter } from '../src/engine/filter.js';

const cases: [pattern: string, path: string, expected: boolean][] = [
  ['*.tmp', '/srv/a/b.tmp', true],
  ['*.tmp', '/srv/a/b.tmpx', false],
  ['*.tmp', '/srv/x.tmp/inside.txt', true], // a matched directory covers its contents
  ['docs/2024', '/srv/docs/2024', true],
  ['docs/2024', '/srv/docs/2024/report.pdf', true],
  ['docs/2024', '/srv/mydocs/2024', false],
  ['/srv/docs', '/srv/docs/a', true],
  ['/srv/docs', '/other/srv/docs/a', false],
  ['/srv/**/cache', '/srv/a/b/c/cache/x', true],
  ['/srv/**/cache', '/srv/cache', true],
  ['/srv/**/cache', '/var/cache', false],
  ['file?.txt', '/a/file1.txt', true],
  ['file?.txt', '/a/file10.txt', false],
  ['[abc]*.log', '/x/b-1.log', true],
  ['[!abc]*.log', '/x/b-1.log', false],
  ['*', '/anything', true],
  ['name with space.txt', '/d/name with space.txt', true],
  ['quote\'s.txt', '/d/quote\'s.txt', true],
  ['a.b', '/d/aXb', false], // dots are literal
];

for (const [pattern, path, expected] of cases) {
  test(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${path}`, () => {
    assert.equal(new PathFilter([pattern]).matches(path), expected);
  });
}

test('no pattern: empty filter matches nothing', () => {
  const f = new PathFilter([]);
  assert.equal(f.empty, true);
  assert.equal(f.matches('/a'), false);
});

test('couldMatchBelow keeps walking only towards anchored matches', () => {
  const f = new PathFilter(['/srv/docs/2024']);
  assert.equal(f.couldMatchBelow('/srv'), true);
  assert.equal(f.couldMatchBelow('/srv/docs'), true);
  assert.equal(f.couldMatchBelow('/var'), false);
  assert.equal(new PathFilter(['*.txt']).couldMatchBelow('/var'), true);
});
