import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { isCoffreError, PackBuilder, type ErrorCode } from '@coffre/core';
import { pow2Batches, QueryTemplates, withParameters } from '../src/db/batch.js';
import { PackStreamVerifier } from '../src/routes/packs/stream-verifier.js';

function pack(blobSizes: readonly number[]): { id: string; data: Buffer } {
  const b = new PackBuilder();
  for (const n of blobSizes) b.add(randomBytes(32).toString('hex') as never, randomBytes(n));
  const { id, data } = b.finish();
  return { id, data };
}

/** Feeds `data` in pieces of the given sizes (cycled); returns what the verifier hands out to store. */
function feed(v: PackStreamVerifier, data: Buffer, sizes: readonly number[]): Buffer {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off);
    out.push(...v.push(data.subarray(off, off + n)));
    off += n;
  }
  return Buffer.concat(out);
}

function throwsCode(fn: () => unknown, code: ErrorCode, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => isCoffreError(err, code) && (re === undefined || re.test(err.message)));
}

describe('PackStreamVerifier', () => {
  const p = pack([1, 300, 5000, 70_000, 2, 4096]);

  for (const sizes of [[1], [7, 13], [12], [92], [100_000], [3, 4096, 1, 65_536]]) {
    it(`accepts a valid pack fed in pieces of ${sizes.join('/')} and passes every byte through once`, () => {
      for (const declared of [undefined, p.data.length]) {
        const v = new PackStreamVerifier(p.id, declared);
        assert.ok(feed(v, p.data, sizes).equals(p.data));
        assert.equal(v.end().length, 6);
        assert.equal(v.size, p.data.length);
      }
    });
  }

  it('hands out nothing until the header is complete, then the header itself', () => {
    const v = new PackStreamVerifier(p.id);
    const headerSize = 12 + 6 * 80;
    assert.deepEqual(v.push(p.data.subarray(0, headerSize - 1)), []);
    const early = v.entries;
    assert.equal(early, null);
    const out = v.push(p.data.subarray(headerSize - 1, headerSize + 10));
    assert.ok(Buffer.concat(out).equals(p.data.subarray(0, headerSize + 10)));
    assert.equal(v.entries?.length, 6);
  });

  it('refuses a wrong id as soon as the header is in, before any blob byte', () => {
    const v = new PackStreamVerifier(randomBytes(32).toString('hex'));
    throwsCode(() => v.push(p.data.subarray(0, 12 + 6 * 80)), 'INTEGRITY', /pack id/);
  });

  it('refuses a corrupted blob when that blob ends, naming it', () => {
    const small = pack([100, 200, 300]);
    const bad = Buffer.from(small.data);
    const second = 12 + 3 * 80 + 100;
    bad[second + 5]! ^= 1;
    const v = new PackStreamVerifier(small.id);
    assert.equal(v.push(bad.subarray(0, second + 199)).length, 2, 'the first blob and most of the second pass');
    throwsCode(() => v.push(bad.subarray(second + 199)), 'INTEGRITY', /blob [0-9a-f]{12} /);
  });

  it('refuses trailing bytes, missing bytes and a Content-Length that disagrees with the header', () => {
    const more = new PackStreamVerifier(p.id);
    throwsCode(() => feed(more, Buffer.concat([p.data, Buffer.from([0])]), [4096]), 'FORMAT', /longer/);
    const less = new PackStreamVerifier(p.id);
    feed(less, p.data.subarray(0, p.data.length - 1), [4096]);
    throwsCode(() => less.end(), 'FORMAT', /does not match/);
    throwsCode(() => new PackStreamVerifier(p.id, p.data.length + 1).push(p.data), 'FORMAT');
    throwsCode(() => new PackStreamVerifier(p.id, 100).push(p.data.subarray(0, 12)), 'FORMAT', /too short/);
  });

  it('refuses non-packs and truncated headers', () => {
    throwsCode(() => new PackStreamVerifier(p.id).push(randomBytes(50)), 'FORMAT');
    throwsCode(() => new PackStreamVerifier(p.id).end(), 'FORMAT', /too short/);
    const v = new PackStreamVerifier(p.id);
    v.push(p.data.subarray(0, 100));
    throwsCode(() => v.end(), 'FORMAT', /header truncated/);
    const reserved = Buffer.from(p.data);
    reserved[6] = 1;
    throwsCode(() => new PackStreamVerifier(p.id).push(reserved), 'FORMAT');
  });

  it('refuses a header whose blobs add up to more than 256 MiB', () => {
    const header = Buffer.from(p.data.subarray(0, 12 + 80));
    header.writeUInt32BE(1, 8);
    header.writeBigUInt64BE(92n, 44);
    header.writeUInt32BE(0xffffffff, 52);
    throwsCode(() => new PackStreamVerifier(p.id).push(header), 'TOO_LARGE');
  });
});

describe('pow2Batches', () => {
  it('yields full batches, then the rest by powers of two, in order', () => {
    const items = Array.from({ length: 1300 }, (_, i) => i);
    const sizes = [...pow2Batches(items, 512)].map((b) => b.length);
    assert.deepEqual(sizes, [512, 512, 256, 16, 4]);
    assert.deepEqual([...pow2Batches(items, 512)].flat(), items);
    assert.deepEqual([...pow2Batches([], 8)], []);
    assert.deepEqual([...pow2Batches([1, 2, 3], 8)].map((b) => b.length), [2, 1]);
    assert.throws(() => [...pow2Batches(items, 100)], RangeError);
  });
});

describe('QueryTemplates', () => {
  const fake = (parameters: unknown[]) => ({ query: {} as never, queryId: {} as never, sql: 'select ?', parameters });
  it('compiles a shape once per database and re-runs it with other parameters', () => {
    const t = new QueryTemplates();
    const db = {};
    let builds = 0;
    const get = () => t.get(db, 's', () => (builds++, { compiled: fake(['a']), expected: ['a'] }));
    assert.equal(get(), get());
    assert.equal(builds, 1);
    t.get({}, 's', () => (builds++, { compiled: fake(['a']), expected: ['a'] }));
    assert.equal(builds, 2);
    assert.deepEqual(withParameters(get(), ['b']).parameters, ['b']);
    assert.throws(() => withParameters(get(), ['b', 'c']));
  });
  it('fails loudly when the compiled parameters are not in the expected order', () => {
    assert.throws(() => new QueryTemplates().get({}, 's', () => ({ compiled: fake(['b', 'a']), expected: ['a', 'b'] })), /unexpected order/);
  });
});
