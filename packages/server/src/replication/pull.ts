// Over 400 lines? No. One replication pass, step by step: state, rows, each customer's packs and snapshots, the audit chain, held deletions.
import { decodeRefs, sha256Hex } from '@coffre/core';
import type { AuditLog } from '../audit/log.js';
import { toEntry } from '../audit/log.js';
import { entryHash } from '../audit/chain.js';
import type { ServerKeys } from '../auth/server-key.js';
import type { ServerSettings } from '../datadir.js';
import type { Database } from '../db/database.js';
import { MIGRATIONS } from '../db/migrations/index.js';
import {
  addHold,
  countIndexedChunks,
  deleteReplicaPack,
  deleteRowByKey,
  deleteSessionsOfUser,
  feedSnapshots,
  getSiteState,
  inTransaction,
  insertReplicatedAudit,
  lastReplicatedAudit,
  listHolds,
  localKeys,
  packsShortOfChunks,
  releaseHold,
  replicatedAuditEntry,
  updateSiteState,
  upsertReplicaCustomer,
  upsertRows,
  type Row,
} from '../db/queries/replication.js';
import { nextSequence } from '../db/queries/sequences.js';
import { operatorContact } from '../db/queries/orgs.js';
import { enqueue } from '../db/queries/outbox.js';
import { auditDivergedEmail } from '../mail/location-templates.js';
import type { AuditLogTable, SiteStateTable } from '../db/schema.js';
import type { LogSink } from '../log.js';
import { packKey, snapshotRefsKey } from '../object-keys.js';
import { TOTP_WIRE_PREFIX } from '../routes/replication/handler.js';
import type { ObjectStore } from '../store/object-store.js';
import { isoNow, type Clock, type CustomerId } from '../types.js';
import { PeerClient } from './client.js';
import { adoptStoredPack, indexPackCopy, receivePackCopy, reindexStoredPack } from './pack-copy.js';
import { keyString, REPLICATED_TABLES, SNAPSHOT_COLUMNS, SNAPSHOT_MUTABLE, type ReplicatedTable } from './tables.js';
import type { AuditPage, PacksPage, ProgressRequest, RowsPage, SnapshotsPage, StateResponse } from './wire.js';

export interface PassContext {
  readonly db: Database;
  readonly store: ObjectStore;
  readonly keys: ServerKeys;
  readonly clock: Clock;
  readonly log: LogSink;
  readonly settings: ServerSettings;
  readonly audit: AuditLog;
  /** This site's own certificate fingerprint (told to the primary with the progress report). */
  readonly fingerprint: string;
}

export interface PassReport {
  /** The primary's clock at the pass's start: everything it had then is here (when `complete`). */
  readonly upTo: string;
  readonly complete: boolean;
  readonly rows: Record<string, number>;
  readonly packs: { fetched: number; bytes: number; present: number; failed: number };
  readonly snapshots: { added: number; updated: number; waiting: number; rewritten: number };
  readonly holds: { added: number; released: number; deleted: number };
  readonly audit: { copied: number; diverged: string | null };
  /** What went wrong (per item), for the job's report: the pass is not complete. */
  readonly problems: string[];
  /** Worth a look but the copy is whole (e.g. a held row that cannot be deleted yet). */
  readonly warnings: string[];
}

export class ReplicationError extends Error {
  override readonly name = 'ReplicationError';
}

/** The purpose the replication credential is sealed under, in `site_state.credential_sealed`. */
export const CREDENTIAL_PURPOSE = 'replication-credential';

export function peerOfState(state: SiteStateTable, keys: ServerKeys): PeerClient {
  if (!state.primary_url || !state.primary_fingerprint || !state.credential_sealed) throw new ReplicationError('this site has not joined a primary (coffre-server replication join)');
  return new PeerClient(state.primary_url, state.primary_fingerprint, keys.open(state.credential_sealed, CREDENTIAL_PURPOSE).toString('utf8'));
}

/**
 * One replication pass (docs/CONTINUITY.md): everything the primary had when the pass
 * began is on this site when it returns with `complete`. Safe to interrupt anywhere
 * (kill -9 included): objects are published before the rows naming them, rows are upserts,
 * and a new pass skips what is already here. What vanished from the primary is held, not
 * deleted, until `replicaDeleteDelayDays` have passed.
 */
