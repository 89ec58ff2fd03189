// Markdown report and coffre target evaluation for bench results.
//
// CLI (re-render an existing results file):
//   node bench/report.mjs bench/work/results.json
import fs from 'node:fs';
import process from 'node:process';
import console from 'node:console';

export const STEPS = [
  { id: 'initial', set: 'mixed', kind: 'backup', label: 'mixed: initial backup', wallTarget: 0.8 },
  { id: 'nochange', set: 'mixed', kind: 'backup', label: 'mixed: no-change re-backup', wallTarget: 1.0 },
  { id: 'mutated', set: 'mixed', kind: 'backup', label: 'mixed: re-backup after mutation', wallTarget: 1.0 },
  { id: 'restore', set: 'mixed', kind: 'restore', label: 'mixed: full restore of latest', wallTarget: 0.8 },
  { id: 'small', set: 'small', kind: 'backup', label: 'small: initial backup', wallTarget: 0.8 },
];
export const STORED_TARGET = 1.05;
export const RSS_RATIO_TARGET = 1.5;
export const RSS_ABS_TARGET_MIB = 300;
/** A step is flagged as noisy when other processes used more than this share of all CPUs. */
export const NOISY_SHARE = 0.1;
const TOOL_ORDER = ['coffre', 'coffre-pg-s3', 'restic', 'borg'];
/** The coffre variants whose targets are evaluated (the embedded one first). */
export const COFFRE_TOOLS = ['coffre', 'coffre-pg-s3'];

const MiB = 1048576;
const f1 = (x) => (x == null ? '–' : x.toFixed(1));
const f2 = (x) => (x == null ? '–' : x.toFixed(2));
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b);
const met = (ok) => (ok == null ? 'n/a' : ok ? 'met' : '**NOT met**');

function metrics(rec) {
  if (!rec || !rec.ok) return null;
  return {
    wall: rec.wall_ms / 1000,
    cpu: rec.user_s != null ? rec.user_s + rec.sys_s : null,
    rss: rec.peak_rss_kib != null ? rec.peak_rss_kib / 1024 : null,
    stored: rec.stored_bytes != null ? rec.stored_bytes / MiB : null,
    delta: rec.stored_delta_bytes != null ? rec.stored_delta_bytes / MiB : null,
  };
}

/** Evaluate coffre's targets against restic (`tool`: which coffre, embedded by default). */
export function evaluateTargets(results, tool = 'coffre') {
  const get = (t, step) => results.steps.find((s) => s.tool === t && s.step === step);
  const targets = [];
  const ran = results.steps.some((s) => s.tool === tool);
  if (!ran || !results.steps.some((s) => s.tool === 'restic')) return targets;
  let coffreMaxRss = null;
  let resticMaxRss = null;
  for (const st of STEPS) {
    const c = metrics(get(tool, st.id));
    const r = metrics(get('restic', st.id));
    const failed = !c;
    const rw = c && r ? ratio(c.wall, r.wall) : null;
    targets.push({
      step: st.id, metric: 'wall time', ratio: rw, target: `≤ ${st.wallTarget.toFixed(2)}× restic`,
      met: failed ? false : rw == null ? null : rw <= st.wallTarget,
    });
    if (st.kind === 'backup') {
      const rs = c && r ? ratio(c.stored, r.stored) : null;
      targets.push({
        step: st.id, metric: 'stored size', ratio: rs, target: `≤ ${STORED_TARGET.toFixed(2)}× restic`,
        met: failed ? false : rs == null ? null : rs <= STORED_TARGET,
      });
    }
    const rr = c && r ? ratio(c.rss, r.rss) : null;
    targets.push({
      step: st.id, metric: 'agent peak RSS', ratio: rr, value_mib: c ? c.rss : null,
      target: `≤ ${RSS_RATIO_TARGET}× restic and < ${RSS_ABS_TARGET_MIB} MiB`,
      met: failed ? false : rr == null ? null : rr <= RSS_RATIO_TARGET && c.rss < RSS_ABS_TARGET_MIB,
    });
    if (c && c.rss != null) coffreMaxRss = Math.max(coffreMaxRss ?? 0, c.rss);
    if (r && r.rss != null) resticMaxRss = Math.max(resticMaxRss ?? 0, r.rss);
  }
  const rr = ratio(coffreMaxRss, resticMaxRss);
  targets.push({
    step: 'all', metric: 'agent peak RSS (max over steps)', ratio: rr, value_mib: coffreMaxRss,
    target: `≤ ${RSS_RATIO_TARGET}× restic and < ${RSS_ABS_TARGET_MIB} MiB`,
    met: rr == null ? false : rr <= RSS_RATIO_TARGET && coffreMaxRss < RSS_ABS_TARGET_MIB,
  });
  return targets;
}

