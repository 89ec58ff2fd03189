import type { Command} from 'commander';
import { InvalidArgumentError } from 'commander';
import type { AdminContext } from '../admin/index.js';
import { adminAuthoriseSite, adminCustomerSites, adminListSites, adminSiteSet } from '../admin/sites.js';
import { acceptMassDeletion, createReplicationToken, joinPrimary, promoteSite, replicationStatus, revokeReplica, type ReplicationStatus } from './admin.js';

/** What the command tree lends these commands (cli.ts). */
export interface CommandKit {
  withAdmin<T>(dataDir: string, fn: (ctx: AdminContext) => Promise<T>): Promise<T>;
  out(line?: string): void;
  hint(line?: string): void;
}

function siteNameArg(value: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(value)) throw new InvalidArgumentError('a site name is lowercase letters, digits and dashes (e.g. paris-2).');
  return value;
}
function countryArg(value: string): string {
  if (!/^[A-Za-z]{2}$/.test(value)) throw new InvalidArgumentError('expected an ISO 3166 country code such as FR or DE.');
  return value.toUpperCase();
}
function urlArg(value: string): string {
  if (!/^https:\/\/[^/\s]+\/?$/.test(value)) throw new InvalidArgumentError('expected https://HOST[:PORT].');
  return value.replace(/\/+$/, '');
}

