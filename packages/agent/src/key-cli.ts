import type { Command } from 'commander';
import type { ConfigStore } from './config.js';
import { addPassphrase, changePassphrase, ensureFormat2, keyContext, newPassphrase, newRecovery, removeSlot, type KeyContext } from './key-commands.js';
import { upgradeRepository } from './session.js';

interface Globals {
  config?: string;
  passphraseFile?: string;
}
const print = (s: string) => process.stdout.write(s + '\n');
const json = (v: unknown) => process.stdout.write(JSON.stringify(v, null, 2) + '\n');

/** `coffre key list|add|remove|passwd|recovery|upgrade` (key-commands.ts does the work). */
export function registerKeyCommands(program: Command, storeOf: (g: Globals) => ConfigStore): void {
  const key = program.command('key').description("the passphrases and recovery key that open the customer's backups (each command needs the current passphrase or recovery key)");
  const withKeys = async <T>(cmd: Command, fn: (ctx: KeyContext, store: ConfigStore) => Promise<T>, upgrade = true): Promise<T> => {
    const g = cmd.optsWithGlobals<Globals>();
    const store = storeOf(g);
    let ctx = await keyContext(store, { file: g.passphraseFile });
    try {
      if (upgrade) ctx = await ensureFormat2(store, ctx);
      return await fn(ctx, store);
    } finally {
      ctx.api.close();
    }
  };
  const context = (ctx: KeyContext) => [ctx.info.machineName];

  key
    .command('list')
    .description('list the key slots')
    .option('--json', 'JSON array')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withKeys(
        cmd,
        async (ctx) => {
          const rows = ctx.info.keySlots.map((s) => ({
            id: s.id,
            kind: s.kind,
            created: s.created,
            kdf: s.kdf.alg === 'argon2id' ? { alg: s.kdf.alg, memoryKiB: s.kdf.m, passes: s.kdf.t, lanes: s.kdf.p } : { alg: s.kdf.alg },
            current: s.id === ctx.opened.slotId,
          }));
          if (o.json) return json({ format: ctx.info.config!.v, slots: rows });
          print(`storage format ${ctx.info.config!.v}; ${rows.length} key slot(s)`);
          for (const r of rows) print(`${r.id}  ${r.kind.padEnd(10)} ${r.created}${r.kdf.alg === 'argon2id' ? `  argon2id ${Math.round(r.kdf.memoryKiB! / 1024)} MiB × ${r.kdf.passes}` : ''}${r.current ? '  (opened now)' : ''}`);
        },
        false,
      );
    });

  key
    .command('add')
    .description('add another passphrase (from COFFRE_NEW_PASSPHRASE, else a prompt)')
    .option('--json', 'JSON summary')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withKeys(cmd, async (ctx) => {
        const slot = await addPassphrase(ctx, await newPassphrase(context(ctx)));
        if (o.json) json({ added: slot.id });
        else print(`added passphrase slot ${slot.id}`);
      });
    });

  key
    .command('remove')
    .description('remove a key slot: its passphrase or recovery key no longer opens the backups')
    .argument('<id>', 'slot id (see "coffre key list"; 8 characters or more)')
    .option('--json', 'JSON summary')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      await withKeys(cmd, async (ctx) => {
        const slot = await removeSlot(ctx, id);
        if (o.json) json({ removed: slot.id, kind: slot.kind });
        else print(`removed ${slot.kind} slot ${slot.id}`);
      });
    });

  key
    .command('passwd')
    .description('change the passphrase (the new one from COFFRE_NEW_PASSPHRASE, else a prompt)')
    .option('--json', 'JSON summary')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withKeys(cmd, async (ctx) => {
        const r = await changePassphrase(ctx, await newPassphrase(context(ctx)));
        if (o.json) json({ added: r.added.id, removed: r.removed });
        else print(`passphrase changed: slot ${r.added.id} replaces ${r.removed.join(', ')}`);
      });
    });

  key
    .command('recovery')
    .description('make a new recovery key; the old one stops working')
    .option('--json', 'JSON summary (includes the new recovery key)')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withKeys(cmd, async (ctx) => {
        const r = await newRecovery(ctx);
        if (o.json) return json({ recoveryKey: r.text, added: r.added.id, removed: r.removed });
        print('================ NEW RECOVERY KEY — NOUVELLE CLÉ DE SECOURS ================');
        print(`  ${r.text}`);
        print('The previous recovery key no longer opens the backups. Print this one and');
        print('keep it offline. / L’ancienne clé de secours ne fonctionne plus.');
        print('============================================================================');
      });
    });

  key
    .command('upgrade')
    .description('move the customer\'s repository to storage format 2: machines keep only what backups need')
    .option('--json', 'JSON summary')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withKeys(
        cmd,
        async (ctx, store) => {
          const before = ctx.info.config!.v;
          await upgradeRepository(store, ctx.api, ctx.info, ctx.master);
          if (o.json) json({ from: before, to: 2 });
          else print(before === 2 ? 'the repository already uses storage format 2' : 'repository upgraded to storage format 2; each machine drops its master key at its next command');
        },
        false,
      );
    });
}
