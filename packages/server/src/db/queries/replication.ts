// Over 400 lines? No: the primary's feed, the replica's writes and the site's own state, one home for replication's SQL.
import { randomUUID } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { ReplicatedTable } from '../../replication/tables.js';
import type { CustomerId } from '../../types.js';
import type { Database } from '../database.js';
import { LockName, writeTransaction } from '../engine.js';
import type { AuditLogTable, ReplicationCredentialsTable, SiteRole, SiteStateTable, SitesTable } from '../schema.js';

export type Row = Record<string, unknown>;

function cols(names: readonly string[]): RawBuilder<unknown> {
  return sql.join(names.map((c) => sql.ref(c)));
}
function keyAfter(key: readonly string[], after: readonly unknown[] | null): RawBuilder<unknown> {
  if (after === null) return sql`1 = 1`;
  return sql`(${cols(key)}) > (${sql.join(after.map((v) => sql`${v}`))})`;
}

// ---------------------------------------------------------------- the primary's feed

/** One page of a replicated table in key order, after `after` (a key's values), at most `limit` rows. */
export async function feedRows(db: Database, t: ReplicatedTable, after: readonly unknown[] | null, limit: number): Promise<Row[]> {
  const r = await sql<Row>`select ${cols(t.columns)} from ${sql.table(t.name)} where ${keyAfter(t.key, after)} order by ${cols(t.key)} limit ${limit}`.execute(db);
  return r.rows;
}

/** One page of a customer's packs in id order. */
export async function feedPacks(db: Database, customerId: CustomerId, after: string | null, limit: number): Promise<{ id: string; size: number; created_at: string }[]> {
  let q = db.selectFrom('packs').select(['id', 'size', 'created_at']).where('customer_id', '=', customerId);
  if (after !== null) q = q.where('id', '>', after);
  const rows = await q.orderBy('id').limit(limit).execute();
  return rows.map((r) => ({ id: r.id, size: Number(r.size), created_at: r.created_at }));
}

/** One page of a customer's snapshot rows in id order (the recycle bin's included). */
export async function feedSnapshots(db: Database, customerId: CustomerId, after: string | null, limit: number, columns: readonly string[]): Promise<Row[]> {
  const r = await sql<Row>`select ${cols(columns)} from snapshots where customer_id = ${customerId} and ${after === null ? sql`1 = 1` : sql`id > ${after}`} order by id limit ${limit}`.execute(db);
  return r.rows;
}

/** Audit entries from `fromSeq` on (inclusive), oldest first. */
export async function auditFrom(db: Database, fromSeq: number, limit: number): Promise<AuditLogTable[]> {
  return db.selectFrom('audit_log').selectAll().where('seq', '>=', fromSeq).orderBy('seq').limit(limit).execute();
}

export async function insertReplicationToken(db: Database, a: { tokenHash: string; now: string; expiresAt: string; createdBy: string }): Promise<void> {
  await db.insertInto('replication_tokens').values({ id: randomUUID(), token_hash: a.tokenHash, created_at: a.now, expires_at: a.expiresAt, used_at: null, created_by: a.createdBy }).execute();
}

