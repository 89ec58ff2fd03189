#!/usr/bin/env node
// Over 400 lines: the whole command tree of coffre-server in one commander program, each
// command a thin call into admin/ or backends/ (splitting it by command family is issue 13's work).
/**
 * coffre-server CLI. Exit codes: 0 ok, 1 error, 2 usage error, 3 the database or the object store cannot be
 * used (unreachable, refused, misconfigured, or of another installation), 4 audit trail tampered with
 * or not authenticated by its signed checkpoints (`audit verify`), 5 the data directory is in use by another
 * process, 6 the audit signing key is missing, unreadable, kept in the data directory or not the
 * installation's (ADR 0011; `start` and the `audit` commands). Results go to stdout
 * (machine-readable where it matters: `enroll-token create` prints only the token);
 * hints, logs and errors go to stderr. Errors are one line unless COFFRE_DEBUG=1.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { COFFRE_VERSION, DEFAULT_RETENTION, parseRetentionArgs, retentionPolicyArgs, type RetentionPolicy } from '@coffre/core';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import {
  adminAuditExportStart,
  adminCreateCustomer,
  adminCreateEnrollToken,
  adminCreateOrg,
  adminCreateUser,
  adminResetCredentials,
  adminCreateTier,
  adminCustomerSet,
  adminListTiers,
  adminListCustomers,
  adminListMachines,
  adminListOrgs,
  adminReissueMachine,
  adminRevokeMachine,
  adminSetOrgStatus,
  adminUpdateOrg,
  ensureInitialAdmin,
  INITIAL_ADMIN_FILE,
  openAdmin,
  type AdminContext,
} from './admin/index.js';
import { csvChunks, jsonChunks } from './audit/stream.js';
import type { OrgPatch } from './db/queries/orgs.js';
import type { OrgId } from './types.js';
import { writeFileAtomic } from './fsutil.js';
import { isRole, ROLES, type Role } from './http/roles.js';
import { dataDirPaths, initDataDir, recordBackendSettings, smtpUrl, type ServerSettings } from './datadir.js';
import { BackendConfigError, resolveBackends } from './backends/config.js';
import { DirLockedError } from './backends/dir-lock.js';
import { BackendError } from './backends/open.js';
import { smtpTransport } from './mail/transport.js';
import { apiError, isApiError } from './errors.js';
import { findCustomerByName } from './db/queries/customers.js';
import { isValidName } from './names.js';
import { DEFAULT_LISTEN, parseListen } from './listen.js';
import { certificateFingerprint } from './tls.js';
import { allJobs, findJob } from './jobs/index.js';
import { usageCsv, usageReport } from './admin/usage.js';
import { adminBinList, adminBinRestore, adminRetentionPlan, adminRetentionSet, adminRetentionShow, adminSnapshotDelete } from './admin/retention.js';
import { stderrLog } from './log.js';
import { registerCustomerSiteCommands, registerReplicationCommands } from './replication/commands.js';
import { registerKeyUpgradeCommand } from './admin/key-upgrade.js';
import { EXIT_AUDIT_KEY, registerAuditCommands } from './audit/commands.js';
import { AuditKeyError } from './audit/checkpoint.js';

const EXIT_ERROR = 1;
const EXIT_USAGE = 2;
/** The database or the object store cannot be used (one line names which and where). */
const EXIT_BACKEND = 3;
/** Another process (a server, a migration) uses the data directory. */
const EXIT_IN_USE = 5;
/** commander's option keys → the retention options of @coffre/core's parseRetentionArgs. */
const RETENTION_FLAGS: readonly [string, string][] = [
  ['keepLast', '--keep-last'],
  ['keepDaily', '--keep-daily'],
  ['keepWeekly', '--keep-weekly'],
  ['keepMonthly', '--keep-monthly'],
  ['keepYearly', '--keep-yearly'],
  ['keepWithin', '--keep-within'],
  ['keepWithinDaily', '--keep-within-daily'],
  ['keepWithinWeekly', '--keep-within-weekly'],
  ['keepWithinMonthly', '--keep-within-monthly'],
  ['keepWithinYearly', '--keep-within-yearly'],
];
const DEFAULT_ADMIN_EMAIL = 'admin@coffre.invalid';
const SHUTDOWN_GRACE_MS = 10_000;

const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const hint = (line = ''): void => void process.stderr.write(`${line}\n`);

