import { assertTimeZone, parseSchedule } from '@coffre/core';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createFileExclusive, writeFileAtomic } from './fsutil.js';
import { loadTls, ensureSelfSigned, type TlsMaterial } from './tls.js';
import { isoNow, systemClock } from './types.js';

/**
 * The data directory holds everything a server instance owns:
 *
 *   DIR/coffre.db      metadata (SQLite, WAL) — unless `database` points to PostgreSQL
 *   DIR/objects/       the filesystem object store (packs, snapshot refs) — unless `store` is s3://…
 *   DIR/tls/           cert.pem + key.pem (0600), self-signed on first use
 *   DIR/server.json    settings (ServerSettings)
 *   DIR/secrets/       server.key (0600): seals TOTP secrets, derives CSRF tokens
 *   DIR/audit-head.json  last audit entry written (seq, hash): detects a truncated trail
 *                      (with PostgreSQL, in the object store instead: shared by every instance)
 *   DIR/server.lock    which process uses the data (backends/dir-lock.ts)
 *
 * With PostgreSQL and S3 the directory holds only settings, the TLS material and the
 * secrets: a copy of it is a second instance of the same installation.
 */
export interface DataDirPaths {
  readonly root: string;
  readonly db: string;
  readonly objects: string;
  readonly tlsDir: string;
  readonly settings: string;
  readonly secrets: string;
  readonly auditHead: string;
}

export interface ServerSettings {
  readonly v: 1;
  readonly createdAt: string;
  /** postgres://… metadata database; null = DIR/coffre.db (SQLite). `COFFRE_DATABASE_URL` and `start --database` override it. */
  readonly database: string | null;
  /** s3://BUCKET[/PREFIX] object store; null = DIR/objects. `COFFRE_STORE_URL` and `start --store` override it. */
  readonly store: string | null;
  /** Endpoint of an S3-compatible service (path-style addressing); null = AWS. `COFFRE_S3_ENDPOINT` overrides it. */
  readonly s3Endpoint: string | null;
  /** Default lifetime of enrollment tokens. */
  readonly enrollTokenTtlHours: number;
  /** Certificate and key given with --tls-cert/--tls-key (absolute paths); null = DIR/tls. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  /** A session ends after this long without a request… */
  readonly sessionIdleMinutes: number;
  /** …and in any case this long after sign-in. */
  readonly sessionMaxHours: number;
  /** Destructive actions need a second-factor proof at most this old. */
  readonly reauthMinutes: number;
  /** Audit entries older than this are purged (the chain keeps an anchor). */
  readonly auditRetentionDays: number;
  /** A scheduled backup counts as missed when nothing succeeded this long after its time. */
  readonly observatoryGraceMinutes: number;
  /** Cron schedules (Europe/Paris) replacing jobs' defaults, by job name, e.g. {"observatory": "0 7 * * *"}. */
  readonly jobSchedules: Readonly<Record<string, string>>;
  /** Outgoing email: SMTP URL (`COFFRE_SMTP_URL` overrides it) and sender address. */
  readonly smtp: SmtpSettings;
  /** While an alert stays open, a reminder goes out this often. */
  readonly alertReminderHours: number;
  /** Temporary data (abandoned uploads, unindexed objects) are deleted after this long (R8: at most 720 = 30 days). */
  readonly tempMaxAgeHours: number;
  /** Removed snapshots stay in the recycle bin this long (an administrator can restore them). */
  readonly recycleBinDays: number;
  /** Snapshots younger than this can be removed by nobody (retention, administrators). */
  readonly protectDays: number;
  /** Calendar of the retention rules (a day, a week… in the practices' time zone). */
  readonly retentionTimeZone: string;
  /** Every stored pack is re-hashed once within this many days (the verify job). */
  readonly verifyPeriodDays: number;
  /** Garbage collection (docs/GC.md): a chunk no snapshot needs is kept until untouched this long. */
  readonly gcGraceHours: number;
  /** A pack whose live bytes are below this fraction of its size is rewritten (0 disables repacking). */
  readonly gcRepackBelow: number;
  /** A repacked pack's old object stays readable this long (restores in flight). */
  readonly gcRepackDeleteDelayHours: number;
  /** The console's public origin (https://host[:port]), the WebAuthn relying party; null = the request's Host. */
  readonly publicUrl: string | null;
  /** Several instances: the one running the scheduled jobs holds a lease this long, renewed a third of the way; another takes over this long after it dies. */
  readonly jobLeaseSeconds: number;
  /** Guessing protection (docs/SECURITY.md): failures before delays start, and before a 15-minute lock, per account and per IP. */
  readonly authThrottle: AuthThrottleSettings;
  /** On a replica: what the primary deleted stays this long before the replica deletes it too (docs/CONTINUITY.md). */
  readonly replicaDeleteDelayDays: number;
  /** The operator is alerted when a customer's replica is further behind than this. */
  readonly replicaLagAlertHours: number;
}

