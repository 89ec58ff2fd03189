#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Command, CommanderError, Option } from 'commander';
import { COFFRE_VERSION, CoffreError, nextRunAfter, parseSchedule, nodeNameBytes, type ChunkId, type TreeNode } from '@coffre/core';
import { ConfigStore, resolveConfigDir } from './config.js';
import { normalizeTargets } from './engine/backup.js';
import { backupRun, reportRun } from './runs.js';
import { restore } from './engine/restore.js';
import { verify } from './engine/verify.js';
import type { Repository } from './engine/repo.js';
import { EXIT, Progress, errorLine, exitCodeFor, formatBytes, formatDuration } from './output.js';
import { JobStore, reportSchedule, systemTimeZone, type BackupJob } from './jobs.js';
import { clientFor, enroll, openRepository, type KeyNeed } from './session.js';
import { registerKeyCommands } from './key-cli.js';
import type { AccessMode } from './sites.js';
import { Daemon, type DaemonSettings } from './daemon/daemon.js';
import { DaemonLockedError } from './daemon/lock.js';
import { jsonLogger } from './daemon/log.js';
import { DEFAULT_SAMPLE_PERCENT, MAX_SAMPLE_BYTES, MAX_SAMPLE_FILES } from './engine/restore-test.js';
import { runRestoreTest, snapshotToTest } from './restore-test-run.js';

interface Globals {
  config?: string;
  passphraseFile?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];
const print = (s: string) => process.stdout.write(s + '\n');
const json = (v: unknown) => process.stdout.write(JSON.stringify(v, null, 2) + '\n');

function storeOf(g: Globals): ConfigStore {
  return new ConfigStore(resolveConfigDir(g.config));
}

/** Debug aid only: a run report that could not be sent never changes the outcome. */
const debugReportError = (e: unknown) => {
  if (process.env.COFFRE_DEBUG === '1') process.stderr.write(`coffre: the run report was not sent: ${(e as Error).message}\n`);
};

/** Opens the repository for a command; `need` 'read' asks for the passphrase (format 2 machines only write). */
async function withRepo<T>(g: Globals, fn: (r: Repository) => Promise<T>, mode: AccessMode = 'read', need: KeyNeed = 'write'): Promise<T> {
  const repo = await openRepository(storeOf(g), { file: g.passphraseFile }, mode, need);
  try {
    return await fn(repo);
  } finally {
    repo.api.close();
  }
}

let exitCode: number = EXIT.OK;