export async function replicatePass(ctx: PassContext): Promise<PassReport> {
  const state = await getSiteState(ctx.db);
  if (state?.role !== 'replica') throw new ReplicationError(`this site is ${state?.role ?? 'primary'}, not a replica: nothing to pull`);
  const peer = peerOfState(state, ctx.keys);
  const started = isoNow(ctx.clock);
  await updateSiteState(ctx.db, { pass_started_at: started, updated_at: started });
  const report: PassReport = {
    upTo: '',
    complete: false,
    rows: {},
    packs: { fetched: 0, bytes: 0, present: 0, failed: 0 },
    snapshots: { added: 0, updated: 0, waiting: 0, rewritten: 0 },
    holds: { added: 0, released: 0, deleted: 0 },
    audit: { copied: 0, diverged: null },
    problems: [],
    warnings: [],
  };
  try {
    const primary = await peer.json<StateResponse>('GET', '/replication/state');
    const schema = MIGRATIONS[MIGRATIONS.length - 1]![0];
    if (primary.schema !== schema) throw new ReplicationError(`the primary's database is at ${primary.schema}, this site's at ${schema}: run the same coffre version on both sites`);
    if (primary.role !== 'primary') throw new ReplicationError(`${peer.origin} is no longer a primary (it is ${primary.role}); join the current primary`);
    (report as { upTo: string }).upTo = primary.now;
    if (primary.epoch > state.epoch) await updateSiteState(ctx.db, { epoch: primary.epoch, updated_at: started });

    for (const t of REPLICATED_TABLES) {
      await assertStillReplica(ctx);
      report.rows[t.name] = await pullTable(ctx, peer, t, report);
    }
    const done: string[] = [];
    for (const customer of primary.customers as CustomerId[]) {
      await assertStillReplica(ctx);
      // Snapshots whose data are all here go in even when some pack failed (those needing it wait).
      const packsOk = await pullPacks(ctx, peer, customer, report);
      const snapshotsOk = await pullSnapshots(ctx, peer, customer, primary.now, report);
      if (packsOk && snapshotsOk) done.push(customer);
    }
    await pullAudit(ctx, peer, report);
    await assertStillReplica(ctx);
    // Nothing is deleted on the word of a primary this pass could not fully trust or read.
    if (report.problems.length === 0) await deleteHeldPastDelay(ctx, report);
    else report.warnings.push('held deletions wait: this pass had problems');
    (report as { complete: boolean }).complete = done.length === primary.customers.length && report.problems.length === 0;
    const finished = isoNow(ctx.clock);
    const progress: ProgressRequest = { site: { url: state.self_url, fingerprint: ctx.fingerprint }, upTo: primary.now, complete: report.complete, customers: done };
    await peer.json('POST', '/replication/progress', progress);
    await updateSiteState(ctx.db, {
      pass_finished_at: finished,
      pass_outcome: report.complete ? 'ok' : 'incomplete',
      pass_error: report.complete ? null : report.problems.slice(0, 3).join('; ') || 'some snapshots are still waiting for their data',
      ...(report.complete ? { replicated_up_to: primary.now } : {}),
      updated_at: finished,
    });
    return report;
  } catch (err) {
    const now = isoNow(ctx.clock);
    await updateSiteState(ctx.db, { pass_finished_at: now, pass_outcome: 'failed', pass_error: (err as Error).message.slice(0, 500), updated_at: now });
    throw err;
  } finally {
    peer.close();
  }
}

/** A promotion (or a new join) during a pass stops it: nothing more from the old source. */
async function assertStillReplica(ctx: PassContext): Promise<void> {
  const s = await getSiteState(ctx.db);
  if (s?.role !== 'replica') throw new ReplicationError(`this site became ${s?.role ?? 'primary'} during the pass: stopped`);
}

async function* pages<P>(fetch: (after: string | null) => Promise<P>, next: (p: P) => string | null): AsyncGenerator<P> {
  let after: string | null = null;
  for (;;) {
    const page = await fetch(after);
    yield page;
    after = next(page);
    if (after === null) return;
  }
}

/** Topological order for orgs (a parent before its children), whatever the key order. */
function parentsFirst(rows: Row[]): Row[] {
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  const out: Row[] = [];
  const placed = new Set<string>();
  const place = (r: Row, depth: number): void => {
    const id = String(r.id);
    if (placed.has(id) || depth > 64) return;
    const parent = r.parent_id === null || r.parent_id === undefined ? undefined : byId.get(String(r.parent_id));
    if (parent) place(parent, depth + 1);
    placed.add(id);
    out.push(r);
  };
  for (const r of rows) place(r, 0);
  return out;
}