export interface SmtpSettings {
  /** smtp://host:port (STARTTLS when offered) or smtps://host:port; null = no email until set. */
  readonly url: string | null;
  /** The From address, e.g. "coffre <sauvegardes@example.fr>". */
  readonly from: string;
  /**
   * Send only over an encrypted connection (STARTTLS required with smtp://); null = on when
   * the SMTP URL carries a password, so credentials never cross the network in clear.
   */
  readonly requireTLS: boolean | null;
}
export const DEFAULT_SMTP: SmtpSettings = { url: null, from: 'coffre <no-reply@coffre.invalid>', requireTLS: null };

const SMTP_URL_RE = /^smtps?:\/\/[^\s/]+/;

/**
 * The SMTP URL in effect: `COFFRE_SMTP_URL`, else the settings'. A malformed one is refused
 * with a message that never repeats it (it may hold a password).
 */
export function smtpUrl(settings: Pick<ServerSettings, 'smtp'>): string | null {
  const env = process.env.COFFRE_SMTP_URL;
  if (env) {
    if (!SMTP_URL_RE.test(env)) throw new SettingsError('COFFRE_SMTP_URL must be smtp://[user:password@]host:port or smtps://… (value not shown: it may hold a password)');
    return env;
  }
  return settings.smtp.url;
}

export interface AuthThrottleSettings {
  readonly accountFreeFailures: number;
  readonly accountLockAfter: number;
  readonly ipFreeFailures: number;
  readonly ipLockAfter: number;
}
export const DEFAULT_AUTH_THROTTLE: AuthThrottleSettings = { accountFreeFailures: 3, accountLockAfter: 10, ipFreeFailures: 10, ipLockAfter: 30 };

export const DEFAULT_ENROLL_TTL_HOURS = 24;
export const SETTINGS_DEFAULTS = { sessionIdleMinutes: 30, sessionMaxHours: 12, reauthMinutes: 5, auditRetentionDays: 365, observatoryGraceMinutes: 180, alertReminderHours: 24, tempMaxAgeHours: 24, recycleBinDays: 14, protectDays: 7, verifyPeriodDays: 30, gcGraceHours: 24, gcRepackBelow: 0.5, gcRepackDeleteDelayHours: 24, publicUrl: null, jobLeaseSeconds: 30, replicaDeleteDelayDays: 14, replicaLagAlertHours: 6 } as const;

export function dataDirPaths(dir: string): DataDirPaths {
  const root = path.resolve(dir);
  return {
    root,
    db: path.join(root, 'coffre.db'),
    objects: path.join(root, 'objects'),
    tlsDir: path.join(root, 'tls'),
    settings: path.join(root, 'server.json'),
    secrets: path.join(root, 'secrets'),
    auditHead: path.join(root, 'audit-head.json'),
  };
}

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

