// The second site, measured (docs/CONTINUITY.md, docs/BENCHMARKS.md "Replication"):
// a primary and a replica coffre-server on this machine, one agent. In one run:
//   1. the agent's initial backup of the mixed dataset to the primary   -> primary ingest MB/s
//   2. one on-demand pass on the replica (`job run replicate`)          -> replication MB/s
//   3. a nightly-size change (bench/datasets.mjs mutate) backed up, with the replica server
//      running on its default schedule (a pass every minute)           -> the replica's lag
// Run: node bench/replication.mjs [--scale 0.25]; BENCH_BACKEND=postgres-s3 puts both sites
// on PostgreSQL + S3 (each its own database and prefix). Needs ./bin built (npm run build).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateMixed, mutate } from './datasets.mjs';
import { baseEnv, duBytes, run, stopGroup, tailFile } from './measure.mjs';
import { createDatabase, deletePrefix, dropDatabase, ensureBucket, freshName, pgS3Config, s3Client } from './backends.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const ROOT = path.resolve(HERE, '..');
const SERVER = path.join(ROOT, 'bin', 'coffre-server');
const AGENT = path.join(ROOT, 'bin', 'coffre');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SCALE = Number(arg('scale', process.env.BENCH_SCALE || '1'));
const BACKEND = process.env.BENCH_BACKEND === 'postgres-s3' ? 'postgres-s3' : 'embedded';
const WORK = path.resolve(process.env.BENCH_DIR || path.join(HERE, 'work'), 'replication');
const FP_RE = /fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/;
const mb = (bytes, seconds) => bytes / 1e6 / seconds;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const cleanups = [];
const children = new Set();

