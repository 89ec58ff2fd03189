// Deterministic pseudo-random generators for the benchmark datasets.
//
// - Rng: xoshiro128** (32-bit state words), seeded through splitmix32. Used for
//   every structural decision (sizes, names, content types, mutations).
// - randomStream(): AES-128-CTR keystream (key drawn from an Rng) for
//   incompressible file content. It is deterministic for a given key and runs
//   at memory speed, which a JS PRNG filling bytes one by one does not.
import { Buffer } from 'node:buffer';
import { createCipheriv } from 'node:crypto';

/** 32-bit FNV-1a of a string, used to derive independent sub-seeds from labels. */
export function fnv1a(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function splitmix32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  /** @param {number} seed  @param {string} [label] independent stream name */
  constructor(seed, label = '') {
    const sm = splitmix32((seed ^ fnv1a(label)) >>> 0);
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Child generator whose stream depends only on (this seed state, label). */
  fork(label) {
    return new Rng(this.next32() ^ fnv1a(label), label);
  }

  next32() {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1). */
  float() {
    return this.next32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo, hi) {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** Integer drawn log-uniformly in [lo, hi]. */
  logUniform(lo, hi) {
    const a = Math.log(Math.max(lo, 1));
    const b = Math.log(Math.max(hi, 1));
    return Math.min(hi, Math.max(lo, Math.round(Math.exp(a + this.float() * (b - a)))));
  }

  chance(p) {
    return this.float() < p;
  }

  pick(arr) {
    return arr[Math.floor(this.float() * arr.length)];
  }

  /** Pick a key of `weights` ({name: weight}) proportionally to its weight. */
  weighted(weights) {
    const entries = Object.entries(weights);
    let total = 0;
    for (const [, w] of entries) total += w;
    let x = this.float() * total;
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) return k;
    }
    return entries[entries.length - 1][0];
  }

  bytes(n) {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.next32();
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return b;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle(arr) {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

const ZEROS = Buffer.alloc(4 << 20);

/**
 * Deterministic incompressible byte stream keyed from `rng`.
 * Returns a function take(n) -> Buffer of n fresh bytes.
 */
export function randomStream(rng) {
  const cipher = createCipheriv('aes-128-ctr', rng.bytes(16), rng.bytes(16));
  return (n) => {
    if (n <= ZEROS.length) return cipher.update(ZEROS.subarray(0, n));
    const parts = [];
    for (let left = n; left > 0; left -= ZEROS.length) {
      parts.push(cipher.update(ZEROS.subarray(0, Math.min(left, ZEROS.length))));
    }
    return Buffer.concat(parts, n);
  };
}
