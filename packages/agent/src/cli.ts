#!/usr/bin/env node
import { Worker } from 'node:worker_threads';
import { Command, CommanderError, Option } from 'commander';
import { COFFRE_VERSION, CoffreError, isCoffreError, nextRunAfter, nodeNameBytes, type ChunkId, type TreeNode } from '@coffre/core';
import { ConfigStore, resolveConfigDir } from './config.js';
import { backup, normalizeTargets, type BackupWarning } from './engine/backup.js';
import { restore } from './engine/restore.js';
import { verify } from './engine/verify.js';
import type { Repository } from './engine/repo.js';
import { EXIT, Progress, errorLine, exitCodeFor, formatBytes, formatDuration } from './output.js';
import { JobStore, reportSchedule, systemTimeZone, type BackupJob } from './jobs.js';
import { clientFor, enroll, openRepository } from './session.js';

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

/**
 * Reports a backup run to the server (counts, result, an error code; never a path), so the
 * console and the observatory know about failures too. Best effort: a report that cannot
 * be sent never changes the backup's outcome or exit code.
 */
async function reportRun(
  repo: Repository,
  r: { startedAt: Date; result: 'success' | 'partial' | 'failed'; files: number; bytes: number; addedBytes: number; warnings: number; snapshotId?: string; errorCode?: string },
): Promise<void> {
  const { startedAt, ...rest } = r;
  const errorCode = rest.errorCode && /^[A-Z_]{2,40}$/.test(rest.errorCode) ? rest.errorCode : rest.errorCode ? 'ERROR' : undefined;
  try {
    await repo.api.json('POST', '/runs', { ...rest, ...(errorCode ? { errorCode } : {}), startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString() });
  } catch (e) {
    // The server may be the reason the backup failed.
    if (process.env.COFFRE_DEBUG === '1') process.stderr.write(`coffre: the run report was not sent: ${(e as Error).message}\n`);
  }
}

