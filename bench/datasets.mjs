// Deterministic dataset generation and mutation for the coffre benchmark.
//
// Same seed + same scale => same directory tree and same file bytes on every
// run (a SHA-256 digest of the generated content is returned to prove it).
//
// CLI:  node bench/datasets.mjs mixed|small|mutate DIR [--scale S] [--seed N]
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import console from 'node:console';
import { Rng, randomStream } from './prng.mjs';
import { buildTextPool, fillText } from './textpool.mjs';
import { performance } from 'node:perf_hooks';

export const GENERATOR_VERSION = 1;
export const DEFAULT_SEED = 0xc0ffee;

const KiB = 1024;
const MiB = 1024 * 1024;
const BLOCK = 4 * MiB;

const EXT = {
  text: ['txt', 'md', 'csv', 'log', 'json', 'xml', 'html', 'rtf'],
  semi: ['pdf', 'docx', 'xlsx', 'odt', 'db', 'doc', 'pptx'],
  random: ['jpg', 'png', 'zip', 'gz', 'mp4', 'dcm', 'heic'],
};
const TEXT_EXT = new Set(EXT.text);
const TOP_DIRS = ['Documents', 'Patients', 'Imaging', 'Billing', 'Archive', 'Correspondence', 'Scans', 'Admin',
  'Comptabilité', 'Modèles'];
const ACCENTED = ['résumé', 'dossier médical', 'ordonnance', 'reçu', 'échographie', 'télétransmission', 'année'];

/**
 * File-size tiers of the "mixed" dataset at BENCH_SCALE=1 (counts of original
 * files; duplicates come on top). Sizes are log-uniform inside each tier.
 * Expected total ~1 GiB in ~20,000 files.
 */
function mixedTiers(scale) {
  const hugeMax = Math.max(4 * MiB, Math.round(50 * MiB * Math.min(1, scale)));
  const hugeMin = Math.min(4 * MiB, Math.floor(hugeMax / 2));
  const n = (c, min = 1) => Math.max(min, Math.round(c * scale));
  return [
    { tier: 'small', count: n(15354), min: 32, max: 16 * KiB, types: { text: 70, semi: 20, random: 10 } },
    { tier: 'medium', count: n(3800), min: 16 * KiB, max: 128 * KiB, types: { text: 45, semi: 30, random: 25 } },
    { tier: 'large', count: n(330), min: 128 * KiB, max: 4 * MiB, types: { text: 30, semi: 35, random: 35 } },
    { tier: 'huge', count: n(16), min: hugeMin, max: hugeMax, types: { text: 25, semi: 35, random: 40 } },
  ];
}

let poolCache = null;
function textPool(seed) {
  if (!poolCache || poolCache.seed !== seed) poolCache = { seed, ...buildTextPool(seed) };
  return poolCache;
}

// ---------------------------------------------------------------- content

class ContentWriter {
  constructor(seed) {
    this.seed = seed;
    this.pool = textPool(seed).pool;
    this.block = Buffer.allocUnsafe(BLOCK);
  }

  /** Write `size` bytes of content `type` to `file`; feeds `hash` if given. */
  write(file, size, type, rng, hash, mode = 0o644) {
    const fd = fs.openSync(file, 'w', mode);
    try {
      this.writeToFd(fd, size, type, rng, hash);
    } finally {
      fs.closeSync(fd);
    }
  }

