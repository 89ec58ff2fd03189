import { keySlotsDigest, type KeySlot, type RepoConfig } from '@coffre/core';
import { apiError } from '../../errors.js';
import type { CustomerId, MachineId } from '../../types.js';
import type { Database } from '../database.js';
import { LockName, writeTransaction } from '../engine.js';

export const MAX_KEY_SLOTS = 32;

export interface RepoState {
  readonly config: RepoConfig | null;
  readonly keySlots: KeySlot[];
  /** One more than the highest slot number ever given: changes with every slot change, never repeats. */
  readonly keySlotsGeneration: number;
}

/** The repository's configuration alone (no key slots): what a snapshot commit checks. */
export async function getRepoConfig(db: Database, customerId: CustomerId): Promise<RepoConfig | null> {
  const repo = await db.selectFrom('repos').select('config_json').where('customer_id', '=', customerId).executeTakeFirst();
  return repo ? (JSON.parse(repo.config_json) as RepoConfig) : null;
}

/** Key slots in the order they were added. Slot JSON is opaque: stored and returned as sent. */
export async function getRepo(db: Database, customerId: CustomerId): Promise<RepoState> {
  const repo = await db.selectFrom('repos').select('config_json').where('customer_id', '=', customerId).executeTakeFirst();
  if (!repo) return { config: null, keySlots: [], keySlotsGeneration: 0 };
  const slots = await db
    .selectFrom('key_slots')
    .select(['slot_json', 'seq'])
    .where('customer_id', '=', customerId)
    .orderBy('seq')
    .execute();
  return {
    config: JSON.parse(repo.config_json) as RepoConfig,
    keySlots: slots.map((s) => JSON.parse(s.slot_json) as KeySlot),
    keySlotsGeneration: slots.length === 0 ? 0 : Number(slots[slots.length - 1]!.seq) + 1,
  };
}

/**
 * Creates the repository with its first key slots. The primary key on customer_id makes
 * it concurrency-safe: of two racing inits exactly one inserts; the other gets CONFLICT.
 */
export async function initRepo(
  db: Database,
  a: { customerId: CustomerId; machineId: MachineId; config: RepoConfig; slotsJson: readonly { id: string; json: string }[]; now: string },
): Promise<void> {
  // The customer's repository and key slots (the primary key decides a race; the lock keeps slots in order).
  await writeTransaction(db, [LockName.customer(a.customerId)], async (trx) => {
    const res = await trx
      .insertInto('repos')
      .values({ customer_id: a.customerId, config_json: JSON.stringify(a.config), created_at: a.now })
      .onConflict((oc) => oc.column('customer_id').doNothing())
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('repoExists');
    if (a.slotsJson.length > 0) {
      await trx
        .insertInto('key_slots')
        .values(a.slotsJson.map((s, seq) => ({ customer_id: a.customerId, id: s.id, seq, slot_json: s.json, created_at: a.now, created_by_machine: a.machineId })))
        .execute();
    }
  });
}

/**
 * Appends one key slot (there is deliberately no way for a machine to remove one). Its
 * position is the current count, which the unique (customer_id, seq) index guards.
 */
export async function addKeySlot(db: Database, a: { customerId: CustomerId; machineId: MachineId; id: string; json: string; now: string }): Promise<void> {
  // The customer's key slots: the new slot's seq is the count read here (read, decide, write).
  await writeTransaction(db, [LockName.customer(a.customerId)], async (trx) => {
    const repo = await trx.selectFrom('repos').select('customer_id').where('customer_id', '=', a.customerId).executeTakeFirst();
    if (!repo) throw apiError('repoMissing');
    const { n } = await trx
      .selectFrom('key_slots')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('customer_id', '=', a.customerId)
      .executeTakeFirstOrThrow();
    if (Number(n) >= MAX_KEY_SLOTS) throw apiError('tooManyKeySlots', { max: MAX_KEY_SLOTS });
    const res = await trx
      .insertInto('key_slots')
      .values({ customer_id: a.customerId, id: a.id, seq: Number(n), slot_json: a.json, created_at: a.now, created_by_machine: a.machineId })
      .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('keySlotExists', { id: a.id });
  });
}

/**
 * Replaces the whole slot set if it is still the one the caller read (`expect`, its digest):
 * the signature the route checked covers both, so a change is applied once, on the state it
 * was made for. Returns the ids removed and added.
 */
export async function replaceKeySlots(
  db: Database,
  a: { customerId: CustomerId; machineId: MachineId; expect: string; generation: number; slots: readonly { id: string; json: string }[]; now: string },
): Promise<{ removed: string[]; added: string[] }> {
  // The customer's key slots: read the current set, compare, replace (one decision).
  return writeTransaction(db, [LockName.customer(a.customerId)], async (trx) => {
    const current = await trx.selectFrom('key_slots').select(['id', 'slot_json', 'seq']).where('customer_id', '=', a.customerId).orderBy('seq').execute();
    const generation = current.length === 0 ? 0 : Number(current[current.length - 1]!.seq) + 1;
    if (generation !== a.generation || keySlotsDigest(current.map((s) => JSON.parse(s.slot_json) as KeySlot)) !== a.expect) throw apiError('keySlotsMoved');
    await trx.deleteFrom('key_slots').where('customer_id', '=', a.customerId).execute();
    const before = new Map(current.map((s) => [s.id, s.slot_json]));
    // New numbers above every earlier one: the generation never repeats (no replay of an old
    // signed change), and a replica that updates rows one by one never meets a taken number.
    await trx
      .insertInto('key_slots')
      .values(a.slots.map((s, i) => ({ customer_id: a.customerId, id: s.id, seq: generation + i, slot_json: s.json, created_at: a.now, created_by_machine: a.machineId })))
      .execute();
    const after = new Set(a.slots.map((s) => s.id));
    return { removed: [...before.keys()].filter((id) => !after.has(id)), added: a.slots.filter((s) => before.get(s.id) !== s.json).map((s) => s.id) };
  });
}

/** Allows one upgrade to format 2 until `until` (the operator vouches for the request). */
export async function allowRepoUpgrade(db: Database, customerId: CustomerId, until: string | null): Promise<boolean> {
  const r = await db.updateTable('repos').set({ upgrade_allowed_until: until }).where('customer_id', '=', customerId).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Moves a format-1 repository to format 2 (same chunker and compression: chunk ids stay valid). */
export async function upgradeRepo(db: Database, a: { customerId: CustomerId; config: RepoConfig; now: string }): Promise<void> {
  // The customer's repository configuration: read, check the version and the approval, write (the approval is used up).
  await writeTransaction(db, [LockName.customer(a.customerId)], async (trx) => {
    const repo = await trx.selectFrom('repos').select(['config_json', 'upgrade_allowed_until']).where('customer_id', '=', a.customerId).executeTakeFirst();
    if (!repo) throw apiError('repoMissing');
    const cur = JSON.parse(repo.config_json) as RepoConfig;
    if (cur.v !== 1 || JSON.stringify(cur.chunker) !== JSON.stringify(a.config.chunker) || cur.compression !== a.config.compression) throw apiError('repoNotUpgradable');
    if (!repo.upgrade_allowed_until || repo.upgrade_allowed_until < a.now) throw apiError('repoUpgradeNotAllowed');
    await trx.updateTable('repos').set({ config_json: JSON.stringify(a.config), upgrade_allowed_until: null }).where('customer_id', '=', a.customerId).execute();
  });
}