/** Copies one control-plane table; holds what vanished; returns how many rows the primary has. */
async function pullTable(ctx: PassContext, peer: PeerClient, t: ReplicatedTable, report: PassReport): Promise<number> {
  let rows: Row[] = [];
  for await (const page of pages(
    (after) => peer.json<RowsPage>('GET', `/replication/rows/${t.name}${after === null ? '' : `?after=${encodeURIComponent(after)}`}`),
    (p) => (p.next === null ? null : JSON.stringify(p.next)),
  )) {
    rows.push(...page.rows.map((r) => pick(r, t.columns)));
  }
  if (t.name === 'orgs') rows = parentsFirst(rows);
  if (t.name === 'users') rows = rows.map((r) => resealTotp(ctx, r));
  await inTransaction(ctx.db, async (trx) => {
    if (t.name === 'customers') {
      for (const r of rows) await upsertReplicaCustomer(trx, r as { id: string; name: string; created_at: string }, () => nextSequence(trx, 'customers'));
    } else {
      await upsertRows(trx, t, t.columns, rows);
    }
  });
  const deleteNow = t.deleteAtOnce ? (key: string) => deleteRowByKey(ctx.db, t, JSON.parse(key) as unknown[]) : undefined;
  await reconcileHolds(ctx, t.name, new Set(rows.map((r) => keyString(t, r))), (await localKeys(ctx.db, t)).map((r) => keyString(t, r)), null, report, deleteNow);
  return rows.length;
}

function pick(row: Readonly<Record<string, unknown>>, columns: readonly string[]): Row {
  const out: Row = {};
  for (const c of columns) out[c] = row[c] ?? null;
  return out;
}