function parseSettings(text: string, file: string): ServerSettings {
  let s: Partial<ServerSettings>;
  try {
    s = JSON.parse(text) as Partial<ServerSettings>;
  } catch {
    throw new SettingsError(`${file} is not valid JSON`);
  }
  const ttl = s.enrollTokenTtlHours ?? DEFAULT_ENROLL_TTL_HOURS;
  if (s.v !== 1) throw new SettingsError(`${file}: unsupported settings version`);
  if (!Number.isFinite(ttl) || ttl <= 0) throw new SettingsError(`${file}: enrollTokenTtlHours must be a positive number`);
  const tls = s.tls ?? null;
  if (tls !== null && (typeof tls.cert !== 'string' || typeof tls.key !== 'string')) throw new SettingsError(`${file}: tls must be null or {cert, key}`);
  const positive = (key: 'sessionIdleMinutes' | 'sessionMaxHours' | 'reauthMinutes' | 'auditRetentionDays' | 'observatoryGraceMinutes' | 'alertReminderHours' | 'tempMaxAgeHours' | 'recycleBinDays' | 'protectDays' | 'verifyPeriodDays' | 'gcGraceHours' | 'gcRepackDeleteDelayHours' | 'jobLeaseSeconds' | 'replicaDeleteDelayDays' | 'replicaLagAlertHours'): number => {
    const v = s[key] ?? SETTINGS_DEFAULTS[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new SettingsError(`${file}: ${key} must be a positive number`);
    return v;
  };
  const publicUrl = s.publicUrl ?? null;
  if (publicUrl !== null && (typeof publicUrl !== 'string' || !/^https:\/\/[^/\s]+$/.test(publicUrl))) {
    throw new SettingsError(`${file}: publicUrl must be null or https://host[:port] without a path`);
  }
  const t = { ...DEFAULT_AUTH_THROTTLE, ...(s.authThrottle ?? {}) };
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isInteger(v) || (v as number) < 1) throw new SettingsError(`${file}: authThrottle.${k} must be a positive integer`);
  }
  if (t.accountLockAfter <= t.accountFreeFailures || t.ipLockAfter <= t.ipFreeFailures) throw new SettingsError(`${file}: authThrottle lock thresholds must exceed the free failures`);
  const jobSchedules = s.jobSchedules ?? {};
  if (typeof jobSchedules !== 'object' || jobSchedules === null || Array.isArray(jobSchedules)) throw new SettingsError(`${file}: jobSchedules must be an object {"job": "cron"}`);
  for (const [name, cron] of Object.entries(jobSchedules)) {
    if (!JOB_NAMES.includes(name)) throw new SettingsError(`${file}: jobSchedules.${name}: no such job (jobs: ${JOB_NAMES.join(', ')})`);
    try {
      parseSchedule(String(cron), 'Europe/Paris');
    } catch (e) {
      throw new SettingsError(`${file}: jobSchedules.${name}: ${(e as Error).message}`);
    }
  }
  if (s.smtp !== undefined && (typeof s.smtp !== 'object' || s.smtp === null || Array.isArray(s.smtp))) throw new SettingsError(`${file}: smtp must be an object {"url": "smtp://host:port", "from": "…"}`);
  const smtp = { ...DEFAULT_SMTP, ...(s.smtp ?? {}) };
  if (smtp.url !== null && (typeof smtp.url !== 'string' || !SMTP_URL_RE.test(smtp.url))) throw new SettingsError(`${file}: smtp.url must be null or smtp://host:port or smtps://host:port`);
  if (typeof smtp.from !== 'string' || !smtp.from.includes('@')) throw new SettingsError(`${file}: smtp.from must be an email address`);
  if (smtp.requireTLS !== null && typeof smtp.requireTLS !== 'boolean') throw new SettingsError(`${file}: smtp.requireTLS must be true, false or null (null: on when the SMTP URL has a password)`);
  const nullableString = (key: 'database' | 'store' | 's3Endpoint'): string | null => {
    const v = s[key] ?? null;
    if (v !== null && (typeof v !== 'string' || v.trim() === '')) throw new SettingsError(`${file}: ${key} must be null or a non-empty string`);
    return v;
  };
  return {
    v: 1,
    createdAt: String(s.createdAt ?? ''),
    database: nullableString('database'),
    store: nullableString('store'),
    s3Endpoint: nullableString('s3Endpoint'),
    jobSchedules,
    smtp,
    alertReminderHours: positive('alertReminderHours'),
    tempMaxAgeHours: maxTempAge(positive('tempMaxAgeHours'), file),
    recycleBinDays: positive('recycleBinDays'),
    protectDays: wholeDays(positive('protectDays'), 'protectDays', file),
    verifyPeriodDays: positive('verifyPeriodDays'),
    gcGraceHours: positive('gcGraceHours'),
    gcRepackBelow: fraction(s.gcRepackBelow ?? SETTINGS_DEFAULTS.gcRepackBelow, 'gcRepackBelow', file),
    gcRepackDeleteDelayHours: positive('gcRepackDeleteDelayHours'),
    jobLeaseSeconds: positive('jobLeaseSeconds'),
    replicaDeleteDelayDays: positive('replicaDeleteDelayDays'),
    replicaLagAlertHours: positive('replicaLagAlertHours'),
    retentionTimeZone: timeZoneSetting(s.retentionTimeZone ?? 'Europe/Paris', file),
    authThrottle: t,
    enrollTokenTtlHours: ttl,
    tls,
    sessionIdleMinutes: positive('sessionIdleMinutes'),
    sessionMaxHours: positive('sessionMaxHours'),
    reauthMinutes: positive('reauthMinutes'),
    auditRetentionDays: positive('auditRetentionDays'),
    observatoryGraceMinutes: positive('observatoryGraceMinutes'),
    publicUrl,
  };
}

