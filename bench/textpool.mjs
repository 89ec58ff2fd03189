// Precomputed pool of "text-like" content: prose, CSV rows and log lines made
// of words from a generated vocabulary with a Zipf distribution. Text files
// are then assembled from short slices of this pool, which is fast and keeps
// the compression ratio realistic (~3-4x with zstd/gzip) without giving
// chunk-level deduplication anything to find across files.
import { Buffer } from 'node:buffer';
import { Rng } from './prng.mjs';

const CONS = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z',
  'ch', 'st', 'tr', 'br', 'pl', 'gr', 'th', 'sh'];
const VOW = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'o', 'ai', 'ou', 'ei', 'y'];
const CODA = ['', '', '', 'n', 's', 'r', 'l', 't', 'm', 'x', 'nd', 'st'];

export function makeVocabulary(rng, n) {
  const seen = new Set();
  const words = [];
  while (words.length < n) {
    const rank = words.length;
    const syl = rank < 60 ? 1 : rank < 800 ? rng.int(1, 2) : rng.int(2, 4);
    let w = '';
    for (let s = 0; s < syl; s++) w += rng.pick(CONS) + rng.pick(VOW);
    w += rng.pick(CODA);
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

class Zipf {
  constructor(n, s) {
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += 1 / Math.pow(i + 1, s);
      this.cdf[i] = acc;
    }
    this.total = acc;
  }

  sample(rng) {
    const x = rng.float() * this.total;
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const STATUSES = ['ok', 'pending', 'done', 'cancelled', 'billed', 'open', 'closed'];
const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];

function pad(n, w) {
  return String(n).padStart(w, '0');
}

/**
 * Build a text pool of `size` bytes (deterministic for a given seed).
 * @returns {{pool: Buffer, vocab: string[]}}
 */
export function buildTextPool(seed, size = 16 << 20) {
  const rng = new Rng(seed, 'textpool');
  const vocab = makeVocabulary(rng.fork('vocab'), 6000);
  const zipf = new Zipf(vocab.length, 1.4);
  const word = () => vocab[zipf.sample(rng)];
  const names = vocab.slice(200, 1200);
  const services = vocab.slice(20, 40).map((w) => `${w}-svc`);
  const pieces = [];
  let len = 0;
  const push = (s) => {
    pieces.push(s);
    len += s.length;
  };
  while (len < size) {
    const style = rng.weighted({ prose: 6, csv: 2, log: 2 });
    const target = len + rng.int(4096, 65536);
    if (style === 'prose') {
      while (len < target) {
        const n = rng.int(6, 20);
        let sent = '';
        for (let i = 0; i < n; i++) {
          let w = word();
          if (i === 0) w = w[0].toUpperCase() + w.slice(1);
          sent += (i ? ' ' : '') + w;
          if (i < n - 1 && rng.chance(0.08)) sent += ',';
        }
        sent += rng.chance(0.9) ? '. ' : '? ';
        if (rng.chance(0.12)) sent += '\n\n';
        push(sent);
      }
    } else if (style === 'csv') {
      push('id,date,last_name,first_name,code,amount,status,note\n');
      let id = rng.int(1000, 90000);
      while (len < target) {
        id += rng.int(1, 3);
        const row = `${id},20${pad(rng.int(15, 24), 2)}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)},` +
          `${rng.pick(names)},${rng.pick(names)},${word().slice(0, 3).toUpperCase()}${rng.int(10, 99)},` +
          `${rng.int(10, 400)}.${pad(rng.int(0, 99), 2)},${rng.pick(STATUSES)},${word()} ${word()}\n`;
        push(row);
      }
    } else {
      let t = rng.int(0, 86399);
      const day = `2024-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}`;
      while (len < target) {
        t = (t + rng.int(0, 30)) % 86400;
        const ts = `${day}T${pad(Math.floor(t / 3600), 2)}:${pad(Math.floor(t / 60) % 60, 2)}:${pad(t % 60, 2)}Z`;
        let msg = '';
        const n = rng.int(3, 9);
        for (let i = 0; i < n; i++) msg += (i ? ' ' : '') + word();
        push(`${ts} ${rng.pick(LEVELS)} ${rng.pick(services)}: ${msg} id=${rng.int(1, 99999)}\n`);
      }
    }
  }
  const pool = Buffer.from(pieces.join(''), 'latin1').subarray(0, size);
  return { pool, vocab };
}

/**
 * Fill `out` (a Buffer) with text assembled from pool slices.
 * Small outputs (<= 16 KiB) are one contiguous slice, like a short document;
 * larger ones are concatenations of slices of 128..2048 bytes.
 */
export function fillText(rng, pool, out) {
  const n = out.length;
  if (n <= 16384) {
    const off = rng.int(0, pool.length - n);
    pool.copy(out, 0, off, off + n);
    return out;
  }
  let pos = 0;
  while (pos < n) {
    const l = Math.min(n - pos, rng.int(128, 2048));
    const off = rng.int(0, pool.length - l);
    pool.copy(out, pos, off, off + l);
    pos += l;
  }
  return out;
}
