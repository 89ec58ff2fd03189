import type { Readable } from 'node:stream';
import { allCustomerIds } from '../../db/queries/customers.js';
import { auditAnchor, lastAuditLink } from '../../db/queries/audit.js';
import { checkpointsAfter, purgeMarker } from '../../db/queries/audit-signing.js';
import {
  auditFrom,
  exchangeReplicationToken,
  feedPacks,
  feedRows,
  feedSnapshots,
  findSite,
  getSiteState,
  recordReplicaProgress,
  replicaScope,
  upsertSite,
} from '../../db/queries/replication.js';
import { findPack } from '../../db/queries/packs.js';
import { customersAllowedOnSite } from '../../db/queries/sites.js';
import { isEuEea } from '../../admin/sites.js';
import { MIGRATIONS } from '../../db/migrations/index.js';
import { apiError } from '../../errors.js';
import type { App, Deps } from '../../http/context.js';
import { packKey, snapshotRefsKey } from '../../object-keys.js';
import { replicatedTable, SNAPSHOT_COLUMNS, type ReplicatedTable } from '../../replication/tables.js';
import {
  AUDIT_PAGE,
  PACKS_PAGE,
  ROWS_PAGE,
  SNAPSHOTS_PAGE,
  type AuditPage,
  type JoinRequest,
  type JoinResponse,
  type PacksPage,
  type ProgressRequest,
  type RowsPage,
  type SnapshotsPage,
  type StateResponse,
} from '../../replication/wire.js';
import { hashSecret, newReplicationCredential } from '../../secrets.js';
import { isNotFound } from '../../store/object-store.js';
import { isoNow, type CustomerId, type ReplicaPrincipal } from '../../types.js';
import { announceSchema, stateSchema, auditSchema, customerListSchema, joinSchema, packObjectSchema, progressSchema, refsObjectSchema, rowsSchema } from './schema.js';

function replicaOf(p: unknown): ReplicaPrincipal {
  const r = p as ReplicaPrincipal | null;
  if (r?.kind !== 'replica') throw apiError('unauthenticated');
  return r;
}

/** The purpose a replica's call-back credential is sealed under, on the primary. */
export const PEER_CREDENTIAL_PURPOSE = 'replication-peer-credential';

/** A TOTP secret crosses sites unsealed (inside the pinned TLS channel) and is sealed again with the replica's own server key. */
export const TOTP_WIRE_PREFIX = 'b64:';

/**
 * The primary's side of replication (docs/CONTINUITY.md): a replica joins with a one-time
 * token, then reads, with its credential and nothing else, the control-plane tables page by
 * page, each customer's packs and snapshots, the objects themselves and the audit chain.
 * Every route is a read except the join and the replica's progress report; none can change
 * a customer's data.
 */
/** The customers whose data the calling replica may hold (outside the EU/EEA: only with their authorisation). */
async function allowedFor(deps: Deps, p: ReplicaPrincipal): Promise<Set<string>> {
  const site = await findSite(deps.db, p.siteName);
  return customersAllowedOnSite(deps.db, p.siteName, site ? isEuEea(site.country) : false);
}

/** Per-customer routes answer only about a customer the calling replica may hold (the same 404 as an unknown one otherwise). */
async function assertAllowed(deps: Deps, principal: unknown, customer: string): Promise<void> {
  if (!(await allowedFor(deps, replicaOf(principal))).has(customer)) throw apiError('customerNotFound');
}

async function rowsForReplica(deps: Deps, p: ReplicaPrincipal, t: ReplicatedTable, rows: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const allowed = await allowedFor(deps, p);
  if (t.customerColumn) return rows.filter((r) => allowed.has(String(r[t.customerColumn!])));
  if (!['orgs', 'users', 'recovery_codes', 'webauthn_credentials', 'access_reviews', 'machine_jobs'].includes(t.name)) return rows;
  const scope = await replicaScope(deps.db, allowed);
  return rows.filter((r) => {
    if (t.name === 'orgs') return !scope.hiddenOrgs.has(String(r.id));
    if (t.name === 'users' || t.name === 'access_reviews') return !scope.hiddenOrgs.has(String(r.org_id));
    if (t.name === 'machine_jobs') return scope.machines.has(String(r.machine_id));
    return !scope.hiddenUsers.has(String(r.user_id));
  });
}

/**
 * A replica may record its own address once (when the primary does not know it yet); after
 * that only the operator changes a site's address or fingerprint (`site set`): a replica
 * credential must not be able to redirect agents.
 */