async function site(name) {
  const dir = path.join(WORK, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (BACKEND === 'postgres-s3') {
    const cfg = pgS3Config();
    const db = freshName(`coffre_repl_${name}`);
    const url = await createDatabase(cfg.pgUrl, db);
    const s3c = await s3Client(cfg);
    await ensureBucket(s3c, cfg.bucket);
    const prefix = `bench-repl/${db}`;
    fs.writeFileSync(path.join(dir, 'server.json'), JSON.stringify({ v: 1, database: url, store: `s3://${cfg.bucket}/${prefix}`, s3Endpoint: cfg.s3Endpoint }));
    process.env.AWS_ACCESS_KEY_ID ??= cfg.accessKey;
    process.env.AWS_SECRET_ACCESS_KEY ??= cfg.secretKey;
    process.env.AWS_REGION ??= cfg.region;
    cleanups.push(async () => {
      await dropDatabase(cfg.pgUrl, db).catch(() => undefined);
      await deletePrefix(s3c, cfg.bucket, `${prefix}/`).catch(() => undefined);
    });
  }
  return { dir };
}

async function start(s) {
  const port = s.port ?? (await freePort());
  const log = path.join(WORK, `${path.basename(s.dir)}.log`);
  const fd = fs.openSync(log, 'w'); // a fresh log: the fingerprint read from it must be this start's
  const child = spawn(SERVER, ['start', '--data-dir', s.dir, '--listen', `127.0.0.1:${port}`], { env: baseEnv(), stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  children.add(child);
  child.on('exit', () => children.delete(child));
  for (let i = 0; i < 600; i++) {
    const m = fs.readFileSync(log, 'utf8').match(FP_RE);
    if (m) return Object.assign(s, { port, url: `https://127.0.0.1:${port}`, fingerprint: m[1], child });
    if (child.exitCode !== null) throw new Error(`coffre-server exited:\n${tailFile(log)}`);
    await sleep(100);
  }
  throw new Error(`coffre-server did not start:\n${tailFile(log)}`);
}

const cli = (args, opts = {}) => run(SERVER, args, { ...opts, timeoutMs: 3_600_000 });
const status = (s) => JSON.parse(cli(['replication', 'status', '--data-dir', s.dir, '--json']).stdout);
const seconds = (fn) => {
  const t0 = performance.now();
  const r = fn();
  return { r, s: (performance.now() - t0) / 1000 };
};

async function main() {
  if (!fs.existsSync(SERVER) || !fs.existsSync(AGENT)) throw new Error('build coffre first: npm ci && npm run build');
  fs.mkdirSync(WORK, { recursive: true });
  const data = path.join(WORK, 'data');
  process.stderr.write(`replication bench: generating the mixed dataset at scale ${SCALE}…\n`);
  generateMixed(data, { scale: SCALE });
  const datasetBytes = duBytes(data);

  const primary = await start(await site('primary'));
  cli(['customer', 'create', 'bench-repl', '--data-dir', primary.dir]);
  const token = cli(['enroll-token', 'create', '--customer', 'bench-repl', '--data-dir', primary.dir]).stdout.trim();
  const agentEnv = { COFFRE_CONFIG_DIR: path.join(WORK, 'agent'), COFFRE_PASSPHRASE: 'bench-passphrase-not-secret' };
  fs.rmSync(agentEnv.COFFRE_CONFIG_DIR, { recursive: true, force: true });
  run(AGENT, ['enroll', '--server', primary.url, '--token', token, '--fingerprint', primary.fingerprint, '--machine', 'bench'], { env: agentEnv });

  process.stderr.write('replication bench: initial backup to the primary…\n');
  const initial = seconds(() => JSON.parse(run(AGENT, ['backup', data, '--json', '--quiet'], { env: agentEnv, timeoutMs: 3_600_000 }).stdout));

  const replica = await site('replica');
  const rtoken = cli(['replication', 'token', 'create', '--data-dir', primary.dir]).stdout.trim();
  cli(['replication', 'join', '--data-dir', replica.dir, '--primary', primary.url, '--fingerprint', primary.fingerprint, '--token', rtoken]);
  process.stderr.write('replication bench: first pass (everything)…\n');
  const first = seconds(() => JSON.parse(cli(['job', 'run', 'replicate', '--data-dir', replica.dir, '--json']).stdout));
  const idle = seconds(() => JSON.parse(cli(['job', 'run', 'replicate', '--data-dir', replica.dir, '--json']).stdout));

  await start(replica); // from now on it pulls on its own schedule (every minute)
  process.stderr.write('replication bench: nightly change, backed up while the replica runs…\n');
  mutate(data);
  const nightly = seconds(() => JSON.parse(run(AGENT, ['backup', data, '--json', '--quiet'], { env: agentEnv, timeoutMs: 3_600_000 }).stdout));
  const backupEnd = Date.now();
  let caughtUp = null;
  while (caughtUp === null && Date.now() - backupEnd < 10 * 60_000) {
    const st = status(replica);
    if (st.replicatedUpTo && Date.parse(st.replicatedUpTo) >= backupEnd - 1000) caughtUp = Date.now();
    else await sleep(1000);
  }
  // The same change pulled on demand: the pass itself, without the wait for the schedule.
  const results = {
    date: new Date().toISOString(),
    backend: BACKEND,
    scale: SCALE,
    datasetBytes,
    initialBackup: { seconds: initial.s, addedBytes: initial.r.stats.addedBytes, ingestMBps: mb(initial.r.stats.addedBytes, initial.s), datasetMBps: mb(datasetBytes, initial.s) },
    firstPass: { seconds: first.s, bytes: first.r.counts.bytesFetched, packs: first.r.counts.packsFetched, replicationMBps: mb(first.r.counts.bytesFetched, first.s) },
    idlePass: { seconds: idle.s },
    nightly: {
      backupSeconds: nightly.s,
      addedBytes: nightly.r.stats.addedBytes,
      lagSeconds: caughtUp === null ? null : (caughtUp - backupEnd) / 1000,
      note: 'lag = from the end of the backup until `replication status` on the replica says it holds everything up to then; the replica pulls every minute (its default schedule)',
    },
  };
  fs.writeFileSync(path.join(WORK, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const r = results;
  process.stdout.write(
    [
      `| backend | ${r.backend} (scale ${r.scale}, dataset ${(r.datasetBytes / 1e6).toFixed(0)} MB) |`,
      '|---|---|',
      `| primary ingest, initial backup | ${(r.initialBackup.addedBytes / 1e6).toFixed(0)} MB stored in ${r.initialBackup.seconds.toFixed(1)} s = **${r.initialBackup.ingestMBps.toFixed(1)} MB/s** (${r.initialBackup.datasetMBps.toFixed(1)} MB/s of source data) |`,
      `| replication, first pass | ${(r.firstPass.bytes / 1e6).toFixed(0)} MB (${r.firstPass.packs} packs) in ${r.firstPass.seconds.toFixed(1)} s = **${r.firstPass.replicationMBps.toFixed(1)} MB/s** |`,
      `| pass with nothing new | ${r.idlePass.seconds.toFixed(1)} s |`,
      `| nightly change | ${(r.nightly.addedBytes / 1e6).toFixed(1)} MB added in ${r.nightly.backupSeconds.toFixed(1)} s; replica up to date **${r.nightly.lagSeconds === null ? 'not within 10 min' : `${r.nightly.lagSeconds.toFixed(0)} s`}** after the backup ended |`,
      '',
    ].join('\n'),
  );
  if (r.nightly.lagSeconds === null) process.exitCode = 1;
}

try {
  await main();
} finally {
  for (const c of [...children]) await stopGroup(c).catch(() => undefined);
  for (const f of cleanups) await f();
}