/** Shell-quotes a value for the copy-paste hints we print. */
function q(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function nameArg(kind: string) {
  return (value: string): string => {
    if (!isValidName(value)) throw new InvalidArgumentError(`a ${kind} name is 1 to 128 characters, without control characters or surrounding spaces.`);
    return value;
  };
}
function listenArg(value: string): string {
  try {
    parseListen(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}
function roleArg(value: string): Role {
  if (!isRole(value)) throw new InvalidArgumentError(`expected one of ${ROLES.join(', ')}.`);
  return value;
}
function emailArg(value: string): string {
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) || value.length > 254) throw new InvalidArgumentError('expected an email address.');
  return value;
}
function dateArg(value: string): string {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new InvalidArgumentError('expected a date such as 2026-01-31 or 2026-01-31T08:00:00Z.');
  return new Date(t).toISOString();
}
/** "500GB", "1.5 TB", "200Go", "750 Mo": decimal units, as storage is sold. */
function sizeArg(value: string): number {
  const m = /^\s*(\d+(?:[.,]\d+)?)\s*(B|o|KB|Ko|MB|Mo|GB|Go|TB|To)?\s*$/i.exec(value);
  const power: Record<string, number> = { b: 0, o: 0, kb: 1, ko: 1, mb: 2, mo: 2, gb: 3, go: 3, tb: 4, to: 4 };
  if (!m) throw new InvalidArgumentError('expected a size such as 500GB, 1.5TB or 200Go.');
  const n = Number(m[1]!.replace(',', '.')) * 1000 ** power[(m[2] ?? 'b').toLowerCase()]!;
  if (!(n > 0) || !Number.isSafeInteger(Math.round(n))) throw new InvalidArgumentError('expected a positive size.');
  return Math.round(n);
}
function priceArg(value: string): number {
  const m = /^\s*(\d+)(?:[.,](\d{1,2}))?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected a monthly price in euros excluding VAT, such as 49 or 49.90.');
  return Number(m[1]) * 100 + Number((m[2] ?? '0').padEnd(2, '0'));
}
function ttlArg(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > 24 * 365) throw new InvalidArgumentError('expected a number of hours between 0 and 8760.');
  return n;
}

