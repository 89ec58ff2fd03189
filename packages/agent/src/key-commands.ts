import {
  CoffreError,
  deriveAdminKey,
  ed25519Sign,
  keySlotsChangeMessage,
  keySlotsDigest,
  makePassphraseSlot,
  makeRecoverySlot,
  newRecoveryKey,
  openPassphraseSlot,
  openRecoverySlot,
  passphraseOpens,
  type KeySlot,
  type RepoResponse,
} from '@coffre/core';
import type { ApiClient } from './client.js';
import type { ConfigStore } from './config.js';
import { argon2Params, promptPassphrase, readPassphrase, type PassphraseSource } from './passphrase.js';
import { checkNewPassphrase } from './passphrase-strength.js';
import { checkFormat2Keys, clientFor, upgradeRepository } from './session.js';

/**
 * `coffre key …`: the key slots of the customer's repository (docs/FORMAT.md §2.3, §2.5). Every
 * command needs the current passphrase or recovery key: the change is signed with the
 * key-admin key derived from the master key, which a machine's unattended state does not
 * hold, and the server applies it only if the slot set is still the one that was read.
 */
export interface KeyContext {
  readonly api: ApiClient;
  readonly info: RepoResponse;
  readonly master: Buffer;
  /** The slot the given secret opened, and its kind. */
  readonly opened: { readonly slotId: string; readonly kind: 'passphrase' | 'recovery' };
  /** The passphrase given, when it was one (a change removes every slot it opens). */
  readonly passphrase: string | null;
}

export async function keyContext(store: ConfigStore, pass: PassphraseSource): Promise<KeyContext> {
  const api = clientFor(store.load());
  try {
    const info = await api.json<RepoResponse>('GET', '/repo');
    if (!info.config) throw new CoffreError('NO_KEY', 'the repository has not been initialised; enroll a machine with a passphrase first');
    const recovery = process.env.COFFRE_RECOVERY_KEY;
    let opened: { master: Buffer; slotId: string };
    let kind: 'passphrase' | 'recovery';
    let passphrase: string | null = null;
    if (!pass.file && recovery) {
      opened = openRecoverySlot(info.keySlots, recovery);
      kind = 'recovery';
    } else {
      const p = await readPassphrase(pass, { prompt: 'Current passphrase: ' });
      if (p === null) throw new CoffreError('NO_KEY', 'the current passphrase (COFFRE_PASSPHRASE, --passphrase-file, a prompt) or the recovery key (COFFRE_RECOVERY_KEY) is needed to manage keys');
      opened = await openPassphraseSlot(info.keySlots, p);
      kind = 'passphrase';
      passphrase = p;
    }
    if (info.config.v === 2) checkFormat2Keys(info, opened.master);
    return { api, info, master: opened.master, opened: { slotId: opened.slotId, kind }, passphrase };
  } catch (e) {
    api.close();
    throw e;
  }
}

/** Upgrades a format-1 repository first (key changes are signed, which needs format 2). */
export async function ensureFormat2(store: ConfigStore, ctx: KeyContext): Promise<KeyContext> {
  if (ctx.info.config?.v === 2) return ctx;
  await upgradeRepository(store, ctx.api, ctx.info, ctx.master);
  return { ...ctx, info: await ctx.api.json<RepoResponse>('GET', '/repo') };
}

/** Replaces the slot set, signed; fails with CONFLICT if another change came first. */
export async function replaceSlots(ctx: KeyContext, next: readonly KeySlot[]): Promise<{ added: string[]; removed: string[] }> {
  const expect = keySlotsDigest(ctx.info.keySlots);
  const generation = ctx.info.keySlotsGeneration ?? 0;
  const signature = ed25519Sign(deriveAdminKey(ctx.master).privateKey, keySlotsChangeMessage(ctx.info.customerId, generation, expect, next)).toString('base64');
  return ctx.api.json<{ added: string[]; removed: string[] }>('PUT', '/repo/key-slots', { slots: next, expect, generation, signature });
}

/** The new passphrase: COFFRE_NEW_PASSPHRASE, else a prompt (twice); it must be strong. */
export async function newPassphrase(context: readonly string[]): Promise<string> {
  const env = process.env.COFFRE_NEW_PASSPHRASE;
  const p = env !== undefined && env !== '' ? env : await promptPassphrase('New passphrase: ', true);
  if (!p) throw new CoffreError('BAD_REQUEST', 'give the new passphrase in COFFRE_NEW_PASSPHRASE or type it at the prompt');
  checkNewPassphrase(p, context);
  return p;
}

export async function addPassphrase(ctx: KeyContext, passphrase: string): Promise<KeySlot> {
  const slot = await makePassphraseSlot(ctx.master, passphrase, argon2Params());
  await replaceSlots(ctx, [...ctx.info.keySlots, slot]);
  return slot;
}

export async function removeSlot(ctx: KeyContext, id: string): Promise<KeySlot> {
  const exact = ctx.info.keySlots.find((s) => s.id === id);
  const byPrefix = id.length >= 8 ? ctx.info.keySlots.filter((s) => s.id.startsWith(id)) : [];
  if (!exact && byPrefix.length > 1) throw new CoffreError('BAD_REQUEST', `${id} names ${byPrefix.length} key slots; give more characters (see "coffre key list")`);
  const slot = exact ?? byPrefix[0];
  if (!slot) throw new CoffreError('NOT_FOUND', `no key slot ${id}; see "coffre key list"`);
  const rest = ctx.info.keySlots.filter((s) => s !== slot);
  if (!rest.some((s) => s.kind === 'passphrase')) throw new CoffreError('BAD_REQUEST', 'this is the last passphrase slot: add another passphrase first ("coffre key add")');
  await replaceSlots(ctx, rest);
  return slot;
}

/**
 * Changes the passphrase: the slot it opened is replaced by one for the new passphrase; with
 * the recovery key (a forgotten passphrase), every passphrase slot is.
 */
export async function changePassphrase(ctx: KeyContext, passphrase: string): Promise<{ added: KeySlot; removed: string[] }> {
  const added = await makePassphraseSlot(ctx.master, passphrase, argon2Params());
  // Every slot the old passphrase opens goes (the same passphrase may have been added twice).
  const removed = new Set<string>();
  for (const s of ctx.info.keySlots) {
    if (s.kind !== 'passphrase') continue;
    if (ctx.passphrase === null || s.id === ctx.opened.slotId || (await passphraseOpens(s, ctx.passphrase))) removed.add(s.id);
  }
  await replaceSlots(ctx, [...ctx.info.keySlots.filter((s) => !removed.has(s.id)), added]);
  return { added, removed: [...removed] };
}

/** A new recovery key; every older recovery slot is removed. */
export async function newRecovery(ctx: KeyContext): Promise<{ text: string; added: KeySlot; removed: string[] }> {
  const recovery = newRecoveryKey();
  const added = makeRecoverySlot(ctx.master, recovery.raw);
  const removed = ctx.info.keySlots.filter((s) => s.kind === 'recovery').map((s) => s.id);
  await replaceSlots(ctx, [...ctx.info.keySlots.filter((s) => s.kind !== 'recovery'), added]);
  return { text: recovery.text, added, removed };
}
