#!/usr/bin/env node
/**
 * coffre-server CLI. Exit codes: 0 ok, 1 error, 2 usage error. Results go to stdout
 * (machine-readable where it matters: `enroll-token create` prints only the token);
 * hints, logs and errors go to stderr. Errors are one line unless COFFRE_DEBUG=1.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { COFFRE_VERSION } from '@coffre/core';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import {
  adminCreateCustomer,
  adminCreateEnrollToken,
  adminListCustomers,
  adminListMachines,
  adminRevokeMachine,
  openAdmin,
  type AdminContext,
} from './admin/index.js';
import { dataDirPaths, type ServerSettings } from './datadir.js';
import { isApiError } from './errors.js';
import { isValidName } from './names.js';
import { DEFAULT_LISTEN, parseListen } from './listen.js';
import { certificateFingerprint } from './tls.js';

const EXIT_ERROR = 1;
const EXIT_USAGE = 2;
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
function ttlArg(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > 24 * 365) throw new InvalidArgumentError('expected a number of hours between 0 and 8760.');
  return n;
}

async function withAdmin<T>(dataDir: string, fn: (ctx: AdminContext) => Promise<T>): Promise<T> {
  const ctx = await openAdmin(dataDir);
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

async function startCommand(opts: { dataDir: string; listen: string; tlsCert?: string; tlsKey?: string }, cmd: Command): Promise<void> {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) cmd.error('error: --tls-cert and --tls-key go together', { exitCode: EXIT_USAGE });
  const { startServer } = await import('./server.js'); // Fastify loads only for `start`
  const server = await startServer({
    dataDir: opts.dataDir,
    listen: opts.listen,
    ...(opts.tlsCert !== undefined && opts.tlsKey !== undefined ? { tls: { cert: opts.tlsCert, key: opts.tlsKey } } : {}),
  });
  const dir = q(server.dataDir);
  out(`coffre-server listening on ${server.url}`);
  out(`TLS certificate SHA-256 fingerprint: ${server.fingerprint}`);
  out('Next steps:');
  out(`  1. create a customer:          coffre-server customer create NAME --data-dir ${dir}`);
  out(`  2. create an enrollment token: coffre-server enroll-token create --customer NAME --data-dir ${dir}`);
  out(`  3. on the machine to back up:  coffre enroll --server ${server.url} --token TOKEN --fingerprint ${server.fingerprint}`);

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
    .action(startCommand);

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
        ['NAME', 'ID', 'HOSTNAME', 'LAST SEEN', 'STATUS'],
        ...list.map((m) => [m.name, m.id, m.hostname, m.lastSeenAt ?? '-', m.revoked ? 'revoked' : 'active']),
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

  return program;
}

async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE; // commander printed the message
    let message = err instanceof Error ? err.message : String(err);
    if (isApiError(err) && err.details) message += ` (${Object.entries(err.details).map(([k, v]) => `${k}: ${String(v)}`).join(', ')})`;
    process.stderr.write(`coffre-server: error: ${message}\n`);
    if (process.env.COFFRE_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT_ERROR;
  }
}

process.exitCode = await main(process.argv.slice(2));