async function announceSite(deps: Deps, siteName: string, site: { url: string | null; fingerprint: string }, now: string): Promise<void> {
  const known = await findSite(deps.db, siteName);
  await upsertSite(deps.db, {
    name: siteName,
    ...(known?.url ? {} : { url: site.url }),
    ...(known?.fingerprint ? {} : { fingerprint: site.fingerprint }),
    now,
  });
}

export function registerReplicationRoutes(app: App, deps: Deps): void {
  app.post<{ Body: JoinRequest }>('/replication/join', { schema: joinSchema, config: { auth: 'none' } }, async (req): Promise<JoinResponse> => {
    const now = isoNow(deps.clock);
    if (req.body.site.name === ((await getSiteState(deps.db))?.self_name ?? 'primary')) throw apiError('badRequest', { reason: 'the replica must have another name than the primary' });
    const credential = newReplicationCredential();
    const ok = await exchangeReplicationToken(deps.db, {
      tokenHash: hashSecret(req.body.token.trim()),
      credentialHash: hashSecret(credential),
      siteName: req.body.site.name,
      peerCredentialSealed: deps.keys.seal(Buffer.from(req.body.repairCredential, 'utf8'), PEER_CREDENTIAL_PURPOSE),
      now,
    });
    if (!ok) throw apiError('badReplicationToken');
    const s = req.body.site;
    await upsertSite(deps.db, { name: s.name, url: s.url, fingerprint: s.fingerprint, country: s.country, provider: s.provider, hdsCertified: s.hdsCertified, now });
    await deps.audit.append({
      actorType: 'system', actorId: null, actorLabel: `replica site ${s.name}`, orgId: null, action: 'replication.join', target: `site:${s.name}`,
      ip: req.ip, userAgent: req.headers['user-agent'] ?? null, requestId: req.id, outcome: 'success', details: { url: s.url, fingerprint: s.fingerprint },
    });
    const state = await getSiteState(deps.db);
    return { credential, primary: { name: state?.self_name ?? 'primary', epoch: state?.epoch ?? 1 } };
  });

  app.get('/replication/state', { schema: stateSchema, config: { auth: 'replica' } }, async (req): Promise<StateResponse> => {
    const p = replicaOf(req.principal);
    const now = isoNow(deps.clock);
    // Only the customers whose data may live on that site (outside the EU/EEA: with their authorisation).
    const allowed = await allowedFor(deps, p);
    const state = await getSiteState(deps.db);
    const head = await lastAuditLink(deps.db);
    return {
      now,
      name: state?.self_name ?? 'primary',
      role: state?.role ?? 'primary',
      epoch: state?.epoch ?? 1,
      schema: MIGRATIONS[MIGRATIONS.length - 1]![0],
      auditHead: head ? { seq: head.seq, hash: head.hash } : null,
      auditKey: deps.audit.signer?.pem ?? null,
      customers: (await allCustomerIds(deps.db)).filter((c) => allowed.has(c)),
    };
  });

  app.get<{ Params: { table: string }; Querystring: { after?: string } }>('/replication/rows/:table', { schema: rowsSchema, config: { auth: 'replica' } }, async (req): Promise<RowsPage> => {
    const t = replicatedTable(req.params.table);
    if (!t) throw apiError('notFound');
    let after: unknown[] | null = null;
    if (req.query.after !== undefined) {
      try {
        after = JSON.parse(req.query.after) as unknown[];
      } catch {
        throw apiError('badRequest', { reason: 'after is not a JSON array' });
      }
      if (!Array.isArray(after) || after.length !== t.key.length || after.some((v) => typeof v !== 'string' && typeof v !== 'number')) throw apiError('badRequest', { reason: 'after is not a key' });
    }
    const rows = await feedRows(deps.db, t, after, ROWS_PAGE);
    // Rows of a customer the replica may not hold (its organisation, people, machines…) are left out; the page's cursor still moves past them.
    const mine = await rowsForReplica(deps, replicaOf(req.principal), t, rows);
    const out = t.name === 'users' ? mine.map((r) => unsealTotp(deps, r)) : mine;
    const last = rows[rows.length - 1];
    return { rows: out, next: rows.length < ROWS_PAGE || !last ? null : t.key.map((k) => last[k]) };
  });

  app.get<{ Params: { customer: string }; Querystring: { after?: string } }>(
    '/replication/customers/:customer/packs',
    { schema: customerListSchema, config: { auth: 'replica' } },
    async (req): Promise<PacksPage> => {
      await assertAllowed(deps, req.principal, req.params.customer);
      const packs = await feedPacks(deps.db, req.params.customer as CustomerId, req.query.after ?? null, PACKS_PAGE);
      return { packs, next: packs.length < PACKS_PAGE ? null : packs[packs.length - 1]!.id };
    },
  );

  app.get<{ Params: { customer: string }; Querystring: { after?: string } }>(
    '/replication/customers/:customer/snapshots',
    { schema: customerListSchema, config: { auth: 'replica' } },
    async (req): Promise<SnapshotsPage> => {
      await assertAllowed(deps, req.principal, req.params.customer);
      const rows = await feedSnapshots(deps.db, req.params.customer as CustomerId, req.query.after ?? null, SNAPSHOTS_PAGE, SNAPSHOT_COLUMNS);
      return { snapshots: rows, next: rows.length < SNAPSHOTS_PAGE ? null : String(rows[rows.length - 1]!.id) };
    },
  );

  /** A pack's bytes as stored (the replica checks every hash before keeping them). */
  app.get<{ Params: { customer: string; id: string } }>('/replication/customers/:customer/packs/:id', { schema: packObjectSchema, config: { auth: 'replica' } }, async (req, reply) => {
    const customer = req.params.customer as CustomerId;
    await assertAllowed(deps, req.principal, customer);
    const pack = await findPack(deps.db, customer, req.params.id);
    if (!pack) throw apiError('packNotFound');
    let body: Readable;
    try {
      body = await deps.store.getStream(packKey(customer, req.params.id), { offset: 0, length: pack.size });
    } catch (err) {
      if (isNotFound(err)) throw apiError('packNotFound');
      throw err;
    }
    return reply.type('application/octet-stream').header('content-length', String(pack.size)).send(body);
  });

  app.get<{ Params: { customer: string; id: string } }>('/replication/customers/:customer/snapshots/:id/refs', { schema: refsObjectSchema, config: { auth: 'replica' } }, async (req, reply) => {
    await assertAllowed(deps, req.principal, req.params.customer);
    try {
      const data = await deps.store.get(snapshotRefsKey(req.params.customer as CustomerId, req.params.id));
      return reply.type('application/octet-stream').send(data);
    } catch (err) {
      if (isNotFound(err)) throw apiError('snapshotNotFound');
      throw err;
    }
  });

  app.get<{ Querystring: { from: string } }>('/replication/audit', { schema: auditSchema, config: { auth: 'replica' } }, async (req): Promise<AuditPage> => {
    const from = Number(req.query.from);
    const entries = await auditFrom(deps.db, from, AUDIT_PAGE);
    const anchor = await auditAnchor(deps.db);
    const lastSeq = entries.length > 0 ? Number(entries[entries.length - 1]!.seq) : from;
    const checkpoints = entries.length > 0 ? await checkpointsAfter(deps.db, from - 1, AUDIT_PAGE, lastSeq) : [];
    return {
      entries: entries.map((e) => ({ ...e, seq: Number(e.seq) })),
      anchor: anchor ? { seq: anchor.seq, hash: anchor.hash } : null,
      checkpoints,
      purgeMarker: anchor ? await purgeMarker(deps.db) : null,
    };
  });

  /** A replica says where agents reach it (at its start), so that agents learn it before its first complete pass. */
  app.put<{ Body: ProgressRequest['site'] }>('/replication/site', { schema: announceSchema, config: { auth: 'replica' } }, async (req) => {
    const p = replicaOf(req.principal);
    await announceSite(deps, p.siteName, req.body, isoNow(deps.clock));
    return { ok: true };
  });

  app.post<{ Body: ProgressRequest }>('/replication/progress', { schema: progressSchema, config: { auth: 'replica' } }, async (req) => {
    const p = replicaOf(req.principal);
    const now = isoNow(deps.clock);
    if (Number.isNaN(Date.parse(req.body.upTo)) || req.body.upTo > now) throw apiError('badRequest', { reason: 'upTo is not a past time' });
    await announceSite(deps, p.siteName, req.body.site, now);
    const self = (await getSiteState(deps.db))?.self_name ?? 'primary';
    await upsertSite(deps.db, { name: self, now });
    const allowed = await allowedFor(deps, p);
    await recordReplicaProgress(deps.db, {
      credentialId: p.credentialId,
      siteName: p.siteName,
      primarySite: self,
      upTo: req.body.upTo,
      complete: req.body.complete,
      customers: req.body.customers.filter((c) => allowed.has(c)),
      now,
    });
    return { ok: true };
  });
}

function unsealTotp(deps: Deps, row: Record<string, unknown>): Record<string, unknown> {
  const sealed = row.totp_secret;
  if (typeof sealed !== 'string') return row;
  try {
    return { ...row, totp_secret: TOTP_WIRE_PREFIX + deps.keys.open(sealed, `totp:${String(row.id)}`).toString('base64') };
  } catch {
    return { ...row, totp_secret: null }; // sealed by another key: the person re-enrols there, as here
  }
}
