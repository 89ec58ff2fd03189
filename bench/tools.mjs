// Tool adapters: how to set up a fresh repository, back up and restore with
// coffre, restic and borg. Each adapter exposes:
//   detect()                    -> {available, version, reason, notes[]}
//   open(ctx, set)              -> instance (fresh repository + client state)
//   backupCmd(inst, src, step)  -> {cmd, args, env, cwd}
//   restoreCmd(inst, target)    -> {cmd, args, env, cwd}
//   afterBackup(inst, step, res)   (optional bookkeeping)
//   storedBytes(inst), clientStateBytes(inst)
//   serverMemory(inst)          (coffre only)
//   backendStats(inst)          (coffre only) database vs object bytes
//   servicesCpuSeconds()        (coffre-pg-s3 only) CPU of the PostgreSQL and Swift processes
//   summary(stdoutFile)         -> parsed tool output or null
//   close(inst)
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseEnv, duBytes, procTreeCpuSeconds, procTreeMemory, run, stopGroup, tail, tailFile } from './measure.mjs';
import {
  createDatabase, databaseSizes, deletePrefix, dropDatabase, ensureBucket, freshName, pgS3Config, pgVersion, prefixBytes,
  redactUrl, s3Client, servicesCpuSeconds,
} from './backends.mjs';

const PASSWORD = 'bench-passphrase-not-secret';

function freshDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function which(cmd) {
  const r = run('sh', ['-c', `command -v ${cmd}`], { allowFail: true });
  return r.status === 0 ? r.stdout.trim() : null;
}

