import { addHold, deleteReplicaPack, deleteRowByKey, deleteSessionsOfUser, getSiteState, listHolds, packsShortOfChunks, releaseHold } from '../db/queries/replication.js';
import { packKey, snapshotRefsKey } from '../object-keys.js';
import { isoNow, type CustomerId } from '../types.js';
import { reindexStoredPack } from './pack-copy.js';
import type { PassContext, PassReport } from './pull.js';
import { REPLICATED_TABLES } from './tables.js';

/**
 * What the primary no longer has, on the replica: held first (`replica_holds`), deleted
 * once `replicaDeleteDelayDays` have passed (docs/CONTINUITY.md), never all at once on a
 * primary's word.
 */

/** Share of what the replica holds (of one table, or one customer's packs or snapshots) that may vanish in one pass before the operator must confirm. */
const MASS_DELETION_SHARE = 0.5;
const MASS_DELETION_MIN = 10;

/**
 * Holds what is here but no longer on the primary; releases holds on what came back. When
 * more than half of what the replica holds vanished at once (a wiped or lying primary),
 * nothing is held: the pass fails and says so, until the operator confirms the deletion
 * (`coffre-server replication accept-deletions`). Access-control rows (`deleteAtOnce`) are
 * deleted at once instead of held.
 */
export async function reconcileHolds(
  ctx: PassContext,
  tbl: string,
  seen: ReadonlySet<string>,
  local: readonly string[],
  customerId: string | null,
  report: PassReport,
  deleteNow?: (key: string) => Promise<void>,
): Promise<void> {
  const now = isoNow(ctx.clock);
  const held = new Set((await listHolds(ctx.db, tbl, customerId ?? undefined)).map((h) => h.key));
  const missing = local.filter((k) => !seen.has(k));
  // Only what vanished since the last pass counts (what is already held was accepted then).
  const vanished = missing.filter((k) => !held.has(k)).length;
  if (vanished >= MASS_DELETION_MIN && vanished > local.length * MASS_DELETION_SHARE) {
    const accepted = (await getSiteState(ctx.db))?.mass_deletion_accepted_until;
    if (!accepted || accepted < now) {
      report.problems.push(
        `${vanished} of the ${local.length} ${tbl}${customerId ? ` of customer ${customerId}` : ''} held here vanished from the primary at once: nothing is deleted until an operator confirms (coffre-server replication accept-deletions)`,
      );
      return;
    }
  }
  for (const key of missing) {
    if (deleteNow) await deleteNow(key);
    else await addHold(ctx.db, { tbl, key, customer_id: customerId, first_missing_at: now });
  }
  for (const h of await listHolds(ctx.db, tbl, customerId ?? undefined)) {
    if (seen.has(h.key)) {
      await releaseHold(ctx.db, tbl, h.key);
      report.holds.released++;
    } else if (h.first_missing_at === now) report.holds.added++;
  }
}

/** Deletes what the primary deleted at least `replicaDeleteDelayDays` ago (reverse dependency order). */
export async function deleteHeldPastDelay(ctx: PassContext, report: PassReport): Promise<void> {
  const cutoff = new Date(ctx.clock().getTime() - ctx.settings.replicaDeleteDelayDays * 86_400_000).toISOString();
  const due = async (tbl: string): Promise<{ key: string; values: unknown[] }[]> =>
    (await listHolds(ctx.db, tbl)).filter((h) => h.first_missing_at <= cutoff).map((h) => ({ key: h.key, values: JSON.parse(h.key) as unknown[] }));
  for (const h of await due('snapshots')) {
    const [customer, id] = h.values as [CustomerId, string];
    await deleteRowByKey(ctx.db, { name: 'snapshots', key: ['customer_id', 'id'] }, h.values);
    await ctx.store.delete(snapshotRefsKey(customer, id));
    await releaseHold(ctx.db, 'snapshots', h.key);
    report.holds.deleted++;
  }
  // A chunk indexed in a deleted pack may also be in another (a repacked copy): those are
  // indexed again before the holds go, so that a pass killed in between does it next time.
  const packsDue = await due('packs');
  const touched = new Set<CustomerId>();
  for (const h of packsDue) {
    const [customer, id] = h.values as [CustomerId, string];
    await deleteReplicaPack(ctx.db, customer, id);
    await ctx.store.delete(packKey(customer, id));
    touched.add(customer);
  }
  for (const customer of touched) {
    for (const p of await packsShortOfChunks(ctx.db, customer)) await reindexStoredPack(ctx.db, ctx.store, customer, p.id, p.size, isoNow(ctx.clock));
  }
  for (const h of packsDue) {
    await releaseHold(ctx.db, 'packs', h.key);
    report.holds.deleted++;
  }
  for (const t of [...REPLICATED_TABLES].reverse()) {
    for (const h of await due(t.name)) {
      try {
        // A person's sessions on this site are this site's own rows: they go with the person.
        if (t.name === 'users') await deleteSessionsOfUser(ctx.db, String(h.values[0]));
        await deleteRowByKey(ctx.db, t, h.values);
        await releaseHold(ctx.db, t.name, h.key);
        report.holds.deleted++;
      } catch (err) {
        report.warnings.push(`${t.name} ${h.key}: deleted on the primary, not deleted here yet (${(err as Error).message}); tried again next pass`);
      }
    }
  }
}