/** Consumes a one-time join token and records the replica's credential (hash) in one transaction; false if the token is unknown, used or expired. */
export async function exchangeReplicationToken(db: Database, a: { tokenHash: string; credentialHash: string; siteName: string; peerCredentialSealed: string | null; now: string }): Promise<boolean> {
  return writeTransaction(db, [LockName.lease('replication-join')], async (trx) => {
    const claimed = await trx
      .updateTable('replication_tokens')
      .set({ used_at: a.now })
      .where('token_hash', '=', a.tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', a.now)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return false;
    // One credential per replica site: joining again replaces the previous one.
    await trx.updateTable('replication_credentials').set({ revoked_at: a.now }).where('site_name', '=', a.siteName).where('revoked_at', 'is', null).execute();
    await trx
      .insertInto('replication_credentials')
      .values({ id: randomUUID(), credential_hash: a.credentialHash, site_name: a.siteName, created_at: a.now, last_seen_at: null, pass_finished_at: null, replicated_up_to: null, revoked_at: null, peer_credential_sealed: a.peerCredentialSealed })
      .execute();
    return true;
  });
}

export async function findReplicationCredential(db: Database, credentialHash: string): Promise<ReplicationCredentialsTable | undefined> {
  return db.selectFrom('replication_credentials').selectAll().where('credential_hash', '=', credentialHash).where('revoked_at', 'is', null).executeTakeFirst();
}

export async function touchReplicationCredential(db: Database, id: string, now: string): Promise<void> {
  await db.updateTable('replication_credentials').set({ last_seen_at: now }).where('id', '=', id).execute();
}

export async function listReplicationCredentials(db: Database): Promise<ReplicationCredentialsTable[]> {
  return db.selectFrom('replication_credentials').selectAll().where('revoked_at', 'is', null).orderBy('created_at').execute();
}

/** A replica's report after a complete pass: it holds everything the primary had at `upTo`, for these customers. */
export async function recordReplicaProgress(db: Database, a: { credentialId: string; siteName: string; primarySite: string; upTo: string; complete: boolean; customers: readonly string[]; now: string }): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // The site as a whole is only as far as its last complete pass.
    await trx
      .updateTable('replication_credentials')
      .set(a.complete ? { pass_finished_at: a.now, replicated_up_to: a.upTo, last_seen_at: a.now } : { pass_finished_at: a.now, last_seen_at: a.now })
      .where('id', '=', a.credentialId)
      .execute();
    for (let i = 0; i < a.customers.length; i += 500) {
      const batch = a.customers.slice(i, i + 500);
      // A customer without recorded sites has this primary and this replica from now on.
      const known = new Set((await trx.selectFrom('customer_sites').select('customer_id').where('customer_id', 'in', batch).execute()).map((r) => r.customer_id));
      const fresh = batch.filter((c) => !known.has(c));
      if (fresh.length > 0) {
        await trx
          .insertInto('customer_sites')
          .values(fresh.map((c) => ({ customer_id: c, primary_site: a.primarySite, replica_site: a.siteName, replicated_up_to: null, updated_at: a.now })))
          .execute();
      }
      await trx
        .updateTable('customer_sites')
        .set({ replicated_up_to: a.upTo })
        .where('customer_id', 'in', batch)
        .where('replica_site', '=', a.siteName)
        .where((eb) => eb.or([eb('replicated_up_to', 'is', null), eb('replicated_up_to', '<', a.upTo)]))
        .execute();
    }
  });
}

// ---------------------------------------------------------------- the replica's writes

/** Every key of a table (optionally of one customer), as rows of its key columns. */
export async function localKeys(db: Database, t: Pick<ReplicatedTable, 'name' | 'key'>, customer?: { column: string; id: string }): Promise<Row[]> {
  const where = customer ? sql`${sql.ref(customer.column)} = ${customer.id}` : sql`1 = 1`;
  return (await sql<Row>`select ${cols(t.key)} from ${sql.table(t.name)} where ${where}`.execute(db)).rows;
}

/**
 * Inserts or updates rows by their key (the columns given; nothing else). Columns named in
 * `monotonic` never go back: 'keep-set' keeps a value already set here (a recovery code used
 * on this site stays used), 'max' keeps the larger (a TOTP step, a security key's counter).
 */
export async function upsertRows(db: Database, t: Pick<ReplicatedTable, 'name' | 'key' | 'monotonic'>, columns: readonly string[], rows: readonly Row[]): Promise<void> {
  const rest = columns.filter((c) => !t.key.includes(c));
  const table = sql.table(t.name);
  const assign = (c: string) => {
    const rule = t.monotonic?.[c];
    if (rule === 'keep-set') return sql`${sql.ref(c)} = coalesce(${table}.${sql.ref(c)}, excluded.${sql.ref(c)})`;
    if (rule === 'max') return sql`${sql.ref(c)} = case when ${table}.${sql.ref(c)} is null or excluded.${sql.ref(c)} > ${table}.${sql.ref(c)} then excluded.${sql.ref(c)} else ${table}.${sql.ref(c)} end`;
    return sql`${sql.ref(c)} = excluded.${sql.ref(c)}`;
  };
  const action = rest.length === 0 ? sql`do nothing` : sql`do update set ${sql.join(rest.map(assign))}`;
  for (const row of rows) {
    await sql`insert into ${sql.table(t.name)} (${cols(columns)}) values (${sql.join(columns.map((c) => sql`${row[c] ?? null}`))}) on conflict (${cols(t.key)}) ${action}`.execute(db);
  }
}