/** `replication …` and `site …`: the second site (docs/CONTINUITY.md). */
export function registerReplicationCommands(program: Command, kit: CommandKit): void {
  const { withAdmin, out, hint } = kit;
  const replication = program.command('replication').description('the second site: a replica that pulls everything from the primary');
  const token = replication.command('token').description("one-time tokens with which a replica joins this primary");
  token
    .command('create')
    .description('print one token (valid 24 h) for `coffre-server replication join` on the replica')
    .requiredOption('--data-dir <dir>', 'data directory of the primary')
    .action(async (opts: { dataDir: string }) => {
      const t = await withAdmin(opts.dataDir, (ctx) => createReplicationToken(ctx));
      out(t.token);
      hint(`Valid until ${t.expiresAt}. On the replica: coffre-server replication join --data-dir DIR --primary URL --fingerprint SHA256 --token TOKEN`);
    });
  replication
    .command('join')
    .description('make this data directory a replica of the primary (then `coffre-server start` serves it as the replica)')
    .requiredOption('--data-dir <dir>', 'data directory of the replica (created if needed)')
    .requiredOption('--primary <url>', "the primary's URL, https://HOST:PORT", urlArg)
    .requiredOption('--fingerprint <sha256>', "the primary's certificate fingerprint (coffre-server fingerprint on the primary)")
    .requiredOption('--token <token>', 'a token from `coffre-server replication token create` on the primary')
    .option('--name <name>', "this site's name (default: the name it has, or replica)", siteNameArg)
    .option('--url <url>', 'where agents reach this site, https://HOST:PORT (default: recorded when it starts)', urlArg)
    .option('--country <code>', "this site's data-centre country (ISO 3166)", countryArg)
    .option('--provider <name>', "this site's hosting provider")
    .option('--hds', 'this site is a certified health-data host')
    .action(async (opts: { dataDir: string; primary: string; fingerprint: string; token: string; name?: string; url?: string; country?: string; provider?: string; hds?: boolean }) => {
      const r = await withAdmin(opts.dataDir, (ctx) =>
        joinPrimary(ctx, {
          primaryUrl: opts.primary,
          fingerprint: opts.fingerprint,
          token: opts.token,
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          url: opts.url ?? null,
          selfFingerprint: ctx.dataDir.tls.fingerprint,
          ...(opts.country ? { country: opts.country } : {}),
          ...(opts.provider !== undefined ? { provider: opts.provider } : {}),
          ...(opts.hds ? { hdsCertified: true } : {}),
        }),
      );
      out(`This site (${r.name}) is now a replica of ${r.primary} at ${opts.primary} (epoch ${r.epoch}).`);
      hint(`Next: coffre-server start --data-dir ${opts.dataDir} --listen HOST:PORT (it pulls continuously), or coffre-server job run replicate --data-dir ${opts.dataDir} for one pass now.`);
    });
  replication
    .command('status')
    .description("this site's role, epoch and how far behind its replica copy is")
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print the status as JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const s = await withAdmin(opts.dataDir, (ctx) => replicationStatus(ctx));
      if (opts.json) return out(JSON.stringify(s, null, 2));
      printStatus(s, out);
    });

  replication
    .command('accept-deletions')
    .description('on a replica: confirm that a large deletion on the primary is real (passes may apply it for 24 h)')
    .requiredOption('--data-dir <dir>', 'data directory of the replica')
    .action(async (opts: { dataDir: string }) => {
      const r = await withAdmin(opts.dataDir, (ctx) => acceptMassDeletion(ctx));
      out(`Large deletions are accepted until ${r.until}; they are still held for the usual delay before they apply.`);
    });
  replication
    .command('revoke')
    .description("on a primary: revoke a replica's credential (a lost or retired site)")
    .argument('<site>', 'the replica site', siteNameArg)
    .requiredOption('--data-dir <dir>', 'data directory of the primary')
    .action(async (siteName: string, opts: { dataDir: string }) => {
      const n = await withAdmin(opts.dataDir, (ctx) => revokeReplica(ctx, siteName));
      out(n > 0 ? `Site ${siteName}'s replication credential is revoked.` : `Site ${siteName} had no valid replication credential.`);
    });

  const site = program.command('site').description("this installation's sites: where customers' data live");
  site
    .command('list')
    .description('every site: address, country, provider, health-data certification, customers, announced changes')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const sites = await withAdmin(opts.dataDir, (ctx) => adminListSites(ctx));
      if (opts.json) return out(JSON.stringify(sites, null, 2));
      for (const s of sites) {
        out(`${s.name}  ${s.url ?? '(no address yet)'}  ${s.country}${s.inEu ? '' : ' (outside the EU/EEA)'}  ${s.provider || '(provider not set)'}  ${s.hds_certified === 1 ? 'HDS' : 'not HDS'}  ${s.customers} customer(s)`);
        for (const p of s.pending) out(`    announced: ${p.change_json} from ${p.effective_at}`);
      }
    });
  site
    .command('set')
    .description("create or change a site; a change of country, provider or certification is emailed to its customers first and applies on --effective")
    .argument('<name>', 'site name', siteNameArg)
    .requiredOption('--data-dir <dir>', 'data directory of the primary')
    .option('--url <url>', 'https://HOST:PORT', urlArg)
    .option('--fingerprint <sha256>', "the site's certificate fingerprint")
    .option('--country <code>', 'ISO 3166 country code of its data centre', countryArg)
    .option('--provider <name>', 'hosting provider')
    .option('--hds <yes|no>', 'certified health-data host', yesNoArg)
    .option('--effective <date>', 'when a change of where data live takes effect (default: now, right after the emails)', dateArg)
    .action(async (name: string, opts: { dataDir: string; url?: string; fingerprint?: string; country?: string; provider?: string; hds?: boolean; effective?: string }) => {
      const r = await withAdmin(opts.dataDir, (ctx) =>
        adminSiteSet(ctx, name, {
          ...(opts.url !== undefined ? { url: opts.url } : {}),
          ...(opts.fingerprint !== undefined ? { fingerprint: opts.fingerprint } : {}),
          ...(opts.country !== undefined ? { country: opts.country } : {}),
          ...(opts.provider !== undefined ? { provider: opts.provider } : {}),
          ...(opts.hds !== undefined ? { hdsCertified: opts.hds } : {}),
          ...(opts.effective !== undefined ? { effectiveAt: opts.effective } : {}),
        }),
      );
      if (r.created) out(`Site ${name} created.`);
      else if (r.effectiveAt) out(`Change of site ${name} announced to ${r.announced} recipient(s); it applies from ${r.effectiveAt}.`);
      else out(`Site ${name} updated.`);
    });
  site
    .command('promote')
    .description('turn this replica into the primary after a disaster (the old primary then refuses backups)')
    .requiredOption('--data-dir <dir>', 'data directory of the replica')
    .action(async (opts: { dataDir: string }) => {
      const r = await withAdmin(opts.dataDir, (ctx) => promoteSite(ctx));
      out(`This site is now the primary (epoch ${r.epoch}).`);
      hint(`Agents move here on their own when ${r.previousPrimary ?? 'the old primary'} cannot be reached. When the old primary comes back it refuses backups; re-join it as the replica:`);
      hint(`  here:  coffre-server replication token create --data-dir ${opts.dataDir}`);
      hint('  there: coffre-server replication join --data-dir OLD_DIR --primary THIS_URL --fingerprint THIS_FINGERPRINT --token TOKEN');
    });
}

