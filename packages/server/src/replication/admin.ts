import type { AuditLog } from '../audit/log.js';
import type { ServerKeys } from '../auth/server-key.js';
import type { Database } from '../db/database.js';
import {
  clearHolds,
  clearReplicatedAudit,
  countHolds,
  countReplicatedAudit,
  demoteIfBehind,
  ensureSiteState,
  getSiteState,
  insertReplicationToken,
  listReplicationCredentials,
  listSites,
  resetPeerCredentials,
  revokeReplicationCredentials,
  updateSiteState,
} from '../db/queries/replication.js';
import { clearControlPlaneForReplica, customerCount, swapCustomerSitesTo } from '../db/queries/sites.js';
import { hashSecret, newReplicationCredential, newReplicationToken } from '../secrets.js';
import { isoNow, type Clock } from '../types.js';
import { PeerClient } from './client.js';
import { CREDENTIAL_PURPOSE, peerOfState, ReplicationError } from './pull.js';
import type { SiteStateTable } from '../db/schema.js';
import type { JoinRequest, JoinResponse, SiteInfo } from './wire.js';

export interface SiteContext {
  readonly db: Database;
  readonly keys: ServerKeys;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /** Who acts (the operating-system account for the CLI). */
  readonly actor: string;
}

async function audited(ctx: SiteContext, action: string, target: string, details: Record<string, unknown>): Promise<void> {
  await ctx.audit.append({ actorType: 'cli', actorId: ctx.actor, actorLabel: `${ctx.actor} (command line)`, orgId: null, action, target, ip: null, userAgent: null, requestId: null, outcome: 'success', details });
}

export const DEFAULT_TOKEN_TTL_HOURS = 24;

/** On the primary: a one-time token a replica exchanges for its read-only credential. */
export async function createReplicationToken(ctx: SiteContext, ttlHours = DEFAULT_TOKEN_TTL_HOURS): Promise<{ token: string; expiresAt: string }> {
  const now = ctx.clock();
  await ensureSiteState(ctx.db, { selfName: 'primary', now: now.toISOString() });
  const token = newReplicationToken();
  const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000).toISOString();
  await insertReplicationToken(ctx.db, { tokenHash: hashSecret(token), now: now.toISOString(), expiresAt, createdBy: `cli:${ctx.actor}` });
  await audited(ctx, 'replication.token_created', 'replication', { expiresAt });
  return { token, expiresAt };
}

export interface JoinArgs {
  readonly primaryUrl: string;
  readonly fingerprint: string;
  readonly token: string;
  /** This site's name (default: the name it already has, e.g. an old primary re-joining; "replica" for a new site), URL (if known yet) and certificate fingerprint. */
  readonly name?: string;
  readonly url: string | null;
  readonly selfFingerprint: string;
  readonly country?: string;
  readonly provider?: string;
  readonly hdsCertified?: boolean;
}

/**
 * Makes this site a replica of the primary at `primaryUrl` (pinned by its fingerprint). A
 * site that holds customers' data and is still a primary is refused, unless the site it
 * joins has a higher epoch (it was promoted in its place: the return of an old primary).
 */
