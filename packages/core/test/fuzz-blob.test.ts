/** Property-based tests of the blob decoder (BlobCodec.decode): authentication, bounded decompression, the id check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { BLOB_OVERHEAD, BLOB_VERSION, BlobCodec, CoffreError, FLAG_ZSTD, chunkId, deriveSubkeys, newMasterKey, type ChunkId } from '../src/index.js';
import { fuzzParams, mutate, mutation } from './fuzz.js';

const keys = deriveSubkeys(newMasterKey());
const codec = new BlobCodec(keys.encryption);
const BLOB_ERRORS = new Set(['INTEGRITY', 'FORMAT', 'TOO_LARGE']);

const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  compressBound(n: number): number;
};
const cctx = new zstd.CCtx();
function zstdCompress(plain: Uint8Array, level = 3): Buffer {
  const dst = Buffer.alloc(zstd.compressBound(plain.length));
  return dst.subarray(0, cctx.compress(dst, plain, level));
}

/** A zstd frame of one raw block, declaring `declared` as its content size (null: unknown), hand-made so that it may lie. */
function rawFrame(content: Uint8Array, declared: bigint | null): Buffer {
  const magic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
  const block = Buffer.alloc(3);
  block.writeUIntLE((content.length << 3) | 1, 0, 3); // last block, raw
  if (declared === null) return Buffer.concat([magic, Buffer.from([0x00, 0x58]), block, content]); // no FCS, window descriptor 2^21
  const fcs = Buffer.alloc(8);
  fcs.writeBigUInt64LE(declared);
  return Buffer.concat([magic, Buffer.from([0xe0]), fcs, block, content]); // single segment, 8-byte FCS
}

/** A skippable frame (zstd ignores its content). */
function skippableFrame(content: Uint8Array): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a50, 0);
  h.writeUInt32LE(content.length, 4);
  return Buffer.concat([h, content]);
}

/** What a key holder could write: any payload, any flags, correctly encrypted and authenticated. */
function seal(id: ChunkId, flags: number, payload: Uint8Array, version = BLOB_VERSION): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', keys.encryption, nonce);
  c.setAAD(Buffer.concat([Buffer.from('coffre blob v1', 'utf8'), Buffer.from(id, 'hex'), Buffer.from([version, flags])]));
  return Buffer.concat([Buffer.from([version, flags]), nonce, c.update(payload), c.final(), c.getAuthTag()]);
}

function decodeOrError(id: ChunkId, blob: Uint8Array, maxPlain: number): Buffer | CoffreError {
  try {
    return codec.decode(id, blob, maxPlain, keys.chunkId);
  } catch (e) {
    if (!(e instanceof CoffreError) || !BLOB_ERRORS.has(e.code)) throw new Error(`unexpected error: ${String(e)}`, { cause: e });
    return e;
  }
}

/** Plaintexts: incompressible, and compressible (so that the zstd path is taken). */
const plaintext = fc.oneof(
  fc.uint8Array({ maxLength: 2000 }),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 500 })).map(([unit, n]) => Buffer.concat(Array.from({ length: n }, () => unit))),
);

test('round trip: decode(encode(x)) is x, at every level', () => {
  fc.assert(
    fc.property(plaintext, fc.integer({ min: 0, max: 9 }), (plain, level) => {
      const id = chunkId(keys.chunkId, plain);
      const blob = codec.encode(id, plain, { level });
      assert.ok(blob.length <= plain.length + BLOB_OVERHEAD);
      assert.deepEqual(codec.decode(id, blob, plain.length, keys.chunkId), Buffer.from(plain));
    }),
    fuzzParams(300),
  );
});

test('any change to a blob, or decoding it under another id, is detected: INTEGRITY or FORMAT, never garbage', () => {
  fc.assert(
    fc.property(plaintext, mutation, fc.boolean(), (plain, m, otherId) => {
      const id = chunkId(keys.chunkId, plain);
      const blob = codec.encode(id, plain);
      const { out, changed } = mutate(blob, m);
      const as = otherId ? chunkId(keys.chunkId, Buffer.concat([plain, Buffer.from([0])])) : id;
      const r = decodeOrError(as, out, 1 << 20);
      if (changed || otherId) assert.ok(r instanceof CoffreError, `${m.kind} not detected`);
      else assert.deepEqual(r, Buffer.from(plain));
    }),
    fuzzParams(500),
  );
});