function printStatus(s: ReplicationStatus, out: (line?: string) => void): void {
  out(`Site ${s.site}: ${s.role} (epoch ${s.epoch})`);
  if (s.primary) out(`Primary: ${s.primary.name ?? '?'} at ${s.primary.url ?? '?'}`);
  if (s.role === 'replica') out(`Replicated up to: ${s.replicatedUpTo ?? 'never'}${s.lagSeconds !== null ? ` (${formatLag(s.lagSeconds)} behind)` : ''}`);
  if (s.lastPass) out(`Last pass: ${s.lastPass.outcome ?? 'running'} at ${s.lastPass.finishedAt ?? s.lastPass.startedAt}${s.lastPass.error ? ` — ${s.lastPass.error}` : ''}`);
  if (s.heldDeletions > 0) out(`Held deletions: ${s.heldDeletions} (deleted on the primary, kept here until the delay ends)`);
  if (s.auditDiverged) out(`ALERT: the primary's audit chain diverged from this copy at ${s.auditDiverged.at}: ${s.auditDiverged.reason ?? ''}`);
  for (const r of s.replicas) out(`Replica ${r.site}: replicated up to ${r.replicatedUpTo ?? 'never'}${r.lagSeconds !== null ? ` (${formatLag(r.lagSeconds)} behind)` : ''}, last seen ${r.lastSeenAt ?? 'never'}`);
}

function formatLag(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function yesNoArg(value: string): boolean {
  if (/^(yes|oui|y|o|true|1)$/i.test(value)) return true;
  if (/^(no|non|n|false|0)$/i.test(value)) return false;
  throw new InvalidArgumentError('expected yes or no.');
}
function dateArg(value: string): string {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new InvalidArgumentError('expected a date such as 2027-01-31 or 2027-01-31T08:00:00Z.');
  return new Date(t).toISOString();
}

/** `customer sites` and `customer authorise-site`, under the existing `customer` command. */
export function registerCustomerSiteCommands(customer: Command, kit: CommandKit): void {
  const { withAdmin, out } = kit;
  customer
    .command('sites')
    .description("set a customer's primary and replica sites (the customer is emailed first; a site outside the EU/EEA needs its authorisation)")
    .argument('<name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory of the primary')
    .requiredOption('--primary <site>', 'primary site', siteNameArg)
    .option('--replica <site>', 'replica site', siteNameArg)
    .option('--effective <date>', 'when the change takes effect (default: now, right after the email)', dateArg)
    .action(async (name: string, opts: { dataDir: string; primary: string; replica?: string; effective?: string }) => {
      const r = await withAdmin(opts.dataDir, (ctx) => adminCustomerSites(ctx, name, opts.primary, opts.replica ?? null, opts.effective));
      out(`Sites of ${name}: primary ${opts.primary}, replica ${opts.replica ?? 'none'}, from ${r.effectiveAt} (${r.announced} email(s) queued).`);
    });
  customer
    .command('authorise-site')
    .description("record a customer's express authorisation to keep its data on a site outside the EU/EEA")
    .argument('<name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory of the primary')
    .requiredOption('--site <site>', 'the site', siteNameArg)
    .requiredOption('--by <person>', 'who authorised it, for the customer (name and role)')
    .requiredOption('--date <date>', 'when it was given', dateArg)
    .requiredOption('--document <reference>', 'the signed document (reference or file name)')
    .action(async (name: string, opts: { dataDir: string; site: string; by: string; date: string; document: string }) => {
      await withAdmin(opts.dataDir, (ctx) => adminAuthoriseSite(ctx, name, opts.site, { by: opts.by, on: opts.date, document: opts.document }));
      out(`Authorisation recorded: ${name} may keep its data on site ${opts.site} (${opts.document}).`);
    });
}