async function withAdmin<T>(dataDir: string, fn: (ctx: AdminContext) => Promise<T>, opts: { auditKey?: string } = {}): Promise<T> {
  const ctx = await openAdmin(dataDir, undefined, opts);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

async function startCommand(opts: { dataDir: string; listen: string; tlsCert?: string; tlsKey?: string; adminEmail: string; database?: string; store?: string; auditKey?: string }, cmd: Command): Promise<void> {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) cmd.error('error: --tls-cert and --tls-key go together', { exitCode: EXIT_USAGE });
  if (opts.database !== undefined || opts.store !== undefined) {
    // Recorded in server.json (like --tls-cert), so every later command given this data directory uses them too.
    const dir = await initDataDir(opts.dataDir);
    const targets = resolveBackends(dir.paths, dir.settings, { database: opts.database, store: opts.store }); // refuses a malformed one before recording it
    // The endpoint (COFFRE_S3_ENDPOINT) goes with the store, so the directory alone finds the bucket later.
    const s3Endpoint = opts.store !== undefined && targets.store.kind === 's3' && targets.store.endpoint !== null ? targets.store.endpoint : undefined;
    await recordBackendSettings(dir.paths, dir.settings, { database: opts.database, store: opts.store, s3Endpoint });
  }
  const { startServer } = await import('./server.js'); // Fastify loads only for `start`
  // First start: the initial administrator. Its temporary password goes to a 0600 file, not
  // to stdout, which may end up in a service journal.
  const initial = await withAdmin(opts.dataDir, async (ctx) => {
    const created = await ensureInitialAdmin(ctx, opts.adminEmail);
    if (!created) return null;
    const file = path.join(ctx.dataDir.paths.secrets, INITIAL_ADMIN_FILE);
    await writeFileAtomic(file, `${created.email}\n${created.temporaryPassword}\n`, 0o600);
    return { email: created.email, file };
  }, opts.auditKey !== undefined ? { auditKey: opts.auditKey } : {});
  const server = await startServer({
    dataDir: opts.dataDir,
    listen: opts.listen,
    ...(opts.auditKey !== undefined ? { auditKey: opts.auditKey } : {}),
    ...(opts.tlsCert !== undefined && opts.tlsKey !== undefined ? { tls: { cert: opts.tlsCert, key: opts.tlsKey } } : {}),
  });
  const dir = q(server.dataDir);
  out(`coffre-server listening on ${server.url}`);
  out(`TLS certificate SHA-256 fingerprint: ${server.fingerprint}`);
  out(`Audit signing key ${server.auditKey.keyId.slice(0, 16)}… at ${q(server.auditKey.file)}: back it up apart from the data; publish its public half (coffre-server audit public-key --data-dir ${q(server.dataDir)})`);
  out('Next steps:');
  out(`  1. create a customer:          coffre-server customer create NAME --data-dir ${dir}`);
  out(`  2. create an enrollment token: coffre-server enroll-token create --customer NAME --data-dir ${dir}`);
  out(`  3. on the machine to back up:  coffre enroll --server ${server.url} --token TOKEN --fingerprint ${server.fingerprint}`);
  if (initial) {
    out(`Initial administrator: ${initial.email}; temporary password in ${initial.file} (sign in at ${server.url},`);
    out('  then change the password and set up a second factor; the file is removed when the password is changed).');
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  hint(`coffre-server: ${signal} received, finishing in-flight requests…`);
  const force = setTimeout(() => {
    hint('coffre-server: shutdown took too long, exiting');
    process.exit(EXIT_ERROR);
  }, SHUTDOWN_GRACE_MS);
  force.unref();
  await server.close();
  clearTimeout(force);
}

/** Reads the fingerprint without initialising anything: the data dir must exist. */
async function fingerprintCommand(opts: { dataDir: string }): Promise<void> {
  const paths = dataDirPaths(opts.dataDir);
  let certFile = path.join(paths.tlsDir, 'cert.pem');
  const settings = await readFile(paths.settings, 'utf8').then((t) => JSON.parse(t) as Partial<ServerSettings>, () => null);
  if (settings?.tls?.cert) certFile = settings.tls.cert;
  const pem = await readFile(certFile, 'utf8').catch(() => {
    throw new Error(`no TLS certificate found for data dir ${paths.root} (run "coffre-server start --data-dir ${paths.root}" first)`);
  });
  out(certificateFingerprint(pem));
}

function buildProgram(): Command {
  const program = new Command('coffre-server')
    .description('coffre storage server: end-to-end encrypted backups for health practices')
    .version(COFFRE_VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('start')
    .description('start the HTTPS server in the foreground (initialises the data dir on first start)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--listen <host:port>', 'address to listen on (port 0 = any free port)', listenArg, DEFAULT_LISTEN)
    .option('--tls-cert <file>', 'PEM certificate to serve instead of the self-signed one')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--admin-email <email>', 'email of the initial administrator (first start only)', emailArg, DEFAULT_ADMIN_EMAIL)
    .option('--database <url>', 'postgres://USER:PASSWORD@HOST:PORT/DB instead of the embedded SQLite file (kept in server.json; COFFRE_DATABASE_URL overrides)')
    .option('--store <url>', 's3://BUCKET[/PREFIX] instead of DIR/objects (kept in server.json; endpoint from COFFRE_S3_ENDPOINT, credentials from AWS_*)')
    .option('--audit-key <file>', 'the Ed25519 key that signs the audit trail, outside the data directory (default: COFFRE_AUDIT_KEY_FILE, else ~/.config/coffre/audit-keys/INSTALLATION.key; created on the first start)')
    .action(startCommand);

  const tier = program.command('tier').description("the operator's volume tiers (R13)");
  tier
    .command('create')
    .description('add a tier: upper limit of protected volume and monthly price (EUR excl. VAT)')
    .argument('<name>', 'tier name (unique)', nameArg('tier'))
    .requiredOption('--limit <size>', 'upper limit, e.g. 500GB or 1TB', sizeArg)
    .requiredOption('--price <euros>', 'monthly price excluding VAT, e.g. 49.90', priceArg)
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (name: string, opts: { limit: number; price: number; dataDir: string }) => {
      const t = await withAdmin(opts.dataDir, (ctx) => adminCreateTier(ctx, name, opts.limit, opts.price));
      out(t.id);
      hint(`Tier ${q(name)} created.`);
    });
  tier
    .command('list')
    .description('list the tiers, smallest limit first')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const list = await withAdmin(opts.dataDir, adminListTiers);
      if (opts.json) return out(JSON.stringify(list.map((t) => ({ name: t.name, limitBytes: t.limit_bytes, monthlyPriceCents: t.monthly_price_cents })), null, 2));
      if (list.length === 0) return hint('No tiers yet: coffre-server tier create NAME --limit 500GB --price 49 --data-dir DIR');
      table([['NAME', 'LIMIT (bytes)', 'PRICE/MONTH (EUR)'], ...list.map((t) => [t.name, String(t.limit_bytes), (t.monthly_price_cents / 100).toFixed(2)])]);
    });

  const org = program.command('org').description('manage organisations (operator → reseller → customer)');
  org
    .command('create')
    .description('create a reseller or a customer and print its id')
    .argument('<name>', 'organisation name (unique)', nameArg('organisation'))
    .requiredOption('--type <type>', 'reseller or customer', (v: string) => {
      if (v !== 'reseller' && v !== 'customer') throw new InvalidArgumentError('expected reseller or customer.');
      return v;
    })
    .option('--parent <name>', 'parent organisation (default: the operator)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (name: string, opts: { type: 'reseller' | 'customer'; parent?: string; dataDir: string }) => {
      const o = await withAdmin(opts.dataDir, (ctx) => adminCreateOrg(ctx, name, opts.type, opts.parent));
      out(o.id);
      hint(`${opts.type === 'reseller' ? 'Reseller' : 'Customer'} ${q(name)} created.`);
    });
  org
    .command('list')
    .description('list organisations')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const list = await withAdmin(opts.dataDir, adminListOrgs);
      if (opts.json) return out(JSON.stringify(list, null, 2));
      const names = new Map(list.map((o) => [o.id, o.name]));
      table([['NAME', 'TYPE', 'PARENT', 'STATUS', 'ALERT EMAIL'], ...list.map((o) => [o.name, o.type, o.parent_id ? (names.get(o.parent_id as OrgId) ?? o.parent_id) : '-', o.status, o.alert_email ?? '-'])]);
    });
  org
    .command('update')
    .description("update an organisation's contact addresses")
    .argument('<name>', 'organisation name')
    .option('--alert-email <email>', 'address that receives backup alerts', emailArg)
    .option('--referent-name <name>', 'named incident referent')
    .option('--referent-email <email>', "incident referent's email", emailArg)
    .option('--referent-phone <phone>', "incident referent's phone")
    .option('--language <fr|en>', 'language of its emails (default fr)', (v: string) => {
      if (v !== 'fr' && v !== 'en') throw new InvalidArgumentError('expected fr or en.');
      return v;
    })
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (name: string, opts: { alertEmail?: string; referentName?: string; referentEmail?: string; referentPhone?: string; language?: 'fr' | 'en'; dataDir: string }, cmd: Command) => {
      const patch: OrgPatch = {
        ...(opts.language !== undefined ? { locale: opts.language } : {}),
        ...(opts.alertEmail !== undefined ? { alert_email: opts.alertEmail } : {}),
        ...(opts.referentName !== undefined ? { referent_name: opts.referentName } : {}),
        ...(opts.referentEmail !== undefined ? { referent_email: opts.referentEmail } : {}),
        ...(opts.referentPhone !== undefined ? { referent_phone: opts.referentPhone } : {}),
      };
      if (Object.keys(patch).length === 0) cmd.error('error: nothing to update (give --alert-email, --referent-name, --referent-email, --referent-phone or --language)', { exitCode: EXIT_USAGE });
      await withAdmin(opts.dataDir, (ctx) => adminUpdateOrg(ctx, name, patch));
      hint(`Organisation ${q(name)} updated.`);
    });
  for (const [verb, status, text] of [
    ['suspend', 'suspended', 'suspend an organisation: its people and machines are refused until resumed'],
    ['resume', 'active', 'end the suspension of an organisation'],
  ] as const) {
    org
      .command(verb)
      .description(text)
      .argument('<name>', 'organisation name')
      .requiredOption('--data-dir <dir>', 'data directory')
      .action(async (name: string, opts: { dataDir: string }) => {
        await withAdmin(opts.dataDir, (ctx) => adminSetOrgStatus(ctx, name, status));
        hint(`Organisation ${q(name)} is ${status}.`);
      });
  }

  const userCmd = program.command('user').description('manage people');
  userCmd
    .command('create')
    .description('create a person and print their temporary password (and nothing else on stdout)')
    .requiredOption('--email <email>', 'their email (their sign-in identifier)', emailArg)
    .requiredOption('--name <full name>', 'their full name (one named person per account)')
    .requiredOption('--role <role>', ROLES.join(' | '), roleArg)
    .requiredOption('--org <name>', 'their organisation')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (opts: { email: string; name: string; role: Role; org: string; dataDir: string }) => {
      const { user, temporaryPassword } = await withAdmin(opts.dataDir, (ctx) => adminCreateUser(ctx, { email: opts.email, name: opts.name, role: opts.role, orgName: opts.org }));
      out(temporaryPassword);
      hint(`${user.name} <${user.email}> created as ${user.role} of ${q(opts.org)}.`);
      hint('Give them the temporary password above in person or by another channel; at first sign-in they change it and set up a second factor.');
    });
  for (const what of ['password', 'second-factor'] as const) {
    userCmd
      .command(`reset-${what}`)
      .description(what === 'password' ? 'give a person a new temporary password (printed, nothing else on stdout), end their sessions, email them' : "remove a person's second factors (set up again at the next sign-in), end their sessions, email them")
      .requiredOption('--email <email>', 'their email', emailArg)
      .requiredOption('--data-dir <dir>', 'data directory')
      .action(async (opts: { email: string; dataDir: string }) => {
        const { user, temporaryPassword } = await withAdmin(opts.dataDir, (ctx) => adminResetCredentials(ctx, opts.email, what));
        if (temporaryPassword !== null) out(temporaryPassword);
        hint(`${user.name} <${user.email}>: ${what} reset, sessions ended, email queued.`);
      });
  }

  const auditCmd = program.command('audit').description('the tamper-evident audit trail');
  registerAuditCommands(auditCmd, { withAdmin, out, hint });
  auditCmd
    .command('export')
    .description('write the trail to stdout, oldest first')
    .requiredOption('--format <format>', 'csv or json', (v: string) => {
      if (v !== 'csv' && v !== 'json') throw new InvalidArgumentError('expected csv or json.');
      return v;
    })
    .option('--since <date>', 'only entries at or after this date (UTC)', dateArg)
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (opts: { format: 'csv' | 'json'; since?: string; dataDir: string }) => {
      await withAdmin(opts.dataDir, async (ctx) => {
        await adminAuditExportStart(ctx, opts.format, opts.since);
        const entries = ctx.audit.matching({ orgIds: null, ...(opts.since ? { since: opts.since } : {}) });
        for await (const chunk of opts.format === 'csv' ? csvChunks(entries) : jsonChunks(entries)) {
          if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
        }
      });
    });

  const customer = program.command('customer').description('manage customers');
  customer
    .command('create')
    .description('create a customer and print its id')
    .argument('<name>', 'customer name (unique)', nameArg('customer'))
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (name: string, opts: { dataDir: string }) => {
      const c = await withAdmin(opts.dataDir, (ctx) => adminCreateCustomer(ctx, name));
      out(c.id);
      hint(`Customer ${q(name)} created. Next: coffre-server enroll-token create --customer ${q(name)} --data-dir ${q(path.resolve(opts.dataDir))}`);
    });
  customer
    .command('set')
    .description("set a customer's alert address and/or subscribed volume tier")
    .argument('<name>', 'customer name')
    .option('--alert-email <email>', 'address that receives backup alerts', emailArg)
    .option('--tier <name>', 'volume tier (coffre-server tier list)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (name: string, opts: { alertEmail?: string; tier?: string; dataDir: string }, cmd: Command) => {
      if (opts.alertEmail === undefined && opts.tier === undefined) cmd.error('error: nothing to set (give --alert-email and/or --tier)', { exitCode: EXIT_USAGE });
      await withAdmin(opts.dataDir, (ctx) => adminCustomerSet(ctx, name, { ...(opts.alertEmail !== undefined ? { alertEmail: opts.alertEmail } : {}), ...(opts.tier !== undefined ? { tier: opts.tier } : {}) }));
      hint(`Customer ${q(name)} updated.`);
    });
  customer
    .command('list')
    .description('list customers')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const list = await withAdmin(opts.dataDir, adminListCustomers);
      if (opts.json) return out(JSON.stringify(list, null, 2));
      if (list.length === 0) return hint('No customers yet: coffre-server customer create NAME --data-dir DIR');
      table([['ID', 'NAME', 'MACHINES', 'CREATED'], ...list.map((c) => [c.id, c.name, String(c.machines), c.createdAt])]);
    });

  program
    .command('enroll-token')
    .description('manage enrollment tokens')
    .command('create')
    .description('print a one-time enrollment token (and nothing else on stdout)')
    .requiredOption('--customer <name>', 'customer the machine will belong to')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--ttl-hours <n>', 'validity in hours (default from server.json: 24)', ttlArg)
    .action(async (opts: { customer: string; dataDir: string; ttlHours?: number }) => {
      const { issued, fingerprint } = await withAdmin(opts.dataDir, async (ctx) => ({
        issued: await adminCreateEnrollToken(ctx, opts.customer, opts.ttlHours),
        fingerprint: ctx.dataDir.tls.fingerprint,
      }));
      out(issued.token);
      hint(`One-time enrollment token for ${q(opts.customer)}, valid until ${issued.expiresAt}.`);
      hint(`On the machine: coffre enroll --server https://HOST:PORT --token ${issued.token} --fingerprint ${fingerprint}`);
    });

  program
    .command('fingerprint')
    .description("print the SHA-256 fingerprint of the server's TLS certificate")
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(fingerprintCommand);

  registerCustomerSiteCommands(customer, { withAdmin, out, hint });
  registerKeyUpgradeCommand(customer, { withAdmin, out, hint });

  const machine = program.command('machine').description('manage enrolled machines');
  machine
    .command('list')
    .description("list a customer's machines")
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { customer: string; dataDir: string; json?: boolean }) => {
      const list = await withAdmin(opts.dataDir, (ctx) => adminListMachines(ctx, opts.customer));
      if (opts.json) return out(JSON.stringify(list, null, 2));
      if (list.length === 0) return hint(`No machines enrolled for ${q(opts.customer)} yet.`);
      table([
        ['NAME', 'ID', 'HOSTNAME', 'LAST SEEN', 'CREDENTIAL', 'BACKUP', 'LAST SUCCESS', 'NEXT RUN'],
        ...list.map((m) => [m.name, m.id, m.hostname, m.lastSeenAt ?? '-', m.revoked ? 'revoked' : 'active', m.status, m.lastSuccessAt ?? '-', m.nextExpectedAt ?? '-']),
      ]);
    });
  machine
    .command('revoke')
    .description("revoke a machine's credential at once (lost or stolen machine)")
    .argument('<name>', 'machine name')
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (name: string, opts: { customer: string; dataDir: string }) => {
      const m = await withAdmin(opts.dataDir, (ctx) => adminRevokeMachine(ctx, opts.customer, name));
      hint(`Machine ${q(m.name)} of ${q(opts.customer)} is revoked; re-enroll it with a new token if needed.`);
    });
  machine
    .command('reissue')
    .description("revoke a machine's credential and print a one-time token that enrols it again (same name and history)")
    .argument('<name>', 'machine name')
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--ttl-hours <n>', 'validity in hours (default from server.json: 24)', ttlArg)
    .action(async (name: string, opts: { customer: string; dataDir: string; ttlHours?: number }) => {
      const issued = await withAdmin(opts.dataDir, (ctx) => adminReissueMachine(ctx, opts.customer, name, opts.ttlHours));
      out(issued.token);
      hint(`Machine ${q(name)}: old credential revoked. On the machine: coffre enroll --server https://HOST:PORT --token ${issued.token} --fingerprint FINGERPRINT`);
    });

  const retentionCmd = program.command('retention').description('retention policies on the server (R9) and what they would remove');
  retentionCmd
    .command('show')
    .description("the customer's policy and each machine's effective one")
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { customer: string; dataDir: string; json?: boolean }) => {
      const r = await withAdmin(opts.dataDir, (ctx) => adminRetentionShow(ctx, opts.customer));
      if (opts.json) return out(JSON.stringify(r, null, 2));
      out(`customer ${r.customer}: ${r.customerPolicy ? r.customerPolicy.join(' ') : `default (${retentionPolicyArgs(DEFAULT_RETENTION).join(' ')})`}`);
      for (const m of r.machines) out(`  machine ${m.name}: ${m.policy.join(' ')} (${m.source})`);
    });
  const keepOpts = (c: Command) =>
    c
      .option('--keep-last <n>', 'the N newest snapshots')
      .option('--keep-daily <n>', 'the newest of each of the N newest days that have one')
      .option('--keep-weekly <n>', 'the newest of each of the N newest ISO weeks that have one')
      .option('--keep-monthly <n>', 'the newest of each of the N newest months that have one')
      .option('--keep-yearly <n>', 'the newest of each of the N newest years that have one')
      .option('--keep-within <duration>', 'everything newer than this (e.g. 30d, 12w, 6m, 1y)')
      .option('--keep-within-daily <duration>', 'the newest of each day within this (the default is 90d)')
      .option('--keep-within-weekly <duration>', 'the newest of each week within this')
      .option('--keep-within-monthly <duration>', 'the newest of each month within this')
      .option('--keep-within-yearly <duration>', 'the newest of each year within this');
  keepOpts(
    retentionCmd
      .command('set')
      .description("set the policy of a customer, or of one of its machines (--machine); --default removes it")
      .requiredOption('--customer <name>', 'customer name')
      .option('--machine <name>', 'only this machine')
      .option('--default', 'remove the own policy: the machine follows its customer, the customer the default'),
  )
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (opts: Record<string, string | boolean | undefined> & { customer: string; machine?: string; default?: boolean; dataDir: string }, cmd: Command) => {
      const args: string[] = [];
      for (const [k, flag] of RETENTION_FLAGS) if (typeof opts[k] === 'string') args.push(flag, opts[k] as string);
      if (opts.default && args.length > 0) cmd.error('error: --default cannot be combined with --keep-… options', { exitCode: EXIT_USAGE });
      if (!opts.default && args.length === 0) cmd.error('error: give at least one --keep-… option, or --default', { exitCode: EXIT_USAGE });
      let policy: RetentionPolicy | null = null;
      if (!opts.default) {
        try {
          policy = parseRetentionArgs(args);
        } catch (e) {
          cmd.error(`error: ${(e as Error).message}`, { exitCode: EXIT_USAGE });
        }
      }
      await withAdmin(opts.dataDir, (ctx) => adminRetentionSet(ctx, opts.customer, opts.machine, policy));
      hint(`Retention of ${q(opts.customer)}${opts.machine ? ` / ${q(opts.machine)}` : ''}: ${policy ? retentionPolicyArgs(policy).join(' ') : 'default'}.`);
    });
  retentionCmd
    .command('plan')
    .description('dry run: what retention would remove now, and why (nothing is changed)')
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { customer: string; dataDir: string; json?: boolean }) => {
      const plan = await withAdmin(opts.dataDir, (ctx) => adminRetentionPlan(ctx, opts.customer));
      if (opts.json) return out(JSON.stringify(plan, null, 2));
      for (const d of plan.decisions) {
        const why = d.action === 'keep' ? d.reasons.map((r) => r.text).join(', ') : d.reason.text;
        out(`${d.action === 'keep' ? 'keep  ' : 'REMOVE'}  ${d.id.slice(0, 8)}  ${d.time}  ${d.machineName}  ${why}`);
      }
      const removed = plan.decisions.filter((d) => d.action === 'remove').length;
      hint(`${plan.decisions.length - removed} kept, ${removed} would go to the recycle bin.`);
    });

  const snapshotCmd = program.command('snapshot').description("a customer's snapshots: the recycle bin");
  snapshotCmd
    .command('bin')
    .description("list the customer's recycle bin")
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts: { customer: string; dataDir: string; json?: boolean }) => {
      const list = await withAdmin(opts.dataDir, (ctx) => adminBinList(ctx, opts.customer));
      if (opts.json) return out(JSON.stringify(list, null, 2));
      if (list.length === 0) return hint('The recycle bin is empty.');
      table([['ID', 'MACHINE', 'TIME', 'REMOVED', 'BY', 'PURGED AFTER'], ...list.map((b) => [b.id, b.machineName, b.time, b.deletedAt, b.deletedBy, b.purgeAt])]);
    });
  snapshotCmd
    .command('delete')
    .description('move a snapshot to the recycle bin (refused inside the protection window)')
    .argument('<id>', 'snapshot id (at least its first 8 hex digits)')
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (id: string, opts: { customer: string; dataDir: string }) => {
      const full = await withAdmin(opts.dataDir, (ctx) => adminSnapshotDelete(ctx, opts.customer, id));
      hint(`Snapshot ${full} is in the recycle bin; "snapshot restore ${full.slice(0, 8)}" brings it back.`);
    });
  snapshotCmd
    .command('restore')
    .description('bring a snapshot back from the recycle bin')
    .argument('<id>', 'snapshot id (at least its first 8 hex digits)')
    .requiredOption('--customer <name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (id: string, opts: { customer: string; dataDir: string }) => {
      const full = await withAdmin(opts.dataDir, (ctx) => adminBinRestore(ctx, opts.customer, id));
      hint(`Snapshot ${full} is back among the live snapshots.`);
    });

  const usage = program.command('usage').description('metered volumes (R13)');
  usage
    .command('export')
    .description("a month's usage per customer, from the daily metering, as CSV (for invoicing)")
    .requiredOption('--month <YYYY-MM>', 'the month, e.g. 2026-11')
    .option('--reseller <name>', "only this reseller's customers (default: all)")
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (opts: { month: string; reseller?: string; dataDir: string }) => {
      const lines = await withAdmin(opts.dataDir, (ctx) => usageReport(ctx.db, opts.month, opts.reseller));
      process.stdout.write(usageCsv(lines));
    });

  const job = program.command('job').description('server jobs (observatory…): run one now, or list them');
  job
    .command('list')
    .description('list the jobs and their default schedules (Europe/Paris)')
    .option('--data-dir <dir>', 'data directory (accepted for symmetry; the list does not depend on it)')
    .action(() => {
      table([['NAME', 'SCHEDULE', 'WHAT IT DOES'], ...allJobs().map((j) => [j.name, j.defaultSchedule, j.description])]);
    });
  job
    .command('run')
    .description('run one job once, now (the running server keeps its own schedule)')
    .argument('<name>', 'job name (see job list)')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print the result as JSON')
    .option('--dry-run', 'report what would be done, change nothing (gc, retention)')
    .option('--customer <name>', 'only this customer (gc, verify, retention, metering)', nameArg('customer'))
    .action(async (name: string, opts: { dataDir: string; json?: boolean; dryRun?: boolean; customer?: string }) => {
      const j = findJob(name);
      if (j && opts.dryRun && !j.supportsDryRun) {
        hint(`coffre-server: error: job ${q(name)} has no dry run (jobs with one: ${allJobs().filter((x) => x.supportsDryRun).map((x) => x.name).join(', ')})`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      if (!j) {
        hint(`coffre-server: error: unknown job ${q(name)}; known jobs: ${allJobs().map((x) => x.name).join(', ')}`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      const r = await withAdmin(opts.dataDir, async (ctx) => {
        const url = smtpUrl(ctx.dataDir.settings);
        const mailer = url ? smtpTransport(url, ctx.dataDir.settings.smtp.from, { requireTLS: ctx.dataDir.settings.smtp.requireTLS }) : null;
        const only = opts.customer === undefined ? undefined : [(await findCustomerByName(ctx.db, opts.customer))?.id ?? missingCustomer(opts.customer)];
        try {
          return await j.run({
            ...(only ? { onlyCustomers: only } : {}),
            db: ctx.db, store: ctx.store, audit: ctx.audit, clock: ctx.clock, settings: ctx.dataDir.settings, log: stderrLog, mailer, dryRun: opts.dryRun ?? false,
            keys: ctx.keys, fingerprint: ctx.dataDir.tls.fingerprint,
          });
        } finally {
          mailer?.close();
        }
      });
      // An item that failed (e.g. a pack that no longer matches its checksums) fails the command.
      if (r.items.some((i) => i.outcome === 'failed')) process.exitCode = EXIT_ERROR;
      if (opts.json) return out(JSON.stringify(r, null, 2));
      for (const i of r.items) out(`${i.outcome.padEnd(7)}  ${i.detail}`);
      hint(`Job ${q(name)} done: ${Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
    });

  registerReplicationCommands(program, { withAdmin, out, hint });

  program
    .command('migrate-storage')
    .description('copy this embedded installation (SQLite + DIR/objects) to PostgreSQL and an S3-compatible bucket; resumable; the server must be stopped')
    .requiredOption('--data-dir <dir>', 'data directory of the embedded installation')
    .requiredOption('--to-database <url>', 'postgres://USER:PASSWORD@HOST:PORT/DB (an empty database)')
    .requiredOption('--to-store <url>', 's3://BUCKET[/PREFIX] (endpoint from COFFRE_S3_ENDPOINT, credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)')
    .option('--json', 'print the report as JSON')
    .action(migrateStorageCommand);

  return program;
}

async function migrateStorageCommand(opts: { dataDir: string; toDatabase: string; toStore: string; json?: boolean }): Promise<void> {
  const { migrateStorage } = await import('./backends/migrate-storage.js');
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  const r = await migrateStorage({
    dataDir: opts.dataDir,
    toDatabase: opts.toDatabase,
    toStore: opts.toStore,
    progress: (p) => {
      const now = Date.now();
      if (p.done !== p.total && now - lastLine < (tty ? 200 : 5000)) return;
      lastLine = now;
      const pct = p.total === 0 ? 100 : Math.floor((100 * p.done) / p.total);
      const what = p.phase === 'objects' ? `objects ${p.done}/${p.total} (${(p.bytes / 1e6).toFixed(1)} MB)` : `tables ${p.done}/${p.total}`;
      const bar = `${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}`;
      if (tty) process.stderr.write(`\r[${bar}] ${String(pct).padStart(3)} % ${what}   ${p.done === p.total ? '\n' : ''}`);
      else hint(`${pct} % ${what}`);
    },
  });
  if (opts.json) return out(JSON.stringify(r, null, 2));
  if (r.alreadyDone) return out(`Already migrated: ${q(opts.dataDir)} uses ${r.to.database} and ${r.to.store}.`);
  out(`Installation ${r.installationId} copied to ${r.to.database} and ${r.to.store}.`);
  out(`Objects: ${r.objects.copied} copied (${(r.objects.bytes / 1e6).toFixed(1)} MB; ${r.objects.packsVerified} packs and ${r.objects.refsVerified} reference lists verified), ${r.objects.skipped} already there.`);
  out(`Rows: ${Object.entries(r.rows).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}`).join(', ')}.`);
  out(`${q(path.resolve(opts.dataDir))}/server.json now names them: start the server as before (coffre-server start --data-dir ${q(path.resolve(opts.dataDir))}).`);
  out(`The embedded copy (${r.from.database}, ${r.from.store}) is left as it was; delete it once the new backends are backed up.`);
}

function missingCustomer(name: string): never {
  throw apiError('customerNotFound', { name });
}

async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    // A command may have set a specific exit code (audit verify: 4) without failing.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE; // commander printed the message
    if (err instanceof BackendError || err instanceof BackendConfigError || err instanceof DirLockedError) {
      process.stderr.write(`coffre-server: error: ${err.message}\n`);
      if (process.env.COFFRE_DEBUG === '1' && err.stack) process.stderr.write(`${err.stack}\n`);
      return err instanceof DirLockedError ? EXIT_IN_USE : EXIT_BACKEND;
    }
    if (err instanceof AuditKeyError) {
      process.stderr.write(`coffre-server: error: ${err.message}\n`);
      return EXIT_AUDIT_KEY;
    }
    let message = err instanceof Error ? err.message : String(err);
    if (isApiError(err) && err.details) message += ` (${Object.entries(err.details).map(([k, v]) => `${k}: ${String(v)}`).join(', ')})`;
    process.stderr.write(`coffre-server: error: ${message}\n`);
    if (process.env.COFFRE_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT_ERROR;
  }
}

process.exitCode = await main(process.argv.slice(2));