/** Deletes one row by its key values. */
export async function deleteRowByKey(db: Database, t: Pick<ReplicatedTable, 'name' | 'key'>, key: readonly unknown[]): Promise<void> {
  const where = sql.join(t.key.map((c, i) => sql`${sql.ref(c)} = ${key[i] ?? null}`), sql` and `);
  await sql`delete from ${sql.table(t.name)} where ${where}`.execute(db);
}

/** Sessions are each site's own: removed with their person when a replica deletes the person. */
export async function deleteSessionsOfUser(db: Database, userId: string): Promise<void> {
  await db.deleteFrom('sessions').where('user_id', '=', userId).execute();
}

export interface HoldRow {
  readonly tbl: string;
  readonly key: string;
  readonly customer_id: string | null;
  readonly first_missing_at: string;
}

export async function listHolds(db: Database, tbl: string, customerId?: string): Promise<HoldRow[]> {
  let q = db.selectFrom('replica_holds').selectAll().where('tbl', '=', tbl);
  if (customerId !== undefined) q = q.where('customer_id', '=', customerId);
  return q.execute();
}

export async function addHold(db: Database, h: HoldRow): Promise<void> {
  await db.insertInto('replica_holds').values(h).onConflict((oc) => oc.columns(['tbl', 'key']).doNothing()).execute();
}

export async function releaseHold(db: Database, tbl: string, key: string): Promise<void> {
  await db.deleteFrom('replica_holds').where('tbl', '=', tbl).where('key', '=', key).execute();
}

export async function countHolds(db: Database): Promise<number> {
  return Number((await db.selectFrom('replica_holds').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
}

/** Removes a pack from a replica's index (its chunk rows, then the pack row); the object goes after. */
export async function deleteReplicaPack(db: Database, customerId: CustomerId, packId: string): Promise<void> {
  await writeTransaction(db, [LockName.customer(customerId)], async (trx) => {
    const pack = await trx.selectFrom('packs').select('seq').where('customer_id', '=', customerId).where('id', '=', packId).executeTakeFirst();
    if (!pack) return;
    await trx.deleteFrom('chunks').where('pack_seq', '=', pack.seq).execute();
    await trx.deleteFrom('packs').where('customer_id', '=', customerId).where('id', '=', packId).execute();
  });
}

/** The customer's packs with fewer index rows than chunks: they hold copies of chunks indexed elsewhere (re-indexed after a pack is removed). */
export async function packsShortOfChunks(db: Database, customerId: CustomerId): Promise<{ id: string; size: number }[]> {
  const rows = await db
    .selectFrom('packs')
    .select(['packs.id', 'packs.size'])
    .where('packs.customer_id', '=', customerId)
    .where((eb) => eb('packs.chunk_count', '>', eb.selectFrom('chunks').select((e) => e.fn.countAll<number>().as('n')).whereRef('chunks.pack_seq', '=', 'packs.seq')))
    .execute();
  return rows.map((r) => ({ id: r.id, size: Number(r.size) }));
}

/** Inserts a replicated customer with this site's own number for it (or leaves an existing one alone but its name). */
export async function upsertReplicaCustomer(db: Database, row: { id: string; name: string; created_at: string }, seq: () => Promise<number>): Promise<void> {
  const existing = await db.selectFrom('customers').select('id').where('id', '=', row.id).executeTakeFirst();
  if (existing) {
    await db.updateTable('customers').set({ name: row.name }).where('id', '=', row.id).execute();
    return;
  }
  await db.insertInto('customers').values({ id: row.id, name: row.name, created_at: row.created_at, seq: await seq() }).execute();
}

export async function lastReplicatedAudit(db: Database): Promise<{ seq: number; hash: string } | null> {
  const r = await db.selectFrom('replicated_audit').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return r ? { seq: Number(r.seq), hash: r.hash } : null;
}

export async function replicatedAuditEntry(db: Database, seq: number): Promise<AuditLogTable | undefined> {
  return db.selectFrom('replicated_audit').selectAll().where('seq', '=', seq).executeTakeFirst();
}

const AUDIT_COLUMNS = ['seq', 'time', 'actor_type', 'actor_id', 'actor_label', 'org_id', 'action', 'target', 'ip', 'user_agent', 'request_id', 'outcome', 'details_json', 'prev_hash', 'hash'] as const;

export async function insertReplicatedAudit(db: Database, received: readonly AuditLogTable[]): Promise<void> {
  if (received.length === 0) return;
  // Exactly the audit columns, whatever else the primary sent.
  const rows = received.map((r) => Object.fromEntries(AUDIT_COLUMNS.map((c) => [c, r[c] ?? null])) as unknown as AuditLogTable);
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += 100) await trx.insertInto('replicated_audit').values(rows.slice(i, i + 100)).onConflict((oc) => oc.column('seq').doNothing()).execute();
  });
}