function resealTotp(ctx: PassContext, r: Row): Row {
  const v = r.totp_secret;
  if (typeof v !== 'string' || !v.startsWith(TOTP_WIRE_PREFIX)) return { ...r, totp_secret: null };
  return { ...r, totp_secret: ctx.keys.seal(Buffer.from(v.slice(TOTP_WIRE_PREFIX.length), 'base64'), `totp:${String(r.id)}`) };
}

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
async function reconcileHolds(
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

async function pullPacks(ctx: PassContext, peer: PeerClient, customer: CustomerId, report: PassReport): Promise<boolean> {
  const t = { name: 'packs', key: ['customer_id', 'id'] };
  const local = new Set((await localKeys(ctx.db, t, { column: 'customer_id', id: customer })).map((r) => String(r.id)));
  const seen = new Set<string>();
  let ok = true;
  for await (const page of pages(
    (after) => peer.json<PacksPage>('GET', `/replication/customers/${customer}/packs${after === null ? '' : `?after=${after}`}`),
    (p) => p.next,
  )) {
    for (const p of page.packs) {
      seen.add(p.id);
      if (local.has(p.id)) {
        report.packs.present++;
        continue;
      }
      if (await adoptStoredPack(ctx.db, ctx.store, customer, p.id, p.size, isoNow(ctx.clock))) {
        report.packs.present++;
        continue;
      }
      try {
        await copyPack(ctx, peer, customer, p.id, p.size);
        report.packs.fetched++;
        report.packs.bytes += p.size;
      } catch (err) {
        ok = false;
        report.packs.failed++;
        report.problems.push(`pack ${p.id.slice(0, 12)} of customer ${customer}: ${(err as Error).message}`);
      }
    }
  }
  await reconcileHolds(ctx, 'packs', new Set([...seen].map((id) => JSON.stringify([customer, id]))), [...local].map((id) => JSON.stringify([customer, id])), customer, report);
  return ok;
}

/** Fetches one pack from the peer, checks every byte, stores and indexes it. */
export async function copyPack(ctx: Pick<PassContext, 'db' | 'store' | 'clock'>, peer: PeerClient, customer: CustomerId, id: string, size: number): Promise<void> {
  const body = await peer.stream('GET', `/replication/customers/${customer}/packs/${id}`);
  const entries = await receivePackCopy(ctx.store, customer, id, size, body);
  await indexPackCopy(ctx.db, customer, id, size, entries, isoNow(ctx.clock));
}

async function pullSnapshots(ctx: PassContext, peer: PeerClient, customer: CustomerId, upTo: string, report: PassReport): Promise<boolean> {
  const t = { name: 'snapshots', key: ['customer_id', 'id'] };
  const localRows = new Map<string, Row>();
  for (const r of await sqlSnapshotRows(ctx, customer)) localRows.set(String(r.id), r);
  const seen = new Set<string>();
  let ok = true;
  for await (const page of pages(
    (after) => peer.json<SnapshotsPage>('GET', `/replication/customers/${customer}/snapshots${after === null ? '' : `?after=${after}`}`),
    (p) => p.next,
  )) {
    for (const raw of page.snapshots) {
      const row = pick(raw, SNAPSHOT_COLUMNS);
      const id = String(row.id);
      seen.add(id);
      if (row.customer_id !== customer) continue;
      const mine = localRows.get(id);
      if (mine) {
        const changed = SNAPSHOT_COLUMNS.filter((c) => !(SNAPSHOT_MUTABLE as readonly string[]).includes(c) && String(mine[c] ?? '') !== String(row[c] ?? ''));
        if (changed.length > 0) {
          // A completed snapshot never changes: keep ours, tell the operator.
          report.snapshots.rewritten++;
          report.problems.push(`snapshot ${id} of customer ${customer} changed on the primary (${changed.join(', ')}); the replica keeps its copy`);
          continue;
        }
        if (SNAPSHOT_MUTABLE.some((c) => String(mine[c] ?? '') !== String(row[c] ?? ''))) {
          await upsertRows(ctx.db, t, SNAPSHOT_COLUMNS, [{ ...mine, ...pick(row, SNAPSHOT_MUTABLE) }]);
          report.snapshots.updated++;
        }
        continue;
      }
      const added = await copySnapshot(ctx, peer, customer, row).catch((err: Error) => {
        report.problems.push(`snapshot ${id} of customer ${customer}: ${err.message}`);
        return false;
      });
      if (added) report.snapshots.added++;
      else {
        report.snapshots.waiting++;
        // Committed after the pass began: its packs come with the next pass. Before: this pass is not complete.
        if (String(row.time) <= upTo) ok = false;
      }
    }
  }
  await reconcileHolds(ctx, 'snapshots', new Set([...seen].map((id) => JSON.stringify([customer, id]))), [...localRows.keys()].map((id) => JSON.stringify([customer, id])), customer, report);
  return ok;
}

async function sqlSnapshotRows(ctx: PassContext, customer: CustomerId): Promise<Row[]> {
  const out: Row[] = [];
  let after: string | null = null;
  for (;;) {
    const rows = await feedSnapshots(ctx.db, customer, after, 1000, SNAPSHOT_COLUMNS);
    out.push(...rows);
    if (rows.length < 1000) return out;
    after = String(rows[rows.length - 1]!.id);
  }
}

/**
 * A snapshot goes in only once everything it needs is here: its reference list (checked
 * against the manifest's SHA-256 and count) and every chunk it references in this site's
 * index. False when something is still missing (the next pass tries again).
 */
async function copySnapshot(ctx: PassContext, peer: PeerClient, customer: CustomerId, row: Row): Promise<boolean> {
  const id = String(row.id);
  const manifest = JSON.parse(String(row.manifest_json)) as { refsSha256?: string; refCount?: number };
  const refs = await peer.bytes(`/replication/customers/${customer}/snapshots/${id}/refs`);
  if (sha256Hex(refs) !== manifest.refsSha256) throw new ReplicationError('its reference list does not match the manifest (SHA-256)');
  const ids = decodeRefs(refs);
  if (ids.length !== manifest.refCount) throw new ReplicationError('its reference list does not hold refCount ids');
  const distinct = [...new Set(ids)].map((x) => Buffer.from(x, 'hex'));
  if ((await countIndexedChunks(ctx.db, customer, distinct)) !== distinct.length) return false;
  await ctx.store.put(snapshotRefsKey(customer, id), refs);
  await upsertRows(ctx.db, { name: 'snapshots', key: ['customer_id', 'id'] }, SNAPSHOT_COLUMNS, [row]);
  return true;
}

/**
 * Copies the primary's new audit entries after checking that they extend what this site
 * holds: the entry it holds last must still be there with the same hash, and every new
 * entry must hash correctly and link to the one before. A rewritten, truncated or forked
 * chain is never copied: the divergence is recorded (status, alert to the operator).
 */
async function pullAudit(ctx: PassContext, peer: PeerClient, report: PassReport): Promise<void> {
  let last = await lastReplicatedAudit(ctx.db);
  const diverged = async (why: string): Promise<void> => {
    report.audit.diverged = why;
    report.problems.push(`audit chain: ${why}`);
    const state = await getSiteState(ctx.db);
    if (state?.audit_diverged_at) return; // already known (and alerted)
    const now = isoNow(ctx.clock);
    await updateSiteState(ctx.db, { audit_diverged_at: now, audit_diverged_reason: why, updated_at: now });
    await ctx.audit.append({
      actorType: 'system', actorId: null, actorLabel: 'replication', orgId: null, action: 'replication.audit_diverged', target: `site:${state?.primary_name ?? 'primary'}`,
      ip: null, userAgent: null, requestId: null, outcome: 'failure', details: { reason: why },
    });
    ctx.log({ level: 'error', msg: "the primary's audit chain diverges from the replica's copy", reason: why });
    // The operator hears of it from here: the primary may be the one that cannot be trusted.
    const operator = await operatorContact(ctx.db);
    if (operator?.alert_email) {
      const e = auditDivergedEmail({ site: state?.self_name ?? 'replica', primary: state?.primary_name ?? 'primary', reason: why, at: now }, operator.locale);
      await enqueue(ctx.db, { dedupKey: `audit-diverged:${now}`, kind: 'audit_diverged', to: operator.alert_email, locale: operator.locale, subject: e.subject, text: e.text, html: e.html }, ctx.clock());
    }
  };
  const known = await getSiteState(ctx.db);
  if (known?.audit_diverged_at) {
    // Copying stays stopped until the operator has looked (docs/CONTINUITY.md): every pass says so.
    report.audit.diverged = known.audit_diverged_reason ?? 'diverged';
    report.problems.push(`audit chain: ${report.audit.diverged} (since ${known.audit_diverged_at}; entries are no longer copied)`);
    return;
  }
  for (;;) {
    const page = await peer.json<AuditPage>('GET', `/replication/audit?from=${last ? last.seq : 0}`);
    let entries = page.entries as unknown as AuditLogTable[];
    if (last) {
      const first = entries[0];
      if (!first || Number(first.seq) !== last.seq) {
        // Our newest entry is gone from the primary: fine only if it was purged exactly there.
        const mine = await replicatedAuditEntry(ctx.db, last.seq);
        if (!(page.anchor && page.anchor.seq >= last.seq && mine && (page.anchor.seq > last.seq || page.anchor.hash === mine.hash))) {
          return diverged(`entry ${last.seq} is missing from the primary (truncated or rewritten chain)`);
        }
        if (page.anchor.seq > last.seq) return diverged(`entries after ${last.seq} were purged on the primary before this site copied them`);
      } else {
        if (first.hash !== last.hash) return diverged(`entry ${last.seq} has changed on the primary (rewritten chain)`);
        entries = entries.slice(1);
      }
    }
    if (entries.length === 0) return;
    let prev = last;
    for (const e of entries) {
      const seq = Number(e.seq);
      if (prev && (seq !== prev.seq + 1 || e.prev_hash !== prev.hash)) return diverged(`entry ${seq} does not follow entry ${prev.seq} (forked chain)`);
      if (!prev && page.anchor && (seq !== page.anchor.seq + 1 || e.prev_hash !== page.anchor.hash)) return diverged(`entry ${seq} does not follow the primary's anchor`);
      const entry = toEntry({ ...e, seq });
      const { seq: _s, prevHash: _p, hash: _h, ...rec } = entry;
      if (entryHash(e.prev_hash, seq, rec) !== e.hash) return diverged(`entry ${seq} does not match its hash (altered entry)`);
      prev = { seq, hash: e.hash };
    }
    await insertReplicatedAudit(ctx.db, entries.map((e) => ({ ...e, seq: Number(e.seq) })));
    report.audit.copied += entries.length;
    last = prev;
  }
}

/** Deletes what the primary deleted at least `replicaDeleteDelayDays` ago (reverse dependency order). */
async function deleteHeldPastDelay(ctx: PassContext, report: PassReport): Promise<void> {
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
