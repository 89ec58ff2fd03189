/** Property-based tests of the include/exclude patterns (PathFilter): any string must be a usable pattern, and matching must be sound for selective restore. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PathFilter } from '../src/engine/filter.js';

const runs = Number(process.env.COFFRE_FUZZ_RUNS ?? '');
const seedEnv = process.env.COFFRE_FUZZ_SEED;
/** Bounded by default; COFFRE_FUZZ_RUNS / COFFRE_FUZZ_SEED (an integer or "random") for longer campaigns (docs/SECURITY.md). */
function fuzzParams<T>(defaultRuns: number): fc.Parameters<T> {
  const seed = seedEnv === 'random' ? undefined : seedEnv ? Number(seedEnv) : 0x0c0ffee;
  return { numRuns: Number.isInteger(runs) && runs > 0 ? runs : defaultRuns, ...(seed !== undefined ? { seed } : {}), includeErrorInReport: true };
}

/** Pattern-ish text: glob metacharacters, regular-expression metacharacters, separators and some unicode, short components (matching is backtracking). */
const globChar = fc.constantFrom('*', '?', '[', ']', '!', '^', '-', '\\', '.', '(', ')', '+', '$', '{', '}', '|', '/', 'a', 'b', 'z', '0', 'é', '\u200f', '\u0000', '\ud800', '😀', ' ');
const component = fc.oneof(fc.string({ unit: globChar, maxLength: 8 }), fc.string({ maxLength: 8 }), fc.constantFrom('**', '*', '[z-a]', '[]', '[!]', '[\\]', '[a-', '[[:alpha:]]'));
const pattern = fc.tuple(fc.boolean(), fc.array(component, { maxLength: 4 })).map(([anchored, parts]) => (anchored ? '/' : '') + parts.join('/'));
const nameArb = fc.oneof(fc.string({ unit: globChar, minLength: 1, maxLength: 8 }), fc.string({ minLength: 1, maxLength: 8 })).filter((s) => !s.includes('/'));
const pathArb = fc.array(nameArb, { maxLength: 5 }).map((c) => '/' + c.join('/'));

test('any list of strings is a usable filter: no throw, and matching is deterministic', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(pattern, fc.string({ maxLength: 20 })), { maxLength: 4 }), pathArb, (patterns, path) => {
      const f = new PathFilter(patterns);
      const m = f.matches(path);
      const below = f.couldMatchBelow(path);
      assert.equal(f.matches(path), m);
      assert.equal(new PathFilter(patterns).matches(path), m);
      assert.equal(f.couldMatchBelow(path), below);
      assert.equal(f.empty, patterns.length === 0);
    }),
    fuzzParams(3000),
  );
});

test('a matched path covers everything below it', () => {
  fc.assert(
    fc.property(fc.array(pattern, { minLength: 1, maxLength: 3 }), pathArb, nameArb, (patterns, path, child) => {
      const f = new PathFilter(patterns);
      if (f.matches(path)) assert.ok(f.matches(`${path === '/' ? '' : path}/${child}`));
    }),
    fuzzParams(2000),
  );
});

test('selective restore is sound: if a child matches, its directory matches or may hold matches', () => {
  fc.assert(
    fc.property(fc.array(pattern, { minLength: 1, maxLength: 3 }), pathArb, nameArb, (patterns, dir, child) => {
      const f = new PathFilter(patterns);
      if (f.matches(`${dir === '/' ? '' : dir}/${child}`)) assert.ok(f.matches(dir) || f.couldMatchBelow(dir), `${dir} would be skipped`);
    }),
    fuzzParams(2000),
  );
});

test('a name without glob characters is a literal: regular-expression characters are not special', () => {
  const literal = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[/*?[]/.test(s));
  fc.assert(
    fc.property(literal, nameArb, fc.array(nameArb, { maxLength: 3 }), (name, other, parents) => {
      const f = new PathFilter([name]);
      const dir = parents.length ? '/' + parents.join('/') : '';
      assert.ok(f.matches(`${dir}/${name}`));
      if (!parents.some((c) => /[*?[]/.test(c))) assert.ok(new PathFilter([`/${parents.join('/')}/${name}`]).matches(`${dir}/${name}/x`));
      if (other !== name && !parents.includes(name)) assert.ok(!f.matches(`${dir}/${other}`), `${JSON.stringify(name)} matched ${JSON.stringify(other)}`);
    }),
    fuzzParams(2000),
  );
});

test('`*` stays within one component, `**` spans any number', () => {
  fc.assert(
    fc.property(nameArb, fc.array(nameArb, { minLength: 1, maxLength: 4 }), (leaf, middle) => {
      fc.pre(!/[*?[\]]/.test(leaf) && !middle.some((m) => /[*?[\]]/.test(m)));
      assert.ok(new PathFilter([`/r/**/${leaf}`]).matches(`/r/${middle.join('/')}/${leaf}`));
      assert.equal(new PathFilter([`/r/*/${leaf}`]).matches(`/r/${middle.join('/')}/${leaf}`), middle.length === 1 || middle[1] === leaf);
    }),
    fuzzParams(1000),
  );
});