export async function joinPrimary(ctx: SiteContext, a: JoinArgs): Promise<{ name: string; primary: string; epoch: number }> {
  const now = isoNow(ctx.clock);
  const state = await ensureSiteState(ctx.db, { selfName: a.name ?? 'replica', now });
  const peer = new PeerClient(a.primaryUrl, a.fingerprint);
  try {
    const info = await peer.json<SiteInfo>('GET', '/site');
    if (info.role !== 'primary') throw new ReplicationError(`${peer.origin} is not a primary site (it is ${info.role})`);
    const name = a.name ?? (state.self_name !== info.name ? state.self_name : info.name === 'replica' ? 'primary' : 'replica');
    if (name === info.name) throw new ReplicationError(`the primary is already named ${name}: give this site another name (--name)`);
    if (state.role === 'primary' && (await customerCount(ctx.db)) > 0 && info.epoch <= state.epoch) {
      throw new ReplicationError(`this site is a primary holding customers' data (epoch ${state.epoch}); it can only join a site promoted above it (that site is at epoch ${info.epoch})`);
    }
    const repairCredential = newReplicationCredential();
    const body: JoinRequest = {
      token: a.token,
      repairCredential,
      site: { name, url: a.url, fingerprint: a.selfFingerprint, ...(a.country ? { country: a.country } : {}), ...(a.provider !== undefined ? { provider: a.provider } : {}), ...(a.hdsCertified !== undefined ? { hdsCertified: a.hdsCertified } : {}) },
    };
    const r = await peer.json<JoinResponse>('POST', '/replication/join', body);
    if ((await customerCount(ctx.db)) === 0 && state.role !== 'replica') await clearControlPlaneForReplica(ctx.db);
    await resetPeerCredentials(ctx.db, { credentialHash: hashSecret(repairCredential), primarySite: r.primary.name, now });
    const samePrimary = state.primary_name === r.primary.name;
    if (!samePrimary) await clearHolds(ctx.db); // what was held refers to the previous source
    if (!samePrimary && (await countReplicatedAudit(ctx.db)) > 0) {
      // Another primary has another audit chain: the copy of the previous one stays, checked again from the start.
      await clearReplicatedAudit(ctx.db);
    }
    await updateSiteState(ctx.db, {
      self_name: name,
      role: 'replica',
      epoch: Math.max(state.epoch, r.primary.epoch),
      primary_name: r.primary.name,
      primary_url: a.primaryUrl.replace(/\/+$/, ''),
      primary_fingerprint: a.fingerprint,
      credential_sealed: ctx.keys.seal(Buffer.from(r.credential, 'utf8'), CREDENTIAL_PURPOSE),
      joined_at: now,
      demoted_at: null,
      demoted_by_epoch: null,
      // Another primary: its audit key is pinned afresh at the first pass; the same one keeps its pin (a changed key is then caught).
      ...(samePrimary ? {} : { audit_diverged_at: null, audit_diverged_reason: null, replicated_up_to: null, primary_audit_key: null }),
      ...(a.url !== null ? { self_url: a.url } : {}),
      updated_at: now,
    });
    await audited(ctx, 'replication.joined', `site:${r.primary.name}`, { primary: a.primaryUrl, epoch: r.primary.epoch, previousRole: state.role });
    return { name, primary: r.primary.name, epoch: Math.max(state.epoch, r.primary.epoch) };
  } finally {
    peer.close();
  }
}

/**
 * Turns this replica into the primary after a disaster: its epoch goes above every epoch it
 * has seen, so the old primary, told by any agent or by its own check at start, refuses
 * writes from then on. Customers whose primary was the old site now have this one.
 */
export async function promoteSite(ctx: SiteContext): Promise<{ epoch: number; previousPrimary: string | null }> {
  const state = await getSiteState(ctx.db);
  if (!state || state.role === 'primary') throw new ReplicationError('this site is already the primary');
  const now = isoNow(ctx.clock);
  const epoch = Math.max(state.epoch, state.demoted_by_epoch ?? 0) + 1;
  await updateSiteState(ctx.db, { role: 'primary', epoch, demoted_at: null, demoted_by_epoch: null, updated_at: now });
  // The old primary's call-back credential opens nothing here any more; it re-joins with a new token.
  await revokeReplicationCredentials(ctx.db, now);
  await clearHolds(ctx.db);
  if (state.primary_name) await swapCustomerSitesTo(ctx.db, state.self_name, state.primary_name, now);
  await audited(ctx, 'site.promoted', `site:${state.self_name}`, { epoch, previousPrimary: state.primary_name, previousRole: state.role });
  return { epoch, previousPrimary: state.primary_name };
}

/**
 * On a primary: asks every other site whether it was promoted above this one (fencing for
 * a primary that comes back after its replica took over). Unreachable sites are skipped.
 */
export async function checkFencing(ctx: Pick<SiteContext, 'db' | 'clock' | 'audit'>): Promise<{ demotedBy: string | null; asked: number; unreachable: string[] }> {
  const state = await getSiteState(ctx.db);
  if (!state || state.role !== 'primary') return { demotedBy: null, asked: 0, unreachable: [] };
  const unreachable: string[] = [];
  let asked = 0;
  for (const site of await listSites(ctx.db)) {
    if (site.name === state.self_name || !site.url || !site.fingerprint) continue;
    const peer = new PeerClient(site.url, site.fingerprint);
    try {
      const info = await peer.json<SiteInfo>('GET', '/site');
      asked++;
      if (info.role === 'primary' && info.epoch > state.epoch && (await demoteIfBehind(ctx.db, info.epoch, isoNow(ctx.clock)))) {
        await ctx.audit.append({
          actorType: 'system', actorId: null, actorLabel: 'fencing', orgId: null, action: 'site.demoted', target: `site:${state.self_name}`,
          ip: null, userAgent: null, requestId: null, outcome: 'success', details: { epoch: state.epoch, promoted: site.name, promotedEpoch: info.epoch },
        });
        return { demotedBy: site.name, asked, unreachable };
      }
    } catch {
      unreachable.push(site.name);
    } finally {
      peer.close();
    }
  }
  return { demotedBy: null, asked, unreachable };
}