function timeZoneSetting(tz: unknown, file: string): string {
  try {
    assertTimeZone(String(tz));
  } catch {
    throw new SettingsError(`${file}: retentionTimeZone must be an IANA time zone such as Europe/Paris`);
  }
  return String(tz);
}

function fraction(v: unknown, key: string, file: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new SettingsError(`${file}: ${key} must be a fraction between 0 and 1`);
  return v;
}

function wholeDays(n: number, key: string, file: string): number {
  if (!Number.isInteger(n)) throw new SettingsError(`${file}: ${key} must be a whole number of days`);
  return n;
}

/** Names of the server jobs (jobs/index.ts; a test keeps the two lists equal), for validating `jobSchedules`. */
export const JOB_NAMES: readonly string[] = ['observatory', 'reports', 'metering', 'retention', 'verify', 'purge-temp', 'mail', 'gc', 'replicate'];

/** R8: temporary data never live more than a month — the daily purge runs up to a day after the age is reached, hence 30 days minus one. */
export const TEMP_MAX_AGE_CAP_HOURS = 696;
function maxTempAge(hours: number, file: string): number {
  if (hours > TEMP_MAX_AGE_CAP_HOURS) throw new SettingsError(`${file}: tempMaxAgeHours must be at most ${TEMP_MAX_AGE_CAP_HOURS} (29 days: the daily purge-temp job then deletes temporary data within 30 days)`);
  return hours;
}

/**
 * Records backends given on the command line in server.json, so that every later command
 * given the same data directory finds them (like --tls-cert). Returns the new settings.
 */
export async function recordBackendSettings(
  paths: DataDirPaths,
  settings: ServerSettings,
  given: { database?: string | undefined; store?: string | undefined; s3Endpoint?: string | undefined },
): Promise<ServerSettings> {
  const next = {
    ...settings,
    ...(given.database !== undefined ? { database: given.database } : {}),
    ...(given.store !== undefined ? { store: given.store } : {}),
    ...(given.s3Endpoint !== undefined ? { s3Endpoint: given.s3Endpoint } : {}),
  };
  if (next.database === settings.database && next.store === settings.store && next.s3Endpoint === settings.s3Endpoint) return settings;
  await writeFileAtomic(paths.settings, `${JSON.stringify(next, null, 2)}\n`, 0o600);
  return next;
}

export interface DataDir {
  readonly paths: DataDirPaths;
  readonly settings: ServerSettings;
  readonly tls: TlsMaterial;
}

/**
 * Creates whatever is missing of the data directory (idempotent, safe to run from the
 * server and the CLI at once) and loads settings and TLS material. `tls` given on the
 * command line is recorded in the settings so later commands (`fingerprint`) agree with
 * what the server serves. The database is opened separately (openDatabase).
 */
export async function initDataDir(dir: string, opts: { tls?: { cert: string; key: string } } = {}): Promise<DataDir> {
  const paths = dataDirPaths(dir);
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  await mkdir(paths.secrets, { recursive: true, mode: 0o700 });

  const fresh: ServerSettings = { v: 1, createdAt: isoNow(systemClock), database: null, store: null, s3Endpoint: null, enrollTokenTtlHours: DEFAULT_ENROLL_TTL_HOURS, tls: null, ...SETTINGS_DEFAULTS, authThrottle: DEFAULT_AUTH_THROTTLE, jobSchedules: {}, smtp: DEFAULT_SMTP, retentionTimeZone: 'Europe/Paris' };
  await createFileExclusive(paths.settings, `${JSON.stringify(fresh, null, 2)}\n`, 0o600);
  let settings = parseSettings(await readFile(paths.settings, 'utf8'), paths.settings);

  if (opts.tls) {
    const given = { cert: path.resolve(opts.tls.cert), key: path.resolve(opts.tls.key) };
    const tls = await loadTls(given.cert, given.key);
    if (settings.tls?.cert !== given.cert || settings.tls.key !== given.key) {
      settings = { ...settings, tls: given };
      await writeFileAtomic(paths.settings, `${JSON.stringify(settings, null, 2)}\n`, 0o600);
    }
    return { paths, settings, tls };
  }
  const tls = settings.tls ? await loadTls(settings.tls.cert, settings.tls.key) : await ensureSelfSigned(paths.tlsDir);
  return { paths, settings, tls };
}
