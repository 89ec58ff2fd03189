// coffre benchmark harness: coffre vs restic vs borg on identical,
// deterministically generated datasets. Entry point is bench/run.sh, which
// installs the comparison tools and then runs `node bench/bench.mjs`.
//
// Environment:
//   BENCH_SCALE   (default 1.0)  multiplies dataset file counts (and so bytes)
//   BENCH_DIR     (default bench/work)  work dir: datasets, repos, logs, results
//   BENCH_TOOLS   (default coffre,restic,borg)
//   BENCH_SEED    (default 12648430)
//   BENCH_KEEP=1  keep repositories and restored trees after the run
//   BENCH_STEP_TIMEOUT  seconds per measured step (default 3600)
//   BENCH_BACKEND=postgres-s3  also run coffre on PostgreSQL + S3 (tool coffre-pg-s3,
//                 next to the embedded coffre); BENCH_PG_URL, BENCH_S3_* (bench/backends.mjs)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import console from 'node:console';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SEED, GENERATOR_VERSION, generateMixed, generateSmall, mutate } from './datasets.mjs';
import { machineBusySeconds, run, runMeasured, stopGroup, syncDisks, tailFile } from './measure.mjs';
import { ADAPTERS } from './tools.mjs';
import { NOISY_SHARE, STEPS, renderReport } from './report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

function log(msg = '') {
  console.log(msg);
}

function banner(msg) {
  const line = '!'.repeat(78);
  console.log(`\n${line}\n!!! ${msg}\n${line}\n`);
}

function fmtMiB(b) {
  return b == null ? '-' : `${(b / 1048576).toFixed(1)} MiB`;
}

function readConfig() {
  const scale = Number(process.env.BENCH_SCALE || 1);
  if (!(scale > 0)) throw new Error(`BENCH_SCALE must be a positive number, got "${process.env.BENCH_SCALE}"`);
  const tools = (process.env.BENCH_TOOLS || 'coffre,restic,borg').split(',').map((s) => s.trim()).filter(Boolean);
  const backend = (process.env.BENCH_BACKEND || '').trim();
  if (!['', 'embedded', 'postgres-s3'].includes(backend)) {
    throw new Error(`BENCH_BACKEND must be postgres-s3 (or unset / embedded), got "${backend}"`);
  }
  // coffre on PostgreSQL + S3 runs as a second coffre, right after the embedded one.
  if (backend === 'postgres-s3' && !tools.includes('coffre-pg-s3')) {
    const at = tools.indexOf('coffre');
    tools.splice(at >= 0 ? at + 1 : 0, 0, 'coffre-pg-s3');
  }
  for (const t of tools) if (!ADAPTERS[t]) throw new Error(`unknown tool "${t}" in BENCH_TOOLS (known: ${Object.keys(ADAPTERS)})`);
  const dir = path.resolve(process.env.BENCH_DIR || path.join(HERE, 'work'));
  return {
    scale, tools, dir, backend: backend || 'embedded', seed: Number(process.env.BENCH_SEED || DEFAULT_SEED), keep: process.env.BENCH_KEEP === '1',
    stepTimeoutMs: Number(process.env.BENCH_STEP_TIMEOUT || 3600) * 1000,
  };
}

function machineInfo(dir) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const osRelease = (() => {
    try {
      return (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m) || [])[1];
    } catch {
      return null;
    }
  })();
  const df = run('df', ['-T', dir], { allowFail: true }).stdout.trim().split('\n').pop().split(/\s+/);
  return {
    hostname: os.hostname(),
    nproc: Number(run('nproc', [], { allowFail: true }).stdout.trim()) || os.cpus().length,
    cpu_model: (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || 'unknown',
    ram_mib: Math.round(Number((meminfo.match(/^MemTotal:\s+(\d+)/m) || [])[1]) / 1024),
    kernel: `${os.type()} ${os.release()}`,
    os: osRelease,
    node: process.version,
    filesystem: df.length >= 2 ? df[1] : null,
    cache_note: 'all runs are warm-cache (page cache is not dropped); every tool runs each step under the same ' +
      'conditions, interleaved step by step, with `sync` before each measured step',
  };
}