export interface ReplicationStatus {
  readonly site: string;
  readonly role: 'primary' | 'replica' | 'demoted';
  readonly epoch: number;
  /** Seconds between now and the primary's time up to which this replica holds everything (replica); the furthest-behind replica's (primary); null when unknown. */
  readonly lagSeconds: number | null;
  readonly replicatedUpTo: string | null;
  readonly primary: { readonly name: string | null; readonly url: string | null } | null;
  readonly lastPass: { readonly startedAt: string | null; readonly finishedAt: string | null; readonly outcome: string | null; readonly error: string | null } | null;
  readonly heldDeletions: number;
  readonly auditDiverged: { readonly at: string; readonly reason: string | null } | null;
  readonly replicas: readonly { readonly site: string; readonly lastSeenAt: string | null; readonly replicatedUpTo: string | null; readonly lagSeconds: number | null }[];
  readonly sites: readonly { readonly name: string; readonly url: string | null; readonly country: string; readonly provider: string; readonly hdsCertified: boolean }[];
}

export async function replicationStatus(ctx: Pick<SiteContext, 'db' | 'clock'>): Promise<ReplicationStatus> {
  const now = ctx.clock().getTime();
  const state = await ensureSiteState(ctx.db, { selfName: 'primary', now: new Date(now).toISOString() });
  const lag = (t: string | null): number | null => (t === null ? null : Math.max(0, Math.round((now - Date.parse(t)) / 1000)));
  const replicas = (state.role === 'primary' ? await listReplicationCredentials(ctx.db) : []).map((c) => ({ site: c.site_name, lastSeenAt: c.last_seen_at, replicatedUpTo: c.replicated_up_to, lagSeconds: lag(c.replicated_up_to) }));
  const isReplica = state.role === 'replica';
  const worst = replicas.length === 0 ? null : replicas.some((r) => r.lagSeconds === null) ? null : Math.max(...replicas.map((r) => r.lagSeconds!));
  return {
    site: state.self_name,
    role: state.role,
    epoch: state.epoch,
    lagSeconds: isReplica ? lag(state.replicated_up_to) : worst,
    replicatedUpTo: isReplica ? state.replicated_up_to : null,
    primary: state.primary_name || state.primary_url ? { name: state.primary_name, url: state.primary_url } : null,
    lastPass: state.pass_started_at ? { startedAt: state.pass_started_at, finishedAt: state.pass_finished_at, outcome: state.pass_outcome, error: state.pass_error } : null,
    heldDeletions: await countHolds(ctx.db),
    auditDiverged: state.audit_diverged_at ? { at: state.audit_diverged_at, reason: state.audit_diverged_reason } : null,
    replicas,
    sites: (await listSites(ctx.db)).map((s) => ({ name: s.name, url: s.url, country: s.country, provider: s.provider, hdsCertified: s.hds_certified === 1 })),
  };
}

/** A replica tells its primary where agents reach it (best effort; every pass's report says it again). */
export async function announceToPrimary(ctx: { keys: ServerKeys; fingerprint: string }, state: SiteStateTable, url: string): Promise<void> {
  const peer = peerOfState(state, ctx.keys);
  try {
    await peer.json('PUT', '/replication/site', { url, fingerprint: ctx.fingerprint });
  } finally {
    peer.close();
  }
}

/** On a replica: the operator confirms that a large deletion on the primary is real; passes may apply it for the next 24 hours. */
export async function acceptMassDeletion(ctx: SiteContext): Promise<{ until: string }> {
  const now = ctx.clock();
  const until = new Date(now.getTime() + 86_400_000).toISOString();
  await updateSiteState(ctx.db, { mass_deletion_accepted_until: until, updated_at: now.toISOString() });
  await audited(ctx, 'replication.mass_deletion_accepted', 'replication', { until });
  return { until };
}

/** On a primary: revokes a replica's credential (its pulls are refused from now on). */
export async function revokeReplica(ctx: SiteContext, siteName: string): Promise<number> {
  const n = await revokeReplicationCredentials(ctx.db, ctx.clock().toISOString(), siteName);
  await audited(ctx, 'replication.revoked', `site:${siteName}`, { credentials: n });
  return n;
}