/** Forgets the copy of a previous primary's audit chain (joining another primary: its chain is another). */
export async function clearReplicatedAudit(db: Database): Promise<void> {
  await db.deleteFrom('replicated_audit').execute();
}

/** Runs `fn` in one transaction (a replicated table's page goes in whole or not at all). */
export async function inTransaction<T>(db: Database, fn: (trx: Database) => Promise<T>): Promise<T> {
  return db.transaction().execute(fn);
}

export async function countReplicatedAudit(db: Database): Promise<number> {
  return Number((await db.selectFrom('replicated_audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
}

// ---------------------------------------------------------------- this site

export async function getSiteState(db: Database): Promise<SiteStateTable | undefined> {
  const r = await db.selectFrom('site_state').selectAll().where('id', '=', 1).executeTakeFirst();
  return r ? { ...r, epoch: Number(r.epoch), demoted_by_epoch: r.demoted_by_epoch === null ? null : Number(r.demoted_by_epoch) } : undefined;
}

/** The site's state, created on first use as a primary of epoch 1. */
export async function ensureSiteState(db: Database, a: { selfName: string; now: string }): Promise<SiteStateTable> {
  await db
    .insertInto('site_state')
    .values({
      id: 1, self_name: a.selfName, role: 'primary', epoch: 1, self_url: null, primary_name: null, primary_url: null, primary_fingerprint: null, credential_sealed: null,
      joined_at: null, demoted_at: null, demoted_by_epoch: null, pass_started_at: null, pass_finished_at: null, pass_outcome: null, pass_error: null,
      replicated_up_to: null, audit_diverged_at: null, audit_diverged_reason: null, mass_deletion_accepted_until: null, primary_audit_key: null, updated_at: a.now,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  return (await getSiteState(db))!;
}

export type SiteStatePatch = Partial<Omit<SiteStateTable, 'id'>>;

export async function updateSiteState(db: Database, patch: SiteStatePatch & { updated_at: string }): Promise<void> {
  await db.updateTable('site_state').set(patch).where('id', '=', 1).execute();
}

/** Demotes this site if it is a primary with a lower epoch than `byEpoch`; true if it changed. */
export async function demoteIfBehind(db: Database, byEpoch: number, now: string): Promise<boolean> {
  const r = await db
    .updateTable('site_state')
    .set({ role: 'demoted' satisfies SiteRole, demoted_at: now, demoted_by_epoch: byEpoch, updated_at: now })
    .where('id', '=', 1)
    .where('role', '=', 'primary')
    .where('epoch', '<', byEpoch)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function listSites(db: Database): Promise<SitesTable[]> {
  return (await db.selectFrom('sites').selectAll().orderBy('name').execute()).map((s) => ({ ...s, hds_certified: Number(s.hds_certified) }));
}

export async function findSite(db: Database, name: string): Promise<SitesTable | undefined> {
  return db.selectFrom('sites').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Creates or updates a site; fields left undefined keep their value (or the defaults for a new site). */
export async function upsertSite(
  db: Database,
  s: { name: string; url?: string | null; fingerprint?: string | null; country?: string; provider?: string; hdsCertified?: boolean; now: string },
): Promise<void> {
  const existing = await findSite(db, s.name);
  if (!existing) {
    await db
      .insertInto('sites')
      .values({ name: s.name, url: s.url ?? null, fingerprint: s.fingerprint ?? null, country: s.country ?? 'FR', provider: s.provider ?? '', hds_certified: s.hdsCertified ? 1 : 0, created_at: s.now, updated_at: s.now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return;
  }
  const patch: Partial<SitesTable> = {};
  if (s.url !== undefined && s.url !== existing.url) patch.url = s.url;
  if (s.fingerprint !== undefined && s.fingerprint !== existing.fingerprint) patch.fingerprint = s.fingerprint;
  if (s.country !== undefined && s.country !== existing.country) patch.country = s.country;
  if (s.provider !== undefined && s.provider !== existing.provider) patch.provider = s.provider;
  if (s.hdsCertified !== undefined && (s.hdsCertified ? 1 : 0) !== Number(existing.hds_certified)) patch.hds_certified = s.hdsCertified ? 1 : 0;
  if (Object.keys(patch).length > 0) await db.updateTable('sites').set({ ...patch, updated_at: s.now }).where('name', '=', s.name).execute();
}

/**
 * On a replica joining: the only credential it accepts from now on is the one its primary
 * calls it back with (repairs); any other (a former replica's, when an old primary
 * re-joins) is revoked.
 */
export async function resetPeerCredentials(db: Database, a: { credentialHash: string; primarySite: string; now: string }): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('replication_credentials').set({ revoked_at: a.now }).where('revoked_at', 'is', null).execute();
    await trx
      .insertInto('replication_credentials')
      .values({ id: randomUUID(), credential_hash: a.credentialHash, site_name: a.primarySite, created_at: a.now, last_seen_at: null, pass_finished_at: null, replicated_up_to: null, revoked_at: null, peer_credential_sealed: null })
      .execute();
  });
}

/** Forgets every hold (joining another primary, or becoming the primary: what was held refers to another source). */
export async function clearHolds(db: Database): Promise<void> {
  await db.deleteFrom('replica_holds').execute();
}

/** Revokes replication credentials: all of them (a promotion), or one site's. Returns how many. */
export async function revokeReplicationCredentials(db: Database, now: string, siteName?: string): Promise<number> {
  let q = db.updateTable('replication_credentials').set({ revoked_at: now }).where('revoked_at', 'is', null);
  if (siteName !== undefined) q = q.where('site_name', '=', siteName);
  return Number((await q.executeTakeFirst()).numUpdatedRows);
}

/** Ids of the customers' machines and of the people of other customers' organisations: what a replica restricted to `allowed` customers may not receive. */
export async function replicaScope(db: Database, allowed: ReadonlySet<string>): Promise<{ hiddenOrgs: Set<string>; hiddenUsers: Set<string>; machines: Set<string> }> {
  const customers = (await db.selectFrom('orgs').select('id').where('type', '=', 'customer').execute()).map((r) => r.id);
  const hiddenOrgs = new Set(customers.filter((c) => !allowed.has(c)));
  const users = await db.selectFrom('users').select(['id', 'org_id']).execute();
  const machines = await db.selectFrom('machines').select(['id', 'customer_id']).execute();
  return {
    hiddenOrgs,
    hiddenUsers: new Set(users.filter((u) => hiddenOrgs.has(u.org_id)).map((u) => u.id)),
    machines: new Set(machines.filter((m) => allowed.has(m.customer_id)).map((m) => m.id)),
  };
}