/** The enrolment token: --token, --token - (standard input) or --token-file. */
async function readToken(o: { token?: string; tokenFile?: string }): Promise<string> {
  if ((o.token === undefined) === (o.tokenFile === undefined)) throw new CoffreError('BAD_REQUEST', 'give the enrollment token with --token TOKEN, --token - (standard input) or --token-file FILE');
  let raw: string;
  if (o.tokenFile !== undefined) {
    try {
      raw = readFileSync(o.tokenFile, 'utf8');
    } catch (e) {
      throw new CoffreError('BAD_REQUEST', `cannot read the token file ${o.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  } else if (o.token === '-') {
    const parts: Buffer[] = [];
    for await (const c of process.stdin) parts.push(c as Buffer);
    raw = Buffer.concat(parts).toString('utf8');
  } else raw = o.token!;
  const t = raw.trim();
  if (!t) throw new CoffreError('BAD_REQUEST', 'the enrollment token is empty');
  return t;
}

const program = new Command('coffre')
  .description('coffre agent: encrypted, deduplicated, incremental backups of this machine')
  .version(COFFRE_VERSION)
  .option('--config <dir>', 'agent state directory (default: $COFFRE_CONFIG_DIR or ~/.config/coffre)')
  .option('--passphrase-file <file>', 'read the passphrase from this file (else $COFFRE_PASSPHRASE, else a prompt)')
  .showHelpAfterError()
  .exitOverride();

program
  .command('enroll')
  .description('enroll this machine with a one-time token from the operator')
  .requiredOption('--server <url>', 'server URL, e.g. https://backup.example.fr:8443')
  .option('--token <token>', 'one-time enrollment token ("-": read it from standard input)')
  .option('--token-file <file>', 'read the one-time enrollment token from this file (keeps it out of the process list and shell history)')
  .option('--fingerprint <sha256>', "SHA-256 fingerprint of the server's TLS certificate (hex, colons optional)")
  .option('--machine <name>', 'name of this machine (default: host name)')
  .option('--generate-passphrase', "for the customer's first machine: make a strong passphrase and show it once")
  .option('--json', 'machine-readable output')
  .action(async (o: { server: string; token?: string; tokenFile?: string; fingerprint?: string; machine?: string; generatePassphrase?: boolean; json?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const token = await readToken(o);
    const r = await enroll(storeOf(g), { server: o.server, token, fingerprint: o.fingerprint, machine: o.machine, pass: { file: g.passphraseFile }, generatePassphrase: o.generatePassphrase ?? false });
    if (o.json) {
      json({
        machineId: r.config.machineId,
        machineName: r.config.machineName,
        customerId: r.config.customerId,
        customerName: r.config.customerName,
        createdRepository: r.createdRepository,
        recoveryKey: r.recoveryKey,
        generatedPassphrase: r.generatedPassphrase ?? null,
        keyError: r.keyError ? { code: r.keyError.code, message: r.keyError.message } : null,
      });
    } else {
      print(`Enrolled machine "${r.config.machineName}" for customer "${r.config.customerName}" on ${r.config.server}`);
      if (r.generatedPassphrase) {
        print('');
        print('================ PASSPHRASE — PHRASE SECRÈTE ================');
        print(`  ${r.generatedPassphrase}`);
        print('Needed to restore and to enroll other machines. Keep it in a password');
        print('manager. / Nécessaire pour restaurer et inscrire d’autres postes.');
        print('================================================================');
      }
      if (r.recoveryKey) {
        print('');
        print('================ RECOVERY KEY — CLÉ DE SECOURS ================');
        print(`  ${r.recoveryKey}`);
        print('Print it and keep it offline, away from this machine. It opens this');
        print("customer's backups if the passphrase is lost. It is shown only once.");
        print('Imprimez-la et conservez-la hors ligne. Elle ouvre les sauvegardes si');
        print('la phrase secrète est perdue. Elle n’est affichée qu’une seule fois.');
        print('================================================================');
      } else if (!r.keyError) {
        print("Opened the customer's existing encryption key with the passphrase; this machine keeps only what backups need.");
      }
    }
    if (r.keyError) {
      process.stderr.write(`coffre: the machine is enrolled, but ${r.keyError.message}\ncoffre: run any command again with the right passphrase to open the key.\n`);
      exitCode = exitCodeFor(r.keyError);
    }
  });

program
  .command('backup')
  .description('back up files and directories')
  .argument('<path...>', 'files or directories to back up')
  .option('--exclude <pattern>', 'skip paths matching this pattern (repeatable)', collect, [])
  .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
  .option('--force', 're-read every file instead of trusting unchanged metadata')
  .addOption(new Option('--compression <level>', 'zstd level (0 = off)').default('3').argParser((v) => Number.parseInt(v, 10)))
  .option('--json', 'print a JSON summary')
  .option('-q, --quiet', 'no progress output')
  .action(async (paths: string[], o: { exclude: string[]; tag: string[]; force?: boolean; compression: number; json?: boolean; quiet?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const targets = normalizeTargets(paths);
    await withRepo(g, async (repo) => {
      const progress = Progress.for('backup', o);
      const totals = progress && process.stderr.isTTY && !o.json && !o.quiet ? scanTotals(targets, o.exclude) : null;
      let total: { files: number; bytes: number } | undefined;
      void totals?.then((t) => (total = t)).catch(() => undefined);
      const outcome = await backupRun(
        repo,
        {
          paths: targets,
          excludes: o.exclude,
          tags: o.tag,
          force: o.force ?? false,
          compressionLevel: o.compression,
          reporter: {
            progress: (p) => progress.update({ bytes: p.bytes, files: p.files, totalBytes: total?.bytes, totalFiles: total?.files }),
            warning: (w) => {
              if (!o.json) process.stderr.write(`coffre: warning: ${w.path}: ${w.message}\n`);
            },
          },
        },
        { trigger: 'manual' },
      );
      progress.stop();
      if (!outcome.ok) {
        await reportRun(repo.api, outcome.record, debugReportError);
        throw outcome.error;
      }
      const { result: res, incomplete } = outcome;
      if (incomplete) exitCode = EXIT.INCOMPLETE;
      const s = res.stats;
      await reportRun(repo.api, outcome.record, debugReportError);
      if (o.json) {
        json({ snapshot: res.snapshot.id, time: res.snapshot.time, parent: res.parent, paths: targets, stats: s, warnings: res.warnings, incomplete });
        return;
      }
      print(`snapshot ${res.snapshot.id.slice(0, 8)} saved (${res.snapshot.id}) at ${res.snapshot.time}`);
      print(`files: ${s.newFiles} new, ${s.changedFiles} changed, ${s.unchangedFiles} unchanged; ${s.dirs} directories, ${s.symlinks} symbolic links`);
      print(`processed ${formatBytes(s.bytes)} in ${formatDuration(s.durationMs)}; added ${formatBytes(s.addedBytes)} (${s.addedChunks} chunks) to the repository`);
      if (res.warnings.length) print(`${res.warnings.length} warning(s); ${incomplete ? 'the snapshot is INCOMPLETE: some files could not be read' : 'nothing was left out that could be read'}`);
    }, 'write');
  });

program
  .command('snapshots')
  .description("list the customer's snapshots (all machines)")
  .option('--machine <name>', 'only this machine')
  .option('--json', 'JSON array')
  .action(async (o: { machine?: string; json?: boolean }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const list = await repo.listSnapshots(o.machine);
      const mine = repo.localRoots();
      const rows = list.map((s) => {
        // Without the passphrase (format 2) the secret part stays sealed: this machine knows
        // the paths of its own snapshots, nothing of the others'.
        const sec = repo.canRead ? repo.open(s) : null;
        if (!sec) repo.checkMac(s);
        return {
          id: s.id,
          shortId: s.id.slice(0, 8),
          time: s.time,
          machine: s.machineName,
          machineId: s.machineId,
          hostname: sec?.hostname ?? null,
          paths: sec?.paths ?? mine.get(s.id)?.paths ?? null,
          tags: sec?.tags ?? null,
          parent: s.manifest.parent,
          files: sec?.stats.files ?? null,
          size: s.manifest.logicalSize,
          stats: sec?.stats ?? null,
          sealed: sec === null,
        };
      });
      if (o.json) return json(rows);
      if (rows.length === 0) return print('no snapshots');
      print(['ID      ', 'TIME                    ', 'MACHINE         ', 'FILES    ', 'SIZE       ', 'PATHS'].join(' '));
      for (const r of rows) {
        print([r.shortId, r.time.padEnd(24), r.machine.padEnd(16), String(r.files ?? '-').padEnd(9), formatBytes(r.size).padEnd(11), r.paths ? r.paths.join(' ') : '(sealed: needs the passphrase)'].join(' '));
      }
    });
  });

program
  .command('ls')
  .description('list the contents of a snapshot')
  .argument('<snapshot>', 'snapshot id (or prefix), or "latest"')
  .argument('[path]', 'only this directory or file (absolute path as backed up)')
  .option('-l, --long', 'show type, mode, size and modification time')
  .option('--machine <name>', 'with "latest": the latest of that machine (default: this machine\'s)')
  .option('--json', 'JSON array')
  .action(async (ref: string, path: string | undefined, o: { long?: boolean; json?: boolean; machine?: string }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const snap = await repo.findSnapshot(ref, o.machine);
      const root = repo.open(snap).root;
      const want = (path ?? '/').split('/').filter(Boolean);
      const out: { path: string; node: TreeNode }[] = [];
      const walk = async (tree: ChunkId, prefix: string, depth: number): Promise<void> => {
        for (const n of (await repo.loadTree(tree)).nodes) {
          const name = nodeNameBytes(n).toString('utf8');
          if (depth < want.length && name !== want[depth]) continue;
          const p = `${prefix}/${name}`;
          if (depth >= want.length - 1) out.push({ path: p, node: n });
          if (n.type === 'dir') await walk(n.subtree!, p, depth + 1);
        }
      };
      await walk(root, '', 0);
      if (path && out.length === 0) throw new CoffreError('NOT_FOUND', `${path} is not in snapshot ${snap.id.slice(0, 8)}`);
      if (o.json) {
        return json(out.map(({ path: p, node: n }) => ({ path: p, type: n.type, size: n.size ?? 0, mode: n.mode, mtime: nsToIso(n.mtime), ...(n.type === 'symlink' ? { target: n.target ?? null } : {}) })));
      }
      for (const { path: p, node: n } of out) {
        if (!o.long) print(p);
        else print(`${n.type === 'dir' ? 'd' : n.type === 'symlink' ? 'l' : '-'}${(n.mode & 0o7777).toString(8).padStart(4, '0')} ${String(n.size ?? 0).padStart(12)} ${nsToIso(n.mtime)} ${p}${n.type === 'symlink' ? ` -> ${n.target ?? '(binary)'}` : ''}`);
      }
    }, 'read', 'read');
  });

program
  .command('restore')
  .description('restore a snapshot, entirely or selectively, here or on another machine')
  .argument('<snapshot>', 'snapshot id (or prefix), or "latest"')
  .requiredOption('--target <dir>', 'directory to restore into (original paths are re-created below it)')
  .option('--include <pattern>', 'restore only paths matching this pattern (repeatable)', collect, [])
  .option('--machine <name>', 'with "latest": the latest snapshot of that machine (default: this machine\'s)')
  .option('--json', 'print a JSON summary')
  .option('-q, --quiet', 'no progress output')
  .action(async (ref: string, o: { target: string; include: string[]; machine?: string; json?: boolean; quiet?: boolean }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const snap = await repo.findSnapshot(ref, o.machine);
      if (!o.json) process.stderr.write(`coffre: restoring snapshot ${snap.id.slice(0, 8)} of machine "${snap.machineName}" (${snap.time})${snap.machineId === repo.machineId ? '' : ' — another machine'}\n`);
      const progress = Progress.for('restore', o);
      const started = Date.now();
      const r = await restore(repo, { snapshot: snap, target: o.target, includes: o.include, reporter: { progress: (p) => progress.update(p) } });
      progress.stop();
      if (o.json) json({ snapshot: snap.id, machine: snap.machineName, machineId: snap.machineId, target: o.target, ...r, durationMs: Date.now() - started });
      else {
        if (r.restoredInto !== resolvePath(o.target)) {
          process.stderr.write(`coffre: another user can change a directory of ${o.target}: restored instead into ${r.restoredInto}, which only root can enter; move its content into place\n`);
        }
        print(`restored snapshot ${snap.id.slice(0, 8)} to ${r.restoredInto}: ${r.files} files (${formatBytes(r.bytes)}), ${r.dirs} directories, ${r.symlinks} symbolic links in ${formatDuration(Date.now() - started)}`);
        for (const e of r.errors) process.stderr.write(`coffre: warning: ${e.path}: ${e.message}\n`);
        for (const d of r.damaged) process.stderr.write(`coffre: DAMAGED, not restored: ${d.path}: ${d.message}\n`);
      }
      if (r.damaged.length > 0) {
        if (!o.json) process.stderr.write(`coffre: error: ${r.damaged.length} file(s) could not be restored intact (listed above)\n`);
        exitCode = EXIT.INTEGRITY;
      } else if (r.errors.length > 0) exitCode = EXIT.INCOMPLETE;
      if (r.files === 0 && r.dirs === 0 && o.include.length > 0) {
        throw new CoffreError('NOT_FOUND', `nothing in snapshot ${snap.id.slice(0, 8)} matches ${o.include.join(', ')}`);
      }
    }, 'read', 'read');
  });

program
  .command('verify')
  .description('check that every snapshot can be restored (add --read-data to download and check all data)')
  .option('--read-data', 'download every pack and check every blob')
  .option('--json', 'JSON summary')
  .option('-q, --quiet', 'no progress output')
  .action(async (o: { readData?: boolean; json?: boolean; quiet?: boolean }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const progress = Progress.for('verify', o);
      const r = await verify(repo, { readData: o.readData ?? false, progress: (p) => progress.update({ bytes: p.done, totalBytes: p.total, files: p.done }) });
      progress.stop();
      if (o.json) json({ ok: r.problems.length === 0, ...r });
      else {
        for (const p of r.problems) process.stderr.write(`coffre: ${p.message}\n`);
        print(`checked ${r.snapshots} snapshots, ${r.trees} directories, ${r.chunks} chunks${o.readData ? `, read ${r.packsRead} packs (${formatBytes(r.bytesRead)})` : ''}: ${r.problems.length === 0 ? 'no problems found' : `${r.problems.length} PROBLEM(S)`}`);
      }
      if (r.problems.length > 0) exitCode = EXIT.INTEGRITY;
    }, 'read', o.readData ? 'read' : 'write');
  });

program
  .command('restore-test')
  .description("restore a random sample of a snapshot's files to a temporary directory and compare them with the source")
  .argument('[snapshot]', 'snapshot id (or prefix), or "latest" (default: this machine\'s newest snapshot)')
  .option('--sample <percent>', `percentage of the files to restore (at least 1 file, at most ${MAX_SAMPLE_FILES} files and ${formatBytes(MAX_SAMPLE_BYTES)})`, percentArg, DEFAULT_SAMPLE_PERCENT)
  .option('--json', 'print a JSON summary')
  .option('-q, --quiet', 'no progress output')
  .action(async (ref: string | undefined, o: { sample: number; json?: boolean; quiet?: boolean }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const snapshot = await snapshotToTest(repo, ref);
      const progress = Progress.for('restore-test', o);
      const started = Date.now();
      const run = await runRestoreTest(repo, { snapshot, percent: o.sample, reporter: { progress: (p) => progress.update(p) } }).finally(() => progress.stop());
      const r = run.result;
      const notCompared = r.files.filter((f) => f.status === 'not-compared');
      for (const p of r.problems) process.stderr.write(`coffre: RESTORE TEST PROBLEM: ${p.path}: ${p.message}\n`);
      if (run.reportError) process.stderr.write(`coffre: warning: the server could not be told about this restore test: ${(run.reportError as Error).message}\n`);
      if (o.json) {
        json({
          snapshot: snapshot.id,
          snapshotTime: snapshot.time,
          machine: snapshot.machineName,
          result: r.ok ? 'success' : 'failed',
          percent: o.sample,
          totalFiles: r.totalFiles,
          sampledFiles: r.sampledFiles,
          restoredFiles: r.restoredFiles,
          comparedFiles: r.comparedFiles,
          notComparedFiles: notCompared.length,
          bytes: r.bytes,
          mismatches: r.problems.length,
          files: r.files,
          problems: r.problems,
          reportId: run.reportId,
          reported: run.reportId !== null,
          durationMs: Date.now() - started,
        });
      } else {
        print(`restore test of snapshot ${snapshot.id.slice(0, 8)} (${snapshot.time}, machine ${snapshot.machineName}): ${r.sampledFiles} of ${r.totalFiles} files sampled (${o.sample} %), ${r.restoredFiles} restored intact (${formatBytes(r.bytes)}) in ${formatDuration(Date.now() - started)}`);
        print(`compared byte for byte with the unchanged source: ${r.comparedFiles} file(s)${r.comparedFiles > 0 ? `, ${r.files.filter((f) => f.status === 'identical').length} identical` : ''}`);
        if (notCompared.length > 0) {
          print(`restored but not compared (changed at the source since the snapshot): ${notCompared.length} file(s)`);
          for (const f of notCompared.slice(0, 20)) print(`  ${f.path}: ${f.reason}`);
          if (notCompared.length > 20) print(`  … and ${notCompared.length - 20} more (see --json)`);
        }
        print(`result: ${r.ok ? 'SUCCESS' : `FAILED, ${r.problems.length} problem(s)`}; ${run.reportId ? `reported to the server (${run.reportId})` : 'NOT reported to the server'}`);
      }
      if (!r.ok) {
        process.stderr.write(`coffre: error: the restore test FAILED: ${r.problems.length} file(s) differ from their source or could not be restored (listed above)\n`);
        exitCode = EXIT.INTEGRITY;
      }
    }, 'read', 'read');
  });

program
  .command('daemon')
  .description('run the scheduled jobs of this machine, and a monthly restore test, until stopped (SIGTERM/SIGINT)')
  .option('--heartbeat-seconds <n>', 'seconds between heartbeats to the server (default $COFFRE_HEARTBEAT_SECONDS or 300)')
  .option('--restore-test-schedule <cron>', 'when to run the restore test, in this machine\'s time zone, or "off" (default $COFFRE_RESTORE_TEST_SCHEDULE or "0 12 1 * *")')
  .option('--restore-test-sample <percent>', 'percentage of files the restore test restores (default $COFFRE_RESTORE_TEST_SAMPLE or 5)')
  .action(async (o: { heartbeatSeconds?: string; restoreTestSchedule?: string; restoreTestSample?: string }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const settings = daemonSettings(o);
    const daemon = new Daemon(storeOf(g), { file: g.passphraseFile }, settings, jsonLogger());
    let code: number;
    try {
      code = await daemon.run();
    } catch (e) {
      if (e instanceof DaemonLockedError) {
        process.stderr.write(`coffre: error: ${e.message}\n`);
        exitCode = EXIT.LOCKED;
        return;
      }
      throw e;
    }
    // A backup interrupted after the stop's grace period may still hold worker threads.
    process.exit(code);
  });

/** Daemon settings: options, else environment variables, else defaults (docs/AGENT-SERVICE.md). */
function daemonSettings(o: { heartbeatSeconds?: string; restoreTestSchedule?: string; restoreTestSample?: string }): DaemonSettings {
  const seconds = (name: string, option: string | undefined, def: number, min: number, max: number): number => {
    const raw = option ?? process.env[name];
    if (raw === undefined || raw === '') return def * 1000;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) throw new CoffreError('BAD_REQUEST', `${option !== undefined ? 'the option' : name} must be a number of seconds between ${min} and ${max} (got "${raw}")`);
    return Math.round(v * 1000);
  };
  const schedule = (o.restoreTestSchedule ?? process.env.COFFRE_RESTORE_TEST_SCHEDULE ?? '0 12 1 * *').trim();
  const timezone = systemTimeZone();
  const sampleRaw = o.restoreTestSample ?? process.env.COFFRE_RESTORE_TEST_SAMPLE;
  const percent = sampleRaw === undefined || sampleRaw === '' ? DEFAULT_SAMPLE_PERCENT : percentArg(sampleRaw);
  const catchUpHours = process.env.COFFRE_CATCH_UP_HOURS;
  const catchUp = catchUpHours === undefined || catchUpHours === '' ? 168 : Number(catchUpHours);
  if (!Number.isFinite(catchUp) || catchUp < 0 || catchUp > 24 * 366) throw new CoffreError('BAD_REQUEST', `COFFRE_CATCH_UP_HOURS must be a number of hours between 0 and 8784 (got "${catchUpHours}")`);
  const retryBaseMs = seconds('COFFRE_RETRY_BASE_SECONDS', undefined, 60, 0.1, 86_400);
  return {
    heartbeatMs: seconds('COFFRE_HEARTBEAT_SECONDS', o.heartbeatSeconds, 300, 1, 86_400),
    retryBaseMs,
    retryMaxMs: Math.max(retryBaseMs, seconds('COFFRE_RETRY_MAX_SECONDS', undefined, 1800, 0.1, 86_400)),
    hookTimeoutMs: seconds('COFFRE_HOOK_TIMEOUT_SECONDS', undefined, 3600, 1, 7 * 86_400),
    stopGraceMs: seconds('COFFRE_STOP_GRACE_SECONDS', undefined, 600, 0, 86_400),
    catchUpMs: catchUp * 3_600_000,
    restoreTest: schedule.toLowerCase() === 'off' ? null : { schedule: parseSchedule(schedule, timezone), timezone, percent },
  };
}

function percentArg(v: string): number {
  const n = Number(v.replace(/%$/, ''));
  if (!Number.isFinite(n) || n <= 0 || n > 100) throw new CoffreError('BAD_REQUEST', `the sample must be a percentage above 0 and at most 100 (got "${v}")`);
  return n;
}

registerKeyCommands(program, storeOf);

const job = program.command('job').description('scheduled backup jobs of this machine (run by "coffre daemon")');

/** Tells the server the machine's schedule; a failure only delays it to the daemon's next start. */
async function tellServer(g: Globals, jobs: readonly BackupJob[], quiet: boolean): Promise<boolean> {
  const store = storeOf(g);
  if (!store.exists()) {
    if (!quiet) process.stderr.write('coffre: note: this machine is not enrolled yet; the server will learn the schedule when the daemon starts\n');
    return false;
  }
  const api = clientFor(store.load());
  try {
    await reportSchedule(api, jobs);
    return true;
  } catch (e) {
    if (!quiet) process.stderr.write(`coffre: warning: the server could not be told about the schedule (${(e as Error).message}); the daemon will tell it when it starts\n`);
    return false;
  } finally {
    api.close();
  }
}

job
  .command('add')
  .description('add (or replace) a scheduled backup job')
  .argument('<name>', 'job name (letters, digits, . _ -)')
  .requiredOption('--path <path...>', 'files or directories to back up')
  .requiredOption('--schedule <cron>', 'five-field cron expression in the time zone, e.g. "0 22 * * 1-5" (22:00 on weekdays) or @daily')
  .option('--exclude <pattern>', 'skip paths matching this pattern (repeatable)', collect, [])
  .option('--timezone <tz>', 'IANA time zone of the schedule (default: this machine\'s)')
  .option('--pre <command>', 'shell command run before the backup (e.g. dump a database); its failure fails the run')
  .option('--post <command>', 'shell command run after the backup, whatever happened')
  .option('--json', 'print the job as JSON')
  .action(async (name: string, o: { path: string[]; schedule: string; exclude: string[]; timezone?: string; pre?: string; post?: string; json?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const jobs = new JobStore(storeOf(g));
    const saved = jobs.put({
      name,
      paths: normalizeTargets(o.path),
      excludes: o.exclude,
      schedule: o.schedule,
      timezone: o.timezone ?? systemTimeZone(),
      ...(o.pre ? { pre: o.pre } : {}),
      ...(o.post ? { post: o.post } : {}),
    });
    const told = await tellServer(g, jobs.list(), o.json ?? false);
    const next = nextRunAfter(saved, new Date());
    if (o.json) {
      json({ job: saved, nextRun: next?.toISOString() ?? null, serverInformed: told });
      return;
    }
    print(`job ${saved.name} saved: ${saved.paths.join(', ')} on "${saved.schedule}" (${saved.timezone})`);
    print(next ? `next run: ${next.toISOString()}; "coffre daemon" runs it` : 'this schedule never fires');
  });

job
  .command('list')
  .description('list the scheduled jobs and their next run')
  .option('--json', 'JSON array')
  .action((o: { json?: boolean }, cmd: Command) => {
    const list = new JobStore(storeOf(cmd.optsWithGlobals<Globals>())).list();
    const now = new Date();
    const rows = list.map((j) => ({ ...j, nextRun: nextRunAfter(j, now)?.toISOString() ?? null }));
    if (o.json) {
      json(rows);
      return;
    }
    if (rows.length === 0) print('no jobs yet: coffre job add NAME --path PATH --schedule "0 22 * * *"');
    for (const r of rows) print(`${r.name}  ${r.schedule} (${r.timezone})  next ${r.nextRun ?? 'never'}  ${r.paths.join(', ')}${r.excludes.length ? `  excluding ${r.excludes.join(', ')}` : ''}`);
  });

job
  .command('remove')
  .description('remove a scheduled job (its snapshots stay)')
  .argument('<name>', 'job name')
  .option('--json', 'JSON output')
  .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const jobs = new JobStore(storeOf(g));
    jobs.remove(name);
    const told = await tellServer(g, jobs.list(), o.json ?? false);
    if (o.json) {
      json({ removed: name, serverInformed: told });
      return;
    }
    print(`job ${name} removed`);
  });

function nsToIso(ns: string): string {
  const v = BigInt(ns);
  const ms = Number(v / 1_000_000n);
  const frac = (v % 1_000_000_000n).toString().padStart(9, '0');
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
}

function scanTotals(paths: string[], excludes: string[]): Promise<{ files: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./scan.js', import.meta.url), { workerData: { paths, excludes } });
    w.unref();
    w.once('message', resolve);
    w.once('error', reject);
  });
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      exitCode = e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    } else {
      process.stderr.write(errorLine(e) + '\n');
      if (process.env.COFFRE_DEBUG) console.error(e);
      exitCode = exitCodeFor(e);
    }
  }
  process.exitCode = exitCode;
}

await main();