test('arbitrary bytes: only INTEGRITY, FORMAT or TOO_LARGE', () => {
  const header = fc.tuple(fc.constantFrom(0, 1, 2, 255), fc.constantFrom(0, 1, 2, 3, 128));
  fc.assert(
    fc.property(header, fc.uint8Array({ maxLength: 200 }), ([v, f], rest) => {
      const id = chunkId(keys.chunkId, rest);
      assert.ok(decodeOrError(id, Buffer.concat([Buffer.from([v, f]), rest]), 1 << 20) instanceof CoffreError);
      assert.ok(decodeOrError(id, rest, 1 << 20) instanceof CoffreError);
    }),
    fuzzParams(1000),
  );
});

test('bounded decompression: a payload from a key holder never expands beyond maxPlain', () => {
  // Real frames, hand-made frames that lie about their size or omit it, skippable frames,
  // concatenations and truncations, sealed correctly so that they reach the decompressor.
  const frame = fc.oneof(
    plaintext.map((p) => zstdCompress(p)),
    fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))).map(([c, d]) => rawFrame(c, d)),
    fc.uint8Array({ maxLength: 300 }).map((c) => rawFrame(c, BigInt(c.length))),
    fc.uint8Array({ maxLength: 64 }).map(skippableFrame),
  );
  const payload = fc.tuple(fc.array(frame, { minLength: 1, maxLength: 70 }), fc.option(fc.nat())).map(([frames, cut]) => {
    const all = Buffer.concat(frames);
    return cut === null ? all : all.subarray(0, cut % (all.length + 1));
  });
  fc.assert(
    fc.property(payload, fc.integer({ min: 0, max: 70_000 }), (p, maxPlain) => {
      // Half the time the id is the one of the honest decompression, so that success is reachable.
      const id = chunkId(keys.chunkId, p);
      const r = decodeOrError(id, seal(id, FLAG_ZSTD, p), maxPlain);
      if (!(r instanceof CoffreError)) assert.ok(r.length <= maxPlain, `${r.length} > ${maxPlain}`);
    }),
    fuzzParams(1000),
  );
});

test('bounded decompression: a frame declaring 2^40 bytes (or more) is refused before any allocation', () => {
  // 2^64-1 and 2^64-2 are zstd's "unknown" and "error" sentinels: refused as not a valid payload.
  for (const [declared, code] of [[1n << 40n, 'TOO_LARGE'], [BigInt(Number.MAX_SAFE_INTEGER) + 2n, 'TOO_LARGE'], [(1n << 64n) - 3n, 'TOO_LARGE'], [(1n << 64n) - 2n, 'INTEGRITY'], [(1n << 64n) - 1n, 'INTEGRITY']] as const) {
    const p = rawFrame(Buffer.from('x'), declared);
    const id = chunkId(keys.chunkId, Buffer.from('x'));
    const r = decodeOrError(id, seal(id, FLAG_ZSTD, p), 16 * 1024 * 1024);
    assert.ok(r instanceof CoffreError && r.code === code, `declared ${declared}: ${String(r)}`);
  }
});

test('an uncompressed payload of a key holder over maxPlain is TOO_LARGE; unknown flags and versions are FORMAT', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 0, max: 700 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (p, maxPlain, flags, version) => {
      const id = chunkId(keys.chunkId, p);
      const plainR = decodeOrError(id, seal(id, 0, p), maxPlain);
      if (p.length > maxPlain) assert.ok(plainR instanceof CoffreError && plainR.code === 'TOO_LARGE');
      else assert.deepEqual(plainR, Buffer.from(p));
      const odd = decodeOrError(id, seal(id, flags, p, version), 1 << 20);
      if (version !== BLOB_VERSION || (flags & ~FLAG_ZSTD) !== 0) assert.ok(odd instanceof CoffreError && odd.code === 'FORMAT');
    }),
    fuzzParams(500),
  );
});