function readJsonLoose(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    // JSON lines: take the last parseable line
    const lines = text.split('\n').reverse();
    for (const l of lines) {
      try {
        return JSON.parse(l);
      } catch {
        // keep looking
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------- restic

export const restic = {
  name: 'restic',
  detect() {
    const bin = which('restic');
    if (!bin) return { available: false, reason: 'restic not found on PATH (run.sh installs the Debian package)' };
    const v = run('restic', ['version'], { allowFail: true });
    const help = run('restic', ['init', '--help'], { allowFail: true });
    this.hasRepoVersion = /repository-version/.test(help.stdout || '');
    return {
      available: true, bin, version: (v.stdout || '').trim(),
      notes: ['restic: default compression (auto = zstd fastest) on a version-2 repository'],
    };
  },
  open(ctx, set) {
    const repo = path.join(ctx.dir, 'repos', `restic-${set}`);
    const state = freshDir(path.join(ctx.dir, 'state', `restic-${set}`));
    fs.rmSync(repo, { recursive: true, force: true });
    const env = { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: path.join(state, 'cache') };
    const args = ['init', '--repo', repo];
    if (this.hasRepoVersion) args.push('--repository-version', '2');
    run('restic', args, { env });
    const cfg = run('restic', ['--repo', repo, 'cat', 'config'], { env, allowFail: true });
    let repoVersion = null;
    try {
      repoVersion = JSON.parse(cfg.stdout).version;
    } catch {
      // unknown
    }
    return { tool: 'restic', set, repo, state, env, info: { repository_version: repoVersion } };
  },
  backupCmd(inst, src) {
    return { cmd: 'restic', args: ['--repo', inst.repo, 'backup', '--json', src], env: inst.env };
  },
  restoreCmd(inst, target) {
    return { cmd: 'restic', args: ['--repo', inst.repo, 'restore', 'latest', '--target', target], env: inst.env };
  },
  storedBytes: (inst) => duBytes(inst.repo),
  clientStateBytes: (inst) => duBytes(inst.state),
  summary: (file) => readJsonLoose(file),
  close() {},
};

// ---------------------------------------------------------------- borg

export const borg = {
  name: 'borg',
  detect() {
    const bin = which('borg');
    if (!bin) return { available: false, reason: 'borg not found on PATH (run.sh installs the Debian package borgbackup)' };
    const v = (run('borg', ['--version'], { allowFail: true }).stdout || '').trim();
    const m = v.match(/(\d+)\.(\d+)/);
    if (m && Number(m[1]) !== 1) return { available: false, reason: `unsupported borg version "${v}" (need 1.x)` };
    this.encryption = process.env.BENCH_BORG_ENCRYPTION || 'repokey-blake2';
    this.compression = process.env.BENCH_BORG_COMPRESSION || 'lz4';
    return {
      available: true, bin, version: v,
      notes: [`borg: --encryption=${this.encryption}, --compression ${this.compression} (borg 1.x default compression is lz4)`],
    };
  },
  open(ctx, set) {
    const repo = path.join(ctx.dir, 'repos', `borg-${set}`);
    const state = freshDir(path.join(ctx.dir, 'state', `borg-${set}`));
    fs.rmSync(repo, { recursive: true, force: true });
    const env = {
      BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: state, BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'no', BORG_DISPLAY_PASSPHRASE: 'no',
    };
    run('borg', ['init', `--encryption=${this.encryption}`, repo], { env });
    return { tool: 'borg', set, repo, state, env, lastArchive: null, info: { encryption: this.encryption } };
  },
  backupCmd(inst, src, step) {
    return {
      cmd: 'borg', args: ['create', '--compression', this.compression, '--json', `${inst.repo}::${step}`, src],
      env: inst.env,
    };
  },
  afterBackup(inst, step, res) {
    if (res.ok) inst.lastArchive = step;
  },
  restoreCmd(inst, target) {
    if (!inst.lastArchive) throw new Error('no archive to extract');
    return { cmd: 'borg', args: ['extract', `${inst.repo}::${inst.lastArchive}`], env: inst.env, cwd: target };
  },
  storedBytes: (inst) => duBytes(inst.repo),
  clientStateBytes: (inst) => duBytes(inst.state),
  summary(file) {
    const j = readJsonLoose(file);
    return j && j.archive ? { stats: j.archive.stats, cache: j.cache && j.cache.stats } : j;
  },
  close() {},
};

// ---------------------------------------------------------------- coffre

const FP_RE = /TLS certificate SHA-256 fingerprint:\s*([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+)/;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * coffre adapters. `embedded`: coffre-server on its defaults (SQLite file + filesystem store
 * in its data directory). `postgres-s3`: the same server on a fresh PostgreSQL database and
 * a fresh S3 bucket prefix per dataset (bench/backends.mjs), chosen through its environment
 * (COFFRE_DATABASE_URL, COFFRE_STORE_URL, COFFRE_S3_ENDPOINT, AWS_*), the data directory
 * keeping only settings, secrets and TLS.
 */
function makeCoffre(name, backend) {
  const pgS3 = backend === 'postgres-s3';
  return {
    name,
    backend,
    async detect(ctx) {
      const agent = process.env.BENCH_COFFRE_BIN || path.join(ctx.root, 'bin', 'coffre');
      const server = process.env.BENCH_COFFRE_SERVER_BIN || path.join(ctx.root, 'bin', 'coffre-server');
      this.agent = agent;
      this.server = server;
      const missing = [agent, server].filter((f) => {
        try {
          fs.accessSync(f, fs.constants.X_OK);
          return false;
        } catch {
          return true;
        }
      });
      if (missing.length) {
        return {
          available: false,
          reason: `${missing.join(' and ')} missing or not executable — build coffre first (npm run build); ` +
            `${name} is skipped`,
        };
      }
      const v = run(agent, ['--version'], { allowFail: true, timeoutMs: 30_000 });
      const version = v.status === 0 ? (v.stdout || '').trim().split('\n')[0] : null;
      const rev = run('git', ['-C', ctx.root, 'describe', '--always', '--dirty'], { allowFail: true });
      const d = {
        available: true, bin: agent, version: version || `(no --version) git ${(rev.stdout || '').trim()}`,
        git: (rev.stdout || '').trim(), backend,
        notes: [`${name}: server runs on the same machine (127.0.0.1) and shares its 2 CPUs with the agent; ` +
          (pgS3
            ? 'stored size = bytes of the objects under its S3 prefix (the PostgreSQL database is reported separately below); '
            : 'stored size = du -sb of the server data dir; ') +
          'agent RSS from GNU time, server RSS from /proc VmHWM'],
      };
      if (!pgS3) return d;
      const cfg = pgS3Config();
      this.cfg = cfg;
      const down = (what, err, script) => ({
        available: false, required: true,
        reason: `${what} cannot be used (${String(err && err.message ? err.message : err).split('\n')[0]}); ` +
          `start it with bash scripts/services/${script} (scripts/services/README.md) or set the BENCH_* settings`,
      });
      let pgv;
      try {
        pgv = await pgVersion(cfg.pgUrl);
      } catch (err) {
        return down(`PostgreSQL at ${redactUrl(cfg.pgUrl)}`, err, 'start-postgres.sh');
      }
      try {
        this.s3c = await s3Client(cfg);
        if (await ensureBucket(this.s3c, cfg.bucket)) d.notes.push(`${name}: created bucket ${cfg.bucket}`);
      } catch (err) {
        return down(`S3 at ${cfg.s3Endpoint} (bucket ${cfg.bucket})`, err, 'start-swift-s3.sh');
      }
      this.runId = freshName('run');
      d.version += ` on PostgreSQL ${pgv.split(' ')[0]} + S3 (${cfg.s3Endpoint}, bucket ${cfg.bucket})`;
      d.postgres = { url: redactUrl(cfg.pgUrl), version: pgv };
      d.s3 = { endpoint: cfg.s3Endpoint, bucket: cfg.bucket, prefix_root: `bench/${this.runId}/`, region: cfg.region };
      d.notes.push(`${name}: PostgreSQL ${pgv} at ${redactUrl(cfg.pgUrl)} (a fresh database per dataset), S3 at ` +
        `${cfg.s3Endpoint} bucket ${cfg.bucket} prefix bench/${this.runId}/DATASET/; the CPU that PostgreSQL and ` +
        'Swift use during a step (all their sessions) is shown as "+N pg/s3" and not counted as other load');
      return d;
    },
    async open(ctx, set) {
      const inst = { tool: name, set, info: {} };
      try {
        return await this.openInner(ctx, set, inst);
      } catch (err) {
        // Nothing left behind by a failed set-up: the server, and on PostgreSQL + S3 the database and objects.
        if (inst.child) {
          await stopGroup(inst.child);
          ctx.servers.delete(inst.child);
        }
        if (pgS3 && process.env.BENCH_KEEP !== '1') {
          if (inst.dbName) await dropDatabase(this.cfg.pgUrl, inst.dbName).catch(() => undefined);
          if (inst.prefix) await deletePrefix(inst.s3c, inst.bucket, `${inst.prefix}/`).catch(() => undefined);
        }
        throw err;
      }
    },
    async openInner(ctx, set, inst) {
      const dataDir = path.join(ctx.dir, 'repos', `${name}-${set}`);
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.mkdirSync(dataDir, { recursive: true });
      const state = freshDir(path.join(ctx.dir, 'state', `${name}-${set}`));
      const logFile = path.join(ctx.logs, `${name}-server-${set}.log`);
      Object.assign(inst, { repo: dataDir, state, logFile });
      let serverEnv = {};
      if (pgS3) {
        const cfg = this.cfg;
        inst.dbName = freshName(`coffre_bench_${set}`);
        inst.dbUrl = await createDatabase(cfg.pgUrl, inst.dbName);
        inst.prefix = `bench/${this.runId}/${set}`;
        inst.s3c = this.s3c;
        inst.bucket = cfg.bucket;
        serverEnv = {
          COFFRE_DATABASE_URL: inst.dbUrl, COFFRE_STORE_URL: `s3://${cfg.bucket}/${inst.prefix}`, COFFRE_S3_ENDPOINT: cfg.s3Endpoint,
          AWS_ACCESS_KEY_ID: cfg.accessKey, AWS_SECRET_ACCESS_KEY: cfg.secretKey, AWS_REGION: cfg.region,
        };
        Object.assign(inst.info, { database: inst.dbName, store: `s3://${cfg.bucket}/${inst.prefix}`, s3_endpoint: cfg.s3Endpoint });
      }
      const port = await freePort();
      inst.port = port;
      inst.info.port = port;
      const fd = fs.openSync(logFile, 'w');
      const child = spawn(this.server, ['start', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
        cwd: ctx.root, env: { ...baseEnv(), ...serverEnv }, stdio: ['ignore', fd, fd], detached: true,
      });
      fs.closeSync(fd);
      ctx.servers.add(child);
      inst.child = child;
      let exited = null;
      child.on('exit', (code, sig) => {
        exited = { code, sig };
        ctx.servers.delete(child);
      });
      const deadline = Date.now() + Number(process.env.BENCH_COFFRE_START_TIMEOUT || 120) * 1000;
      let fp = null;
      while (!fp) {
        const m = fs.readFileSync(logFile, 'utf8').match(FP_RE);
        if (m) fp = m[1];
        else if (exited) {
          throw new Error(`coffre-server exited (code ${exited.code}, signal ${exited.sig}) before printing its ` +
            `TLS fingerprint:\n${tailFile(logFile)}`);
        } else if (Date.now() > deadline) {
          await stopGroup(child);
          throw new Error(`coffre-server did not print "TLS certificate SHA-256 fingerprint: ..." in time:\n` +
            tailFile(logFile));
        } else await sleep(100);
      }
      inst.fingerprint = fp;
      const customer = `bench-${set}`;
      const cmd = (args) => {
        const r = run(this.server, args, { env: serverEnv, allowFail: true, timeoutMs: 120_000, cwd: ctx.root });
        if (r.status !== 0) {
          throw new Error(`coffre-server ${args.join(' ')} failed (exit ${r.status}):\n${tail(r.stderr)}${tail(r.stdout)}`);
        }
        return r.stdout;
      };
      cmd(['customer', 'create', customer, '--data-dir', dataDir]);
      const token = cmd(['enroll-token', 'create', '--customer', customer, '--data-dir', dataDir])
        .trim().split('\n').filter(Boolean).pop();
      if (!token) throw new Error('coffre-server enroll-token create printed no token');
      inst.env = { COFFRE_CONFIG_DIR: state, COFFRE_PASSPHRASE: PASSWORD };
      const e = run(this.agent, ['enroll', '--server', `https://127.0.0.1:${port}`, '--token', token,
        '--fingerprint', fp, '--machine', `bench-${set}`], { env: inst.env, allowFail: true, timeoutMs: 300_000 });
      if (e.status !== 0) throw new Error(`coffre enroll failed (exit ${e.status}):\n${tail(e.stderr)}${tail(e.stdout)}`);
      if (pgS3) inst.info.database_at_setup = await databaseSizes(inst.dbUrl);
      return inst;
    },
    backupCmd(inst, src) {
      return { cmd: this.agent, args: ['backup', src, '--json'], env: inst.env };
    },
    restoreCmd(inst, target) {
      return { cmd: this.agent, args: ['restore', 'latest', '--target', target], env: inst.env };
    },
    async storedBytes(inst) {
      if (!pgS3) return duBytes(inst.repo);
      return (await prefixBytes(inst.s3c, inst.bucket, `${inst.prefix}/`)).bytes;
    },
    /** Where the stored bytes are: database vs objects (recorded with every backup step). */
    async backendStats(inst) {
      if (!pgS3) {
        const size = (f) => {
          try {
            return fs.statSync(f).size;
          } catch {
            return 0;
          }
        };
        const db = path.join(inst.repo, 'coffre.db');
        return {
          database_bytes: size(db) + size(`${db}-wal`) + size(`${db}-shm`), objects_bytes: duBytes(path.join(inst.repo, 'objects')),
        };
      }
      const objs = await prefixBytes(inst.s3c, inst.bucket, `${inst.prefix}/`);
      return { ...(await databaseSizes(inst.dbUrl)), objects_bytes: objs.bytes, objects: objs.objects, data_dir_bytes: duBytes(inst.repo) };
    },
    clientStateBytes: (inst) => duBytes(inst.state),
    serverMemory(inst) {
      if (!inst.child || inst.child.exitCode !== null || inst.child.signalCode !== null) return null;
      return procTreeMemory(inst.child.pid);
    },
    serverCpuSeconds(inst) {
      if (!inst.child || inst.child.exitCode !== null || inst.child.signalCode !== null) return null;
      return procTreeCpuSeconds(inst.child.pid);
    },
    servicesCpuSeconds: pgS3 ? () => servicesCpuSeconds() : undefined,
    summary: (file) => readJsonLoose(file),
    async close(inst, ctx, { keep = false } = {}) {
      const mem = this.serverMemory(inst);
      await stopGroup(inst.child);
      if (ctx) ctx.servers.delete(inst.child);
      if (pgS3) {
        try {
          inst.final = await this.backendStats(inst);
        } catch (err) {
          inst.final = { error: err.message };
        }
        if (!keep) {
          await dropDatabase(this.cfg.pgUrl, inst.dbName);
          inst.final.deleted_objects = await deletePrefix(inst.s3c, inst.bucket, `${inst.prefix}/`);
        }
      }
      return mem;
    },
  };
}

export const coffre = makeCoffre('coffre', 'embedded');
export const coffrePgS3 = makeCoffre('coffre-pg-s3', 'postgres-s3');

export const ADAPTERS = { coffre, 'coffre-pg-s3': coffrePgS3, restic, borg };