  writeToFd(fd, size, type, rng, hash) {
    const take = type === 'text' ? null : randomStream(rng);
    const pRandom = 0.3 + rng.float() * 0.3; // semi-compressible: 30-60 % random bytes
    for (let left = size; left > 0;) {
      const n = Math.min(left, BLOCK);
      let buf;
      if (type === 'random') {
        buf = take(n);
      } else if (type === 'text') {
        buf = fillText(rng, this.pool, this.block.subarray(0, n));
      } else {
        buf = this.block.subarray(0, n);
        for (let pos = 0; pos < n;) {
          const l = Math.min(n - pos, rng.int(256, 4096));
          if (rng.chance(pRandom)) {
            take(l).copy(buf, pos);
          } else {
            const off = rng.int(0, this.pool.length - l);
            this.pool.copy(buf, pos, off, off + l);
          }
          pos += l;
        }
      }
      if (hash) hash.update(buf);
      let off = 0;
      while (off < n) off += fs.writeSync(fd, buf, off, n - off);
      left -= n;
    }
  }
}

// ---------------------------------------------------------------- names and trees

function makeNamer(rng, vocab) {
  const common = vocab.slice(0, 1500);
  return {
    dir(depth) {
      const k = rng.weighted({ word: 5, pair: 3, year: depth > 0 ? 2 : 0, month: depth > 1 ? 2 : 0, spaced: 1,
        accented: 0.4 });
      const w = () => rng.pick(common);
      switch (k) {
        case 'year': return String(rng.int(2012, 2025));
        case 'month': return `${rng.int(2015, 2025)}-${String(rng.int(1, 12)).padStart(2, '0')}`;
        case 'pair': return `${w()}_${w()}`;
        case 'spaced': return `${cap(w())} ${w()}`;
        case 'accented': return `${rng.pick(ACCENTED)} ${rng.int(1, 99)}`;
        default: return w();
      }
    },
    file(idx, ext) {
      const sep = rng.pick(['-', '_', ' ', '-']);
      const base = rng.chance(0.01) ? rng.pick(ACCENTED) : `${rng.pick(common)}${sep}${rng.pick(common)}`;
      return `${base}${sep}${idx.toString(36)}.${ext}`;
    },
  };
}

function cap(s) {
  return s[0].toUpperCase() + s.slice(1);
}

/** Random nested tree of `count` directories (relative paths), depth <= maxDepth. */
function makeTree(rng, namer, count, maxDepth, topNames) {
  const dirs = [];
  const children = new Map();
  const add = (parentIdx, name) => {
    const parent = parentIdx < 0 ? '' : dirs[parentIdx].rel;
    const key = parent;
    if (!children.has(key)) children.set(key, new Set());
    const used = children.get(key);
    let n = name;
    for (let k = 2; used.has(n.toLowerCase()); k++) n = `${name} ${k}`;
    used.add(n.toLowerCase());
    const depth = parentIdx < 0 ? 1 : dirs[parentIdx].depth + 1;
    dirs.push({ rel: parent ? `${parent}/${n}` : n, depth });
  };
  for (const t of topNames.slice(0, Math.min(topNames.length, count))) add(-1, t);
  while (dirs.length < count) {
    let p;
    do p = rng.int(0, dirs.length - 1); while (dirs[p].depth >= maxDepth);
    add(p, namer.dir(dirs[p].depth));
  }
  return dirs;
}