function targetNote(targets, step, metric) {
  const t = targets.find((x) => x.step === step && x.metric === metric);
  return t ? ` (${t.target.replace(' restic', '').replace(' and ', ' & ')}: ${met(t.met)})` : '';
}

export function renderReport(results) {
  const targets = evaluateTargets(results);
  const targetsBy = {};
  for (const t of COFFRE_TOOLS) if (results.steps.some((s) => s.tool === t)) targetsBy[t] = t === 'coffre' ? targets : evaluateTargets(results, t);
  const m = results.machine;
  const L = [];
  L.push(`## coffre benchmark results (BENCH_SCALE=${results.config.scale})`);
  L.push('');
  L.push(`- Machine: ${m.nproc} CPU × ${m.cpu_model}, ${m.ram_mib} MiB RAM, ${m.kernel} (${m.os}), ` +
    `filesystem ${m.filesystem}, Node ${m.node}`);
  for (const [name, t] of Object.entries(results.tools)) {
    L.push(`- ${name}: ${t.available ? t.version : `not run — ${t.reason}`}`);
  }
  const d = results.datasets;
  if (d.mixed) {
    const b = d.mixed.bytes_by_type;
    L.push(`- Dataset "mixed": ${d.mixed.files} files in ${d.mixed.dirs} dirs, ${f1(d.mixed.bytes / MiB)} MiB ` +
      `(text ${f1(b.text / MiB)}, semi-compressible ${f1(b.semi / MiB)}, random ${f1(b.random / MiB)} MiB; ` +
      `${d.mixed.exact_duplicates} exact + ${d.mixed.near_duplicates} near duplicates = ${f1(d.mixed.duplicate_bytes / MiB)} MiB; ` +
      `largest ${f1(d.mixed.largest_file / MiB)} MiB)`);
  }
  if (d.mutation) {
    const mu = d.mutation;
    L.push(`- Mutation: ${mu.touched} of ${mu.files_before} files (${Object.entries(mu.ops).map(([k, v]) => `${k} ${v}`).join(', ')}), ` +
      `+${mu.new_files} new files (${f1(mu.new_bytes / MiB)} MiB), ${f1(mu.appended_bytes / MiB)} MiB appended`);
  }
  if (d.small) L.push(`- Dataset "small": ${d.small.files} files in ${d.small.dirs} dirs, ${f1(d.small.bytes / MiB)} MiB`);
  L.push('');
  L.push('| Step | Tool | Wall s | × restic | CPU s | Peak RSS MiB | × restic | Stored MiB | Δ stored MiB | × restic |');
  L.push('|---|---|---:|---|---:|---:|---|---:|---:|---|');
  for (const st of STEPS) {
    const recs = results.steps.filter((s) => s.step === st.id)
      .sort((a, b) => TOOL_ORDER.indexOf(a.tool) - TOOL_ORDER.indexOf(b.tool));
    const base = metrics(recs.find((r) => r.tool === 'restic'));
    for (const rec of recs) {
      const v = metrics(rec);
      if (!v) {
        const why = rec.skipped ? 'skipped' : rec.timed_out ? 'TIMED OUT' : 'FAILED';
        L.push(`| ${st.label} | ${rec.tool} | **${why}** | | | | | | | |`);
        continue;
      }
      const tt = targetsBy[rec.tool];
      const rw = base ? f2(ratio(v.wall, base.wall)) + (tt ? targetNote(tt, st.id, 'wall time') : '') : '–';
      const rr = base ? f2(ratio(v.rss, base.rss)) + (tt ? targetNote(tt, st.id, 'agent peak RSS') : '') : '–';
      let rs = '–';
      if (st.kind === 'backup' && base) rs = f2(ratio(v.stored, base.stored)) + (tt ? targetNote(tt, st.id, 'stored size') : '');
      let wall = f2(v.wall);
      if (rec.other_cpu_share > NOISY_SHARE) wall += ' †';
      if (rec.verify && !rec.verify.ok) wall += ' **MISMATCH**';
      const cpu = f1(v.cpu) + (rec.server_cpu_s != null ? ` (+${f1(rec.server_cpu_s)} server` +
        `${rec.services_cpu_s != null ? `, +${f1(rec.services_cpu_s)} pg/s3` : ''})` : '');
      let stored = st.kind === 'backup' ? f1(v.stored) : '–';
      if (st.kind === 'backup' && rec.tool === 'coffre-pg-s3') stored += ' ‡';
      L.push(`| ${st.label} | ${rec.tool} | ${wall} | ${rw} | ${cpu} | ${f1(v.rss)} | ${rr} | ` +
        `${stored} | ${st.kind === 'backup' ? f1(v.delta) : '–'} | ${rs} |`);
    }
  }
  if (results.steps.some((r) => r.tool === 'coffre-pg-s3')) {
    L.push('');
    L.push('‡ coffre-pg-s3: stored = bytes of the objects under its S3 prefix; its PostgreSQL database is not included ' +
      '(its size is in the notes). coffre (embedded): the whole data dir, SQLite database included. "+N pg/s3" = CPU of ' +
      'the PostgreSQL and Swift processes during the step.');
  }
  if (results.steps.some((r) => r.other_cpu_share > NOISY_SHARE)) {
    L.push('');
    L.push(`† other processes used more than ${NOISY_SHARE * 100} % of the machine's CPU during this step ` +
      '(other_cpu_s in results.json): timing less reliable.');
  }
  L.push('');
  const restores = results.steps.filter((s) => s.step === 'restore' && s.ok);
  for (const r of restores) {
    const v = r.verify || {};
    L.push(`- Restore check ${r.tool}: ${v.ok ? 'identical content' : '**MISMATCH**'} ` +
      `(${v.entries_restored ?? '?'} / ${v.entries_source ?? '?'} entries, diff lines ${v.diff_lines ?? '?'}, ` +
      `${v.mode_mismatches ?? '?'} mode and ${v.file_mtime_mismatches ?? '?'} file-mtime differences)`);
  }
  const srv = results.coffre_server || {};
  for (const [key, s] of Object.entries(srv)) {
    const name = s.tool && s.tool !== 'coffre' ? `${s.tool} server` : 'coffre server';
    L.push(`- ${name} (${s.set || key} repository, same machine): peak RSS ${s.peak_rss_kib ? f1(s.peak_rss_kib / 1024) : '?'} MiB ` +
      `(VmHWM; sum over its process tree ${s.peak_rss_sum_kib ? f1(s.peak_rss_sum_kib / 1024) : '?'} MiB)`);
  }
  L.push('');
  const evaluated = Object.entries(targetsBy).filter(([, ts]) => ts.length);
  for (const [tool, ts] of evaluated) {
    L.push(`### ${tool} targets (ratio = ${tool} / restic)`);
    L.push('');
    L.push(`| Step | Metric | ${tool} / restic | Target | Status |`);
    L.push('|---|---|---:|---|---|');
    for (const t of ts) {
      const extra = t.value_mib != null ? ` (${f1(t.value_mib)} MiB)` : '';
      L.push(`| ${t.step} | ${t.metric} | ${f2(t.ratio)}${extra} | ${t.target} | ${met(t.met)} |`);
    }
    const n = ts.filter((t) => t.met).length;
    L.push('');
    L.push(`${n} of ${ts.length} ${tool} targets met.`);
    L.push('');
  }
  if (!evaluated.length) {
    L.push('coffre targets not evaluated (coffre or restic was not run).');
  }
  L.push('');
  L.push('Notes:');
  for (const n of results.notes) L.push(`- ${n}`);
  L.push('- Wall = elapsed time of the tool process; CPU = user+sys (GNU time); peak RSS = max resident set ' +
    'of the tool process tree (GNU time %M); coffre CPU also shows the server\'s CPU during the step; stored = du -sb of the repository (coffre: server data dir) after the step; ' +
    'Δ stored = growth during the step.');
  L.push('');
  return { markdown: L.join('\n'), targets, targetsBy };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2] || 'bench/work/results.json';
  const res = JSON.parse(fs.readFileSync(file, 'utf8'));
  console.log(renderReport(res).markdown);
}
