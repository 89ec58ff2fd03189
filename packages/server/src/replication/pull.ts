// One replication pass, step by step: state, rows, each customer's packs and snapshots; the audit chain (audit-check.ts) and held deletions (holds.ts).
import { decodeRefs, sha256Hex } from '@coffre/core';
import type { AuditLog } from '../audit/log.js';
import type { ServerKeys } from '../auth/server-key.js';
import type { ServerSettings } from '../datadir.js';
import type { Database } from '../db/database.js';
import { MIGRATIONS } from '../db/migrations/index.js';
import {
  deleteRowByKey,
  feedSnapshots,
  getSiteState,
  inTransaction,
  localKeys,
  updateSiteState,
  upsertReplicaCustomer,
  upsertRows,
  type Row,
} from '../db/queries/replication.js';
import { nextSequence } from '../db/queries/sequences.js';
import { existingChunks, indexPack } from '../db/queries/packs.js';
import type { SiteStateTable } from '../db/schema.js';
import type { LogSink } from '../log.js';
import { snapshotRefsKey } from '../object-keys.js';
import { TOTP_WIRE_PREFIX } from '../routes/replication/handler.js';
import type { ObjectStore } from '../store/object-store.js';
import { isoNow, type Clock, type CustomerId } from '../types.js';
import { pullAudit } from './audit-check.js';
import { deleteHeldPastDelay, reconcileHolds } from './holds.js';
import { PeerClient } from './client.js';
import { adoptStoredPack, receivePackCopy } from './pack-copy.js';
import { keyString, REPLICATED_TABLES, SNAPSHOT_COLUMNS, SNAPSHOT_MUTABLE, type ReplicatedTable } from './tables.js';
import type { PacksPage, ProgressRequest, RowsPage, SnapshotsPage, StateResponse } from './wire.js';

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
    await pullAudit(ctx, peer, report, primary.auditKey);
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
async function copyPack(ctx: Pick<PassContext, 'db' | 'store' | 'clock'>, peer: PeerClient, customer: CustomerId, id: string, size: number): Promise<void> {
  const body = await peer.stream('GET', `/replication/customers/${customer}/packs/${id}`);
  const entries = await receivePackCopy(ctx.store, customer, id, size, body);
  await indexPack(ctx.db, { customerId: customer, packId: id, size, entries, now: isoNow(ctx.clock) });
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
  // The same presence check as a snapshot commit on the primary.
  const present = await existingChunks(ctx.db, customer, ids);
  if (ids.some((x) => !present.has(x))) return false;
  await ctx.store.put(snapshotRefsKey(customer, id), refs);
  await upsertRows(ctx.db, { name: 'snapshots', key: ['customer_id', 'id'] }, SNAPSHOT_COLUMNS, [row]);
  return true;
}

