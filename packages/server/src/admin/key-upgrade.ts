import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { findCustomerByName } from '../db/queries/customers.js';
import { allowRepoUpgrade, getRepo } from '../db/queries/repo.js';
import { apiError } from '../errors.js';
import type { CommandKit } from '../replication/commands.js';
import type { CustomerId } from '../types.js';
import type { AdminContext } from './index.js';

/**
 * `coffre-server customer allow-key-upgrade NAME [--hours N]`: the operator's approval of one
 * upgrade of a customer's repository to storage format 2 (docs/OPERATIONS.md). A format-1
 * repository cannot tell a holder of its master key from anyone with a machine credential, so
 * the first holder of format-2 keys is vouched for out of band: the practice asks, the
 * operator approves for a few hours, the practice runs `coffre key upgrade`.
 */
export async function adminAllowKeyUpgrade(ctx: AdminContext, customerName: string, hours: number): Promise<string> {
  const c = await findCustomerByName(ctx.db, customerName);
  if (!c) throw apiError('customerNotFound', { name: customerName });
  const repo = await getRepo(ctx.db, c.id as CustomerId);
  if (!repo.config || repo.config.v !== 1) throw apiError('repoNotUpgradable');
  const until = new Date(ctx.clock().getTime() + hours * 3600_000).toISOString();
  await allowRepoUpgrade(ctx.db, c.id as CustomerId, until);
  await ctx.audit.append({ actorType: 'cli', actorId: ctx.actor, actorLabel: `${ctx.actor} (command line)`, orgId: c.id, action: 'repo.upgrade.allow', target: `customer:${c.id}`, ip: null, userAgent: null, requestId: null, outcome: 'success', details: { until } });
  return until;
}

function hoursArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 168) throw new InvalidArgumentError('expected whole hours, 1 to 168.');
  return n;
}

export function registerKeyUpgradeCommand(customer: Command, kit: CommandKit): void {
  customer
    .command('allow-key-upgrade')
    .description("allow one upgrade of a customer's repository to storage format 2 (machines then keep only write keys), for a few hours")
    .argument('<name>', 'customer name')
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--hours <n>', 'how long the approval lasts (1–168)', hoursArg, 24)
    .action(async (name: string, opts: { dataDir: string; hours: number }) => {
      const until = await kit.withAdmin(opts.dataDir, (ctx) => adminAllowKeyUpgrade(ctx, name, opts.hours));
      kit.out(`${name} may upgrade its repository until ${until}: on one of its machines, run "coffre key upgrade" with the passphrase.`);
    });
}