async function withRepo<T>(g: Globals, fn: (r: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepository(storeOf(g), { file: g.passphraseFile });
  try {
    return await fn(repo);
  } finally {
    repo.api.close();
  }
}

let exitCode: number = EXIT.OK;

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
  .requiredOption('--token <token>', 'one-time enrollment token')
  .option('--fingerprint <sha256>', "SHA-256 fingerprint of the server's TLS certificate (hex, colons optional)")
  .option('--machine <name>', 'name of this machine (default: host name)')
  .option('--json', 'machine-readable output')
  .action(async (o: { server: string; token: string; fingerprint?: string; machine?: string; json?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const r = await enroll(storeOf(g), { server: o.server, token: o.token, fingerprint: o.fingerprint, machine: o.machine, pass: { file: g.passphraseFile } });
    if (o.json) {
      json({
        machineId: r.config.machineId,
        machineName: r.config.machineName,
        customerId: r.config.customerId,
        customerName: r.config.customerName,
        createdRepository: r.createdRepository,
        recoveryKey: r.recoveryKey,
        keyError: r.keyError ? { code: r.keyError.code, message: r.keyError.message } : null,
      });
    } else {
      print(`Enrolled machine "${r.config.machineName}" for customer "${r.config.customerName}" on ${r.config.server}`);
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
        print("Opened the customer's existing encryption key with the passphrase.");
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
      const warnings: BackupWarning[] = [];
      const startedAt = new Date();
      const res = await backup(repo, {
        paths: targets,
        excludes: o.exclude,
        tags: o.tag,
        force: o.force ?? false,
        compressionLevel: o.compression,
        reporter: {
          progress: (p) => progress.update({ bytes: p.bytes, files: p.files, totalBytes: total?.bytes, totalFiles: total?.files }),
          warning: (w) => {
            warnings.push(w);
            if (!o.json) process.stderr.write(`coffre: warning: ${w.path}: ${w.message}\n`);
          },
        },
      }).catch(async (e: unknown) => {
        progress.stop();
        await reportRun(repo, { startedAt, result: 'failed', files: 0, bytes: 0, addedBytes: 0, warnings: warnings.length, errorCode: isCoffreError(e) ? e.code : 'ERROR' });
        throw e;
      });
      progress.stop();
      const incomplete = res.warnings.some((w) => w.kind === 'unreadable' || w.kind === 'changed');
      if (incomplete) exitCode = EXIT.INCOMPLETE;
      const s = res.stats;
      await reportRun(repo, { startedAt, result: incomplete ? 'partial' : 'success', files: s.files, bytes: s.bytes, addedBytes: s.addedBytes, warnings: res.warnings.length, snapshotId: res.snapshot.id });
      if (o.json) {
        json({ snapshot: res.snapshot.id, time: res.snapshot.time, parent: res.parent, paths: targets, stats: s, warnings: res.warnings, incomplete });
        return;
      }
      print(`snapshot ${res.snapshot.id.slice(0, 8)} saved (${res.snapshot.id}) at ${res.snapshot.time}`);
      print(`files: ${s.newFiles} new, ${s.changedFiles} changed, ${s.unchangedFiles} unchanged; ${s.dirs} directories, ${s.symlinks} symbolic links`);
      print(`processed ${formatBytes(s.bytes)} in ${formatDuration(s.durationMs)}; added ${formatBytes(s.addedBytes)} (${s.addedChunks} chunks) to the repository`);
      if (res.warnings.length) print(`${res.warnings.length} warning(s); ${incomplete ? 'the snapshot is INCOMPLETE: some files could not be read' : 'nothing was left out that could be read'}`);
    });
  });

program
  .command('snapshots')
  .description("list the customer's snapshots (all machines)")
  .option('--machine <name>', 'only this machine')
  .option('--json', 'JSON array')
  .action(async (o: { machine?: string; json?: boolean }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const list = await repo.listSnapshots(o.machine);
      const rows = list.map((s) => {
        const sec = repo.open(s);
        return {
          id: s.id,
          shortId: s.id.slice(0, 8),
          time: s.time,
          machine: s.machineName,
          machineId: s.machineId,
          hostname: sec.hostname,
          paths: sec.paths,
          tags: sec.tags,
          parent: s.manifest.parent,
          files: sec.stats.files,
          size: s.manifest.logicalSize,
          stats: sec.stats,
        };
      });
      if (o.json) return json(rows);
      if (rows.length === 0) return print('no snapshots');
      print(['ID      ', 'TIME                    ', 'MACHINE         ', 'FILES    ', 'SIZE       ', 'PATHS'].join(' '));
      for (const r of rows) {
        print([r.shortId, r.time.padEnd(24), r.machine.padEnd(16), String(r.files).padEnd(9), formatBytes(r.size).padEnd(11), r.paths.join(' ')].join(' '));
      }
    });
  });

program
  .command('ls')
  .description('list the contents of a snapshot')
  .argument('<snapshot>', 'snapshot id (or prefix), or "latest"')
  .argument('[path]', 'only this directory or file (absolute path as backed up)')
  .option('-l, --long', 'show type, mode, size and modification time')
  .option('--machine <name>', 'with "latest": latest of this machine')
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
    });
  });

program
  .command('restore')
  .description('restore a snapshot, entirely or selectively, here or on another machine')
  .argument('<snapshot>', 'snapshot id (or prefix), or "latest"')
  .requiredOption('--target <dir>', 'directory to restore into (original paths are re-created below it)')
  .option('--include <pattern>', 'restore only paths matching this pattern (repeatable)', collect, [])
  .option('--machine <name>', 'with "latest": latest snapshot of this machine')
  .option('--json', 'print a JSON summary')
  .option('-q, --quiet', 'no progress output')
  .action(async (ref: string, o: { target: string; include: string[]; machine?: string; json?: boolean; quiet?: boolean }, cmd: Command) => {
    await withRepo(cmd.optsWithGlobals<Globals>(), async (repo) => {
      const snap = await repo.findSnapshot(ref, o.machine);
      const progress = Progress.for('restore', o);
      const started = Date.now();
      const r = await restore(repo, { snapshot: snap, target: o.target, includes: o.include, reporter: { progress: (p) => progress.update(p) } });
      progress.stop();
      if (o.json) json({ snapshot: snap.id, target: o.target, ...r, durationMs: Date.now() - started });
      else {
        print(`restored snapshot ${snap.id.slice(0, 8)} to ${o.target}: ${r.files} files (${formatBytes(r.bytes)}), ${r.dirs} directories, ${r.symlinks} symbolic links in ${formatDuration(Date.now() - started)}`);
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
    });
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
    });
  });

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