function walkMeta(root) {
  const out = new Map();
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = fs.lstatSync(path.join(root, r));
      out.set(r, { mode: st.mode, mtimeMs: st.mtimeMs, size: st.size, dir: st.isDirectory() });
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** Compare a restored tree with the source: contents via diff -r, metadata via lstat. */
function verifyRestore(src, restored, logBase) {
  const res = { method: 'diff -rq --no-dereference + lstat walk (mode, mtime)', restored_path: restored };
  if (!fs.existsSync(restored)) {
    let top = [];
    try {
      top = fs.readdirSync(path.dirname(restored));
    } catch {
      // nothing
    }
    return { ...res, ok: false, error: `restored tree not found at ${restored}`, sample: top.slice(0, 10) };
  }
  const t0 = performance.now();
  const d = run('diff', ['-rq', '--no-dereference', src, restored], { allowFail: true, timeoutMs: 1800_000 });
  const diffOut = `${d.stdout || ''}${d.stderr || ''}`.trim();
  fs.writeFileSync(`${logBase}.diff`, diffOut);
  const lines = diffOut ? diffOut.split('\n') : [];
  res.diff_exit = d.status;
  res.diff_lines = lines.length;
  res.diff_sample = lines.slice(0, 10);
  const a = walkMeta(src);
  const b = walkMeta(restored);
  let modeMismatch = 0;
  let mtimeMismatch = 0;
  for (const [rel, m] of a) {
    const r = b.get(rel);
    if (!r) continue;
    if ((m.mode & 0o7777) !== (r.mode & 0o7777)) modeMismatch++;
    if (!m.dir && Math.abs(m.mtimeMs - r.mtimeMs) >= 1) mtimeMismatch++;
  }
  res.entries_source = a.size;
  res.entries_restored = b.size;
  res.mode_mismatches = modeMismatch;
  res.file_mtime_mismatches = mtimeMismatch;
  res.verify_ms = Math.round(performance.now() - t0);
  res.ok = d.status === 0 && a.size === b.size;
  return res;
}

const ctx = { root: ROOT, servers: new Set() };

async function main() {
  const cfg = readConfig();
  const t0 = performance.now();
  Object.assign(ctx, { dir: cfg.dir, logs: path.join(cfg.dir, 'logs') });
  fs.mkdirSync(ctx.logs, { recursive: true });
  const onSignal = async (sig) => {
    console.error(`\n${sig}: stopping coffre servers and exiting`);
    for (const c of ctx.servers) await stopGroup(c, 3000);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results = {
    schema: 1,
    started_at: new Date().toISOString(),
    config: {
      scale: cfg.scale, seed: cfg.seed, tools: cfg.tools, backend: cfg.backend, bench_dir: cfg.dir, generator_version: GENERATOR_VERSION,
    },
    machine: machineInfo(cfg.dir),
    tools: {},
    datasets: {},
    steps: [],
    repositories: {},
    coffre_server: {},
    notes: [],
  };
  log(`# coffre benchmark  (scale ${cfg.scale}, tools ${cfg.tools.join(',')}, dir ${cfg.dir})`);
  log(`machine: ${results.machine.nproc} CPU ${results.machine.cpu_model}, ${results.machine.ram_mib} MiB RAM, ` +
    `${results.machine.kernel}, node ${results.machine.node}, fs ${results.machine.filesystem}`);

  // ---- tools
  let anyFailure = false;
  const active = [];
  for (const name of cfg.tools) {
    const a = ADAPTERS[name];
    let d;
    try {
      d = await a.detect(ctx);
    } catch (e) {
      d = { available: false, reason: e.message };
    }
    results.tools[name] = d;
    if (d.available) {
      active.push(name);
      log(`tool ${name}: ${d.version}`);
      results.notes.push(...(d.notes || []));
    } else {
      banner(`${name} SKIPPED: ${d.reason}`);
      // Asked for explicitly (BENCH_BACKEND=postgres-s3) but its services are down: the run fails.
      if (d.required) anyFailure = true;
    }
  }
  if (!active.length) throw new Error('no tool available to benchmark');
  results.notes.push(results.machine.cache_note);
  results.notes.push('inherited RESTIC_*, BORG_* and COFFRE_* variables are removed from every tool\'s environment ' +
    '(only the harness\'s own settings are passed), so e.g. a test-only weakened KDF cannot leak in');

  // ---- datasets
  const dataDir = path.join(cfg.dir, 'data');
  const mixedDir = path.join(dataDir, 'mixed');
  const smallDir = path.join(dataDir, 'small');
  log('\n## generating datasets');
  results.datasets.mixed = generateMixed(mixedDir, { scale: cfg.scale, seed: cfg.seed });
  log(`mixed: ${results.datasets.mixed.files} files, ${fmtMiB(results.datasets.mixed.bytes)} in ` +
    `${(results.datasets.mixed.gen_ms / 1000).toFixed(1)} s (digest ${results.datasets.mixed.digest.slice(0, 16)})`);
  const smallMarker = path.join(dataDir, 'small.json');
  let small = null;
  try {
    small = JSON.parse(fs.readFileSync(smallMarker, 'utf8'));
  } catch {
    // regenerate
  }
  if (!small || small.scale !== cfg.scale || small.seed !== cfg.seed || small.generator_version !== GENERATOR_VERSION ||
      !fs.existsSync(smallDir)) {
    fs.rmSync(smallMarker, { force: true });
    small = generateSmall(smallDir, { scale: cfg.scale, seed: cfg.seed });
    fs.writeFileSync(smallMarker, JSON.stringify(small, null, 2));
    small.reused = false;
  } else {
    small.reused = true;
  }
  results.datasets.small = small;
  log(`small: ${small.files} files, ${fmtMiB(small.bytes)} ` +
    `${small.reused ? '(reused from a previous run)' : `in ${(small.gen_ms / 1000).toFixed(1)} s`}`);

  // ---- measured steps
  const inst = {};
  const broken = {};
  const restoreRoot = path.join(cfg.dir, 'restore');

  const openRepo = async (tool, set) => {
    const key = `${tool}-${set}`;
    try {
      const t = performance.now();
      inst[key] = await ADAPTERS[tool].open(ctx, set);
      inst[key].setup_ms = Math.round(performance.now() - t);
      inst[key].prevStored = await ADAPTERS[tool].storedBytes(inst[key]);
      results.repositories[key] = { path: inst[key].repo, setup_ms: inst[key].setup_ms, ...(inst[key].info || {}) };
    } catch (e) {
      broken[key] = `setup failed: ${e.message}`;
      anyFailure = true;
      banner(`${tool}: could not set up the ${set} repository`);
      console.error(e.message);
    }
  };

  const closeRepo = async (tool, set) => {
    const key = `${tool}-${set}`;
    const i = inst[key];
    if (!i) return;
    let mem = null;
    try {
      mem = await ADAPTERS[tool].close(i, ctx, { keep: cfg.keep });
    } catch (e) {
      anyFailure = true;
      banner(`${tool}: closing the ${set} repository failed: ${e.message.split('\n')[0]}`);
    }
    if (tool.startsWith('coffre')) {
      // The embedded coffre keeps its historical key (the set name); other coffre back ends are TOOL/SET.
      results.coffre_server[tool === 'coffre' ? set : `${tool}/${set}`] = {
        tool, set, port: i.port, fingerprint: i.fingerprint, log: i.logFile, setup_ms: i.setup_ms,
        peak_rss_kib: mem ? mem.max_hwm_kib : null, peak_rss_sum_kib: mem ? mem.sum_hwm_kib : null,
        processes: mem ? mem.processes : null,
        ...(i.final ? { backend_at_end: i.final } : {}),
      };
      log(`[${tool}] server (${set}) peak RSS at end: ${mem ? (mem.max_hwm_kib / 1024).toFixed(1) : '?'} MiB`);
      if (i.final && i.final.database_bytes != null) {
        const steps = results.steps.filter((r) => r.tool === tool && r.dataset === set && r.backend_stats);
        results.notes.push(`${tool} (${set}): PostgreSQL database ${i.info.database} (pg_database_size) ` +
          `${fmtMiB(i.info.database_at_setup && i.info.database_at_setup.database_bytes)} empty (migrated, one customer), ` +
          `${steps.map((r) => `${fmtMiB(r.backend_stats.database_bytes)} after ${r.step}`).join(', ')}; ` +
          `chunks + packs with their indexes ${fmtMiB(i.final.chunks_bytes + i.final.packs_bytes)} for ` +
          `${i.final.chunk_rows} chunk rows; ${i.final.objects} objects (${fmtMiB(i.final.objects_bytes)}) under ` +
          `${i.info.store}` + (i.final.deleted_objects != null ? ' (database dropped and objects deleted after the run)' : ''));
      }
    }
    if (!cfg.keep) {
      fs.rmSync(i.repo, { recursive: true, force: true });
      fs.rmSync(i.state, { recursive: true, force: true });
    }
    delete inst[key];
  };

  const measure = async (tool, stepId) => {
    const step = STEPS.find((s) => s.id === stepId);
    const key = `${tool}-${step.set}`;
    const rec = { step: stepId, tool, dataset: step.set, kind: step.kind };
    results.steps.push(rec);
    const adapter = ADAPTERS[tool];
    const i = inst[key];
    if (!i || broken[key]) {
      rec.ok = false;
      rec.skipped = true;
      rec.error = broken[key] || 'repository not available';
      log(`[${tool}] ${step.label}: SKIPPED (${rec.error.split('\n')[0]})`);
      return rec;
    }
    const src = step.set === 'mixed' ? mixedDir : smallDir;
    let target = null;
    let c;
    try {
      if (step.kind === 'restore') {
        target = path.join(restoreRoot, tool);
        fs.rmSync(target, { recursive: true, force: true });
        fs.mkdirSync(target, { recursive: true });
        c = adapter.restoreCmd(i, target);
      } else {
        c = adapter.backupCmd(i, src, stepId);
      }
    } catch (e) {
      rec.ok = false;
      rec.error = e.message;
      broken[key] = `${stepId} could not start: ${e.message}`;
      anyFailure = true;
      return rec;
    }
    syncDisks();
    const logBase = path.join(ctx.logs, `${tool}-${stepId}`);
    const busy0 = machineBusySeconds();
    const self0 = process.cpuUsage();
    const srv0 = adapter.serverCpuSeconds ? adapter.serverCpuSeconds(i) : null;
    const svc0 = adapter.servicesCpuSeconds ? adapter.servicesCpuSeconds() : null;
    const r = await runMeasured({ ...c, logBase, timeoutMs: cfg.stepTimeoutMs });
    const busy = machineBusySeconds() - busy0;
    const self = process.cpuUsage(self0);
    const srv1 = adapter.serverCpuSeconds ? adapter.serverCpuSeconds(i) : null;
    const svc1 = adapter.servicesCpuSeconds ? adapter.servicesCpuSeconds() : null;
    rec.server_cpu_s = srv0 != null && srv1 != null ? Math.round((srv1 - srv0) * 100) / 100 : null;
    if (svc0 != null && svc1 != null) rec.services_cpu_s = Math.round((svc1 - svc0) * 100) / 100;
    // CPU time that neither the tool, its server (and its PostgreSQL / S3) nor the harness used: other work on the machine.
    const other = busy - (r.user_s || 0) - (r.sys_s || 0) - (rec.server_cpu_s || 0) - (rec.services_cpu_s || 0) -
      (self.user + self.system) / 1e6;
    rec.other_cpu_s = Math.round(Math.max(0, other) * 100) / 100;
    rec.other_cpu_share = r.wall_ms > 0 ? Math.round((rec.other_cpu_s / (r.wall_ms / 1000 * results.machine.nproc)) * 1000) / 1000 : null;
    const ts = performance.now();
    syncDisks();
    Object.assign(rec, r, { sync_after_ms: Math.round(performance.now() - ts) });
    if (adapter.afterBackup) adapter.afterBackup(i, stepId, r);
    try {
      rec.tool_summary = adapter.summary(r.stdout_file);
    } catch {
      rec.tool_summary = null;
    }
    if (step.kind === 'backup') {
      rec.stored_bytes = await adapter.storedBytes(i);
      if (adapter.backendStats) {
        try {
          rec.backend_stats = await adapter.backendStats(i);
        } catch (e) {
          rec.backend_stats = { error: e.message };
        }
      }
      rec.stored_delta_bytes = rec.stored_bytes != null && i.prevStored != null ? rec.stored_bytes - i.prevStored : null;
      i.prevStored = rec.stored_bytes;
    }
    rec.client_state_bytes = adapter.clientStateBytes(i);
    if (adapter.serverMemory) {
      const m = adapter.serverMemory(i);
      rec.server_peak_rss_kib_so_far = m ? m.max_hwm_kib : null;
      rec.server_rss_kib_now = m ? m.sum_rss_kib : null;
    }
    const summary = `${(r.wall_ms / 1000).toFixed(2)} s, peak RSS ${r.peak_rss_kib ? (r.peak_rss_kib / 1024).toFixed(1) : '?'} MiB` +
      (rec.stored_bytes != null ? `, stored ${fmtMiB(rec.stored_bytes)}` : '');
    if (!r.ok) {
      anyFailure = true;
      rec.error = `${r.timed_out ? 'timed out' : `exit ${r.exit_code}${r.signal ? ` signal ${r.signal}` : ''}`}: ` +
        tailFile(r.stderr_file, 8);
      broken[key] = `${stepId} failed`;
      banner(`${tool} ${step.label} FAILED (${summary})`);
      console.error(`${rec.error}\n(command: ${r.cmdline}; logs ${logBase}.*)`);
      return rec;
    }
    log(`[${tool}] ${step.label}: ${summary}`);
    if (step.kind === 'restore') {
      const restored = path.join(target, mixedDir);
      rec.verify = verifyRestore(mixedDir, restored, logBase);
      if (!rec.verify.ok) {
        anyFailure = true;
        banner(`${tool} RESTORE VERIFICATION FAILED: restored data differs from the source ` +
          `(${rec.verify.error || `${rec.verify.diff_lines} diff lines, see ${logBase}.diff`})`);
        for (const l of rec.verify.diff_sample || rec.verify.sample || []) console.error(`    ${l}`);
      } else {
        log(`[${tool}] restore verified: identical content (${rec.verify.entries_source} entries; ` +
          `${rec.verify.mode_mismatches} mode / ${rec.verify.file_mtime_mismatches} mtime differences)`);
      }
      if (!cfg.keep) fs.rmSync(target, { recursive: true, force: true });
    }
    return rec;
  };

  log('\n## phase 1: initial and no-change backups of "mixed"');
  for (const t of active) {
    await openRepo(t, 'mixed');
    await measure(t, 'initial');
    await measure(t, 'nochange');
  }
  log('\n## mutating "mixed" (~5 % of files)');
  results.datasets.mutation = mutate(mixedDir, { seed: cfg.seed });
  const m = results.datasets.mutation;
  log(`mutation: ${m.touched} files touched (${Object.entries(m.ops).map(([k, v]) => `${k} ${v}`).join(', ')}), ` +
    `${m.new_files} new files, in ${(m.mutate_ms / 1000).toFixed(1)} s`);
  log('\n## phase 2: backup after mutation, full restore');
  for (const t of active) {
    await measure(t, 'mutated');
    await measure(t, 'restore');
    await closeRepo(t, 'mixed');
  }
  log('\n## phase 3: initial backup of "small"');
  for (const t of active) {
    await openRepo(t, 'small');
    await measure(t, 'small');
    await closeRepo(t, 'small');
  }

  const busy = results.steps.filter((r) => r.other_cpu_share > NOISY_SHARE);
  if (busy.length) {
    const msg = `other processes used more than ${NOISY_SHARE * 100} % of the machine's CPU during ${busy.length} ` +
      `step(s) (marked † in the table, up to ${Math.round(Math.max(...busy.map((r) => r.other_cpu_share)) * 100)} %): ` +
      'those timings are less reliable — rerun on an idle machine';
    results.notes.push(`WARNING: ${msg}`);
    banner(msg);
  }
  results.finished_at = new Date().toISOString();
  results.total_s = Math.round(performance.now() - t0) / 1000;
  const { markdown, targets, targetsBy } = renderReport(results);
  results.targets = targets;
  if (targetsBy['coffre-pg-s3']) results.targets_pg_s3 = targetsBy['coffre-pg-s3'];
  fs.writeFileSync(path.join(cfg.dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(path.join(cfg.dir, 'results.md'), markdown);
  log(`\n${markdown}`);
  log(`results: ${path.join(cfg.dir, 'results.json')} and results.md (total ${results.total_s.toFixed(0)} s)`);
  if (!cfg.keep) fs.rmSync(restoreRoot, { recursive: true, force: true });
  if (anyFailure) {
    banner('some steps FAILED or a restore did not verify — see above');
    process.exitCode = 1;
  }
}

main()
  .catch((e) => {
    console.error(`bench failed: ${e.stack || e.message}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of ctx.servers) await stopGroup(c, 5000);
  });