function rmrf(dir) {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

// ---------------------------------------------------------------- mixed dataset

/**
 * Generate the "mixed" dataset into `root` (emptied first).
 * @returns {object} statistics, including a content digest.
 */
export function generateMixed(root, { scale = 1, seed = DEFAULT_SEED } = {}) {
  const t0 = performance.now();
  const rng = new Rng(seed, 'mixed');
  const { vocab } = textPool(seed);
  const namer = makeNamer(rng.fork('names'), vocab);
  const writer = new ContentWriter(seed);
  const tiers = mixedTiers(scale);
  const nOriginal = tiers.reduce((a, t) => a + t.count, 0);
  const nDirs = Math.max(TOP_DIRS.length, Math.round(nOriginal / 12));
  const dirs = makeTree(rng.fork('tree'), namer, nDirs, 7, TOP_DIRS);

  // Plan every original file first, then shuffle so tiers are spread around.
  const plan = [];
  for (const t of tiers) {
    for (let i = 0; i < t.count; i++) {
      const type = rng.weighted(t.types);
      let size = rng.logUniform(t.min, t.max);
      if (t.tier === 'small' && rng.chance(0.005)) size = 0; // a few empty files
      plan.push({ tier: t.tier, type, size });
    }
  }
  rng.shuffle(plan);
  plan.forEach((f, i) => {
    f.idx = i;
    const d = dirs[rng.int(0, dirs.length - 1)];
    f.rel = `${d.rel}/${namer.file(i, rng.pick(EXT[f.type]))}`;
    f.mode = rng.chance(0.01) ? 0o600 : 0o644;
  });

  // Duplicates: ~2 % exact copies (sources from every tier but "huge"), one
  // copy of a huge file, ~0.5 % near-duplicates (copy + 64 bytes changed).
  const dups = [];
  const nonHuge = plan.filter((f) => f.tier !== 'huge' && f.size > 0);
  const biggish = plan.filter((f) => f.tier === 'medium' || f.tier === 'large');
  const nExact = Math.max(1, Math.round(nOriginal * 0.02));
  const nNear = Math.max(1, Math.round(nOriginal * 0.005));
  let next = plan.length;
  const dupAt = (src, near) => {
    const d = dirs[rng.int(0, dirs.length - 1)];
    const ext = src.rel.slice(src.rel.lastIndexOf('.') + 1);
    const name = near ? `${namer.file(next, ext).replace(/\.[^.]+$/, '')} (v2).${ext}` : namer.file(next, ext);
    dups.push({ idx: next++, src, rel: `${d.rel}/${name}`, near, size: src.size, type: src.type });
  };
  for (let i = 0; i < nExact; i++) dupAt(rng.pick(nonHuge), false);
  const huge = plan.filter((f) => f.tier === 'huge');
  if (huge.length) dupAt(rng.pick(huge), false);
  if (biggish.length) for (let i = 0; i < nNear; i++) dupAt(rng.pick(biggish), true);

  // Write.
  rmrf(root);
  fs.mkdirSync(root, { recursive: true });
  for (const d of dirs) fs.mkdirSync(path.join(root, d.rel), { recursive: true });
  const hash = createHash('sha256');
  const stats = {
    dataset: 'mixed', generator_version: GENERATOR_VERSION, seed, scale, files: 0, dirs: dirs.length, bytes: 0,
    bytes_by_type: { text: 0, semi: 0, random: 0 }, files_by_tier: {}, exact_duplicates: 0, near_duplicates: 0,
    duplicate_bytes: 0, empty_files: 0, largest_file: 0,
  };
  for (const f of plan) {
    hash.update(`${f.rel}\0${f.size}\0${f.mode}\0`);
    writer.write(path.join(root, f.rel), f.size, f.type, new Rng(seed, `mixed-file:${f.idx}`), hash, f.mode);
    stats.files++;
    stats.bytes += f.size;
    stats.bytes_by_type[f.type] += f.size;
    stats.files_by_tier[f.tier] = (stats.files_by_tier[f.tier] || 0) + 1;
    if (f.size === 0) stats.empty_files++;
    stats.largest_file = Math.max(stats.largest_file, f.size);
  }
  for (const d of dups) {
    const dst = path.join(root, d.rel);
    fs.copyFileSync(path.join(root, d.src.rel), dst);
    hash.update(`${d.rel}\0dup:${d.src.rel}\0`);
    if (d.near) {
      const r = new Rng(seed, `near:${d.idx}`);
      const patch = r.bytes(64);
      const off = r.int(0, Math.max(0, d.size - 64));
      const fd = fs.openSync(dst, 'r+');
      fs.writeSync(fd, patch, 0, Math.min(64, d.size), off);
      fs.closeSync(fd);
      hash.update(patch);
      stats.near_duplicates++;
    } else {
      stats.exact_duplicates++;
    }
    stats.files++;
    stats.bytes += d.size;
    stats.duplicate_bytes += d.size;
    stats.bytes_by_type[d.type] += d.size;
  }
  stats.digest = hash.digest('hex');
  stats.gen_ms = Math.round(performance.now() - t0);
  return stats;
}

// ---------------------------------------------------------------- small-files dataset

export function generateSmall(root, { scale = 1, seed = DEFAULT_SEED } = {}) {
  const t0 = performance.now();
  const rng = new Rng(seed, 'small');
  const { vocab } = textPool(seed);
  const namer = makeNamer(rng.fork('names'), vocab);
  const writer = new ContentWriter(seed);
  const nFiles = Math.max(10, Math.round(100000 * scale));
  const dirs = makeTree(rng.fork('tree'), namer, Math.max(4, Math.round(nFiles / 100)), 5,
    ['Patients', 'Courriers', 'Scans', 'Notes']);
  rmrf(root);
  fs.mkdirSync(root, { recursive: true });
  for (const d of dirs) fs.mkdirSync(path.join(root, d.rel), { recursive: true });
  const hash = createHash('sha256');
  const stats = {
    dataset: 'small', generator_version: GENERATOR_VERSION, seed, scale, files: 0, dirs: dirs.length, bytes: 0,
    bytes_by_type: { text: 0, semi: 0, random: 0 },
  };
  for (let i = 0; i < nFiles; i++) {
    const type = rng.weighted({ text: 70, semi: 20, random: 10 });
    const size = rng.logUniform(512, 8 * KiB);
    const d = dirs[rng.int(0, dirs.length - 1)];
    const rel = `${d.rel}/${namer.file(i, rng.pick(EXT[type]))}`;
    hash.update(`${rel}\0${size}\0`);
    writer.write(path.join(root, rel), size, type, new Rng(seed, `small-file:${i}`), hash);
    stats.files++;
    stats.bytes += size;
    stats.bytes_by_type[type] += size;
  }
  stats.digest = hash.digest('hex');
  stats.gen_ms = Math.round(performance.now() - t0);
  return stats;
}

// ---------------------------------------------------------------- mutation

/** Sorted list of regular files (relative paths) under root. */
export function listFiles(root) {
  const out = [];
  const walk = (rel) => {
    const ents = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of ents) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk('');
  return out;
}

/**
 * Mutate a generated dataset in place, deterministically: ~5 % of the files
 * are touched (append 35 %, overwrite a region 30 %, mtime-only touch 15 %,
 * truncate 10 %, delete 10 %) and ~0.5 % new files are added (one new dir).
 */
export function mutate(root, { seed = DEFAULT_SEED } = {}) {
  const t0 = performance.now();
  const rng = new Rng(seed, 'mutate');
  const writer = new ContentWriter(seed);
  const { vocab } = textPool(seed);
  const files = listFiles(root);
  const nTouch = Math.max(5, Math.round(files.length * 0.05));
  // Partial Fisher-Yates: first nTouch entries are the chosen files.
  const idx = files.map((_, i) => i);
  for (let i = 0; i < Math.min(nTouch, idx.length); i++) {
    const j = rng.int(i, idx.length - 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const chosen = idx.slice(0, nTouch).map((i) => files[i]);
  const quota = { append: 0.35, overwrite: 0.30, touch: 0.15, truncate: 0.10, delete: 0.10 };
  const ops = [];
  for (const [op, q] of Object.entries(quota)) if (op !== 'append') for (let k = 0; k < Math.floor(nTouch * q); k++) ops.push(op);
  while (ops.length < nTouch) ops.push('append');
  rng.shuffle(ops);
  const stats = {
    files_before: files.length, touched: nTouch, ops: { append: 0, overwrite: 0, touch: 0, truncate: 0, delete: 0 },
    appended_bytes: 0, overwritten_bytes: 0, truncated_bytes: 0, deleted_bytes: 0, new_files: 0, new_bytes: 0,
  };
  const textish = (rel) => TEXT_EXT.has(rel.slice(rel.lastIndexOf('.') + 1));
  for (let i = 0; i < nTouch; i++) {
    const rel = chosen[i];
    const file = path.join(root, rel);
    const st = fs.statSync(file);
    let op = ops[i];
    if (st.size === 0 && (op === 'overwrite' || op === 'truncate')) op = 'append';
    const frng = new Rng(seed, `mutate-file:${rel}`);
    stats.ops[op]++;
    if (op === 'append') {
      const n = frng.logUniform(64, 64 * KiB);
      const fd = fs.openSync(file, 'a');
      writer.writeToFd(fd, n, textish(rel) ? 'text' : 'random', frng, null);
      fs.closeSync(fd);
      stats.appended_bytes += n;
    } else if (op === 'overwrite') {
      const n = frng.logUniform(16, Math.min(64 * KiB, st.size));
      const off = frng.int(0, st.size - n);
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, randomStream(frng)(n), 0, n, off);
      fs.closeSync(fd);
      stats.overwritten_bytes += n;
    } else if (op === 'truncate') {
      const n = Math.floor(st.size * (0.2 + 0.7 * frng.float()));
      fs.truncateSync(file, n);
      stats.truncated_bytes += st.size - n;
    } else if (op === 'delete') {
      fs.unlinkSync(file);
      stats.deleted_bytes += st.size;
    } else {
      const t = new Date(st.mtimeMs + 3600 * 1000);
      fs.utimesSync(file, t, t);
    }
  }
  // New files, in existing directories plus one new directory.
  const dirs = [...new Set(files.map((f) => f.slice(0, f.lastIndexOf('/'))).filter(Boolean))].sort();
  const namer = makeNamer(rng.fork('names'), vocab);
  const newDir = `${dirs[rng.int(0, dirs.length - 1)]}/nouveau ${namer.dir(2)}`;
  fs.mkdirSync(path.join(root, newDir), { recursive: true });
  const nNew = Math.max(2, Math.round(files.length * 0.005));
  for (let i = 0; i < nNew; i++) {
    const tier = rng.weighted({ small: 80, medium: 18, large: 2 });
    const size = tier === 'small' ? rng.logUniform(32, 16 * KiB)
      : tier === 'medium' ? rng.logUniform(16 * KiB, 128 * KiB) : rng.logUniform(128 * KiB, 4 * MiB);
    const type = rng.weighted({ text: 50, semi: 30, random: 20 });
    const dir = i % 5 === 0 ? newDir : dirs[rng.int(0, dirs.length - 1)];
    const rel = `${dir}/${namer.file(1e6 + i, rng.pick(EXT[type]))}`;
    writer.write(path.join(root, rel), size, type, new Rng(seed, `new-file:${i}`), null);
    stats.new_files++;
    stats.new_bytes += size;
  }
  stats.files_after = files.length - stats.ops.delete + stats.new_files;
  stats.mutate_ms = Math.round(performance.now() - t0);
  return stats;
}

// ---------------------------------------------------------------- CLI

function main(argv) {
  const [what, dir, ...rest] = argv;
  let scale = Number(process.env.BENCH_SCALE || 1);
  let seed = DEFAULT_SEED;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--scale') scale = Number(rest[++i]);
    else if (rest[i] === '--seed') seed = Number(rest[++i]);
  }
  if (!dir || !['mixed', 'small', 'mutate'].includes(what) || !(scale > 0)) {
    console.error('usage: node bench/datasets.mjs mixed|small|mutate DIR [--scale S] [--seed N]');
    process.exit(2);
  }
  const abs = path.resolve(dir);
  const res = what === 'mixed' ? generateMixed(abs, { scale, seed })
    : what === 'small' ? generateSmall(abs, { scale, seed }) : mutate(abs, { seed });
  console.log(JSON.stringify(res, null, 2));
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));

