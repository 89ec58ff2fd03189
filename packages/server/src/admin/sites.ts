import { randomUUID } from 'node:crypto';
import { findCustomerByName } from '../db/queries/customers.js';
import { findOrg } from '../db/queries/orgs.js';
import { findSite, getSiteState, listReplicationCredentials, listSites, upsertSite } from '../db/queries/replication.js';
import {
  customerSites,
  customersOnSite,
  dueSiteChanges,
  findSiteAuthorisation,
  insertSiteChange,
  markSiteChangeApplied,
  pendingSiteChanges,
  recordSiteAuthorisation,
  setCustomerSites,
} from '../db/queries/sites.js';
import type { Database } from '../db/database.js';
import type { SiteChangesTable, SitesTable } from '../db/schema.js';
import { apiError } from '../errors.js';
import { enqueueFor, recipientsFor } from '../mail/notify.js';
import { locationChangeEmail, type SiteDescriptionLine } from '../mail/location-templates.js';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../types.js';
import type { CustomerSites, SiteSummary } from '@coffre/core/people-api';
import type { AdminContext } from './index.js';

/** EU member states and the other EEA countries (ISO 3166-1 alpha-2): where data may live without a customer's express authorisation. */
export const EU_EEA: ReadonlySet<string> = new Set([
  'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE',
  'IS', 'LI', 'NO',
]);
export function isEuEea(country: string): boolean {
  return EU_EEA.has(country.toUpperCase());
}

async function audit(ctx: AdminContext, action: string, target: string, orgId: string | null, details: Record<string, unknown>): Promise<void> {
  await ctx.audit.append({ actorType: 'cli', actorId: ctx.actor, actorLabel: `${ctx.actor} (command line)`, orgId, action, target, ip: null, userAgent: null, requestId: null, outcome: 'success', details });
}

function describe(s: Pick<SitesTable, 'name' | 'country' | 'provider' | 'hds_certified'>): SiteDescriptionLine {
  return { name: s.name, country: s.country, provider: s.provider, hdsCertified: Number(s.hds_certified) === 1 };
}

async function siteOrFail(db: Database, name: string): Promise<SitesTable> {
  const s = await findSite(db, name);
  if (!s) throw apiError('siteNotFound', { name });
  return s;
}

/** A site outside the EU/EEA holds a customer's data only with the customer's recorded authorisation. */
async function assertAllowed(db: Database, customerId: string, customerName: string, site: Pick<SitesTable, 'name' | 'country'>): Promise<void> {
  if (isEuEea(site.country)) return;
  if (await findSiteAuthorisation(db, customerId, site.name)) return;
  throw apiError('siteOutsideEu', { customer: customerName, site: site.name, country: site.country });
}

export interface SiteChangeArgs {
  readonly url?: string;
  readonly fingerprint?: string;
  readonly country?: string;
  readonly provider?: string;
  readonly hdsCertified?: boolean;
  /** When a change of where data live takes effect (announced to the customers first); default now. */
  readonly effectiveAt?: string;
}

/**
 * Creates or changes a site. Its address and fingerprint change at once. A change of its
 * country, provider or certification, when it holds customers' data, is announced to each
 * of them by email now and applied on `effectiveAt` (refused if the new country is outside
 * the EU/EEA and a customer has not authorised it).
 */
export async function adminSiteSet(ctx: AdminContext, name: string, a: SiteChangeArgs): Promise<{ created: boolean; announced: number; effectiveAt: string | null }> {
  const now = ctx.clock().toISOString();
  const existing = await findSite(ctx.db, name);
  if (!existing) {
    await upsertSite(ctx.db, { name, url: a.url ?? null, fingerprint: a.fingerprint ?? null, country: a.country ?? 'FR', provider: a.provider ?? '', hdsCertified: a.hdsCertified ?? false, now });
    await audit(ctx, 'site.created', `site:${name}`, null, { url: a.url ?? null, country: a.country ?? 'FR', provider: a.provider ?? '', hdsCertified: a.hdsCertified ?? false });
    return { created: true, announced: 0, effectiveAt: null };
  }
  if (a.url !== undefined || a.fingerprint !== undefined) {
    await upsertSite(ctx.db, { name, ...(a.url !== undefined ? { url: a.url } : {}), ...(a.fingerprint !== undefined ? { fingerprint: a.fingerprint } : {}), now });
    await audit(ctx, 'site.updated', `site:${name}`, null, { url: a.url, fingerprint: a.fingerprint });
  }
  const after = {
    country: a.country ?? existing.country,
    provider: a.provider ?? existing.provider,
    hds_certified: a.hdsCertified === undefined ? Number(existing.hds_certified) : a.hdsCertified ? 1 : 0,
  };
  const moves = after.country !== existing.country || after.provider !== existing.provider || after.hds_certified !== Number(existing.hds_certified);
  if (!moves) return { created: false, announced: 0, effectiveAt: null };
  const effectiveAt = a.effectiveAt ?? now;
  const customers = await customersOnSite(ctx.db, name, name === (await getSiteState(ctx.db))?.self_name);
  for (const id of customers) await assertAllowed(ctx.db, id, (await findOrg(ctx.db, id))?.name ?? id, { name, country: after.country });
  const change: SiteChangesTable = { id: randomUUID(), kind: 'site', site_name: name, customer_id: null, change_json: JSON.stringify(after), effective_at: effectiveAt, announced_at: now, announced_by: ctx.actor, applied_at: null };
  let announced = 0;
  for (const id of customers) {
    const cs = await customerSites(ctx.db, id);
    const role = cs?.primary_site === name ? 'primary' : 'replica';
    announced += await announce(ctx, id, change.id, effectiveAt, [{ role, before: describe(existing), after: describe({ name, ...after }) }]);
  }
  await insertSiteChange(ctx.db, change);
  await audit(ctx, 'site.change_announced', `site:${name}`, null, { before: describe(existing), after: describe({ name, ...after }), effectiveAt, customers: customers.length, emails: announced });
  await applyDueSiteChanges(ctx);
  return { created: false, announced, effectiveAt };
}

/**
 * Sets a customer's primary and replica sites. Refused for a site outside the EU/EEA unless
 * the customer authorised it. The customer is emailed first; the change applies on
 * `effectiveAt` (default at once, right after the email is queued).
 */
export async function adminCustomerSites(ctx: AdminContext, customerName: string, primary: string, replica: string | null, effectiveAt?: string): Promise<{ announced: number; effectiveAt: string }> {
  const c = await findCustomerByName(ctx.db, customerName);
  if (!c) throw apiError('customerNotFound', { name: customerName });
  const now = ctx.clock().toISOString();
  const p = await siteOrFail(ctx.db, primary);
  const r = replica === null ? null : await siteOrFail(ctx.db, replica);
  if (r && r.name === p.name) throw apiError('badRequest', { reason: 'the replica site must differ from the primary site' });
  await assertAllowed(ctx.db, c.id, c.name, p);
  if (r) await assertAllowed(ctx.db, c.id, c.name, r);
  const current = await customerSites(ctx.db, c.id);
  const self = (await getSiteState(ctx.db))?.self_name ?? 'primary';
  const beforePrimary = await findSite(ctx.db, current?.primary_site ?? self);
  const beforeReplica = current?.replica_site ? await findSite(ctx.db, current.replica_site) : undefined;
  const when = effectiveAt ?? now;
  const change: SiteChangesTable = { id: randomUUID(), kind: 'customer', site_name: null, customer_id: c.id, change_json: JSON.stringify({ primary: p.name, replica: r?.name ?? null }), effective_at: when, announced_at: now, announced_by: ctx.actor, applied_at: null };
  const lines = [
    ...(beforePrimary?.name !== p.name ? [{ role: 'primary' as const, before: beforePrimary ? describe(beforePrimary) : null, after: describe(p) }] : []),
    ...((beforeReplica?.name ?? null) !== (r?.name ?? null) ? [{ role: 'replica' as const, before: beforeReplica ? describe(beforeReplica) : null, after: r ? describe(r) : null }] : []),
  ];
  const announced = lines.length > 0 ? await announce(ctx, c.id, change.id, when, lines) : 0;
  await insertSiteChange(ctx.db, change);
  await audit(ctx, 'customer.sites_change_announced', `customer:${c.id}`, c.id, { primary: p.name, replica: r?.name ?? null, effectiveAt: when, emails: announced });
  await applyDueSiteChanges(ctx);
  return { announced, effectiveAt: when };
}

async function announce(ctx: AdminContext, customerId: string, changeId: string, effectiveAt: string, changes: Parameters<typeof locationChangeEmail>[0]['changes']): Promise<number> {
  const org = await findOrg(ctx.db, customerId);
  const recipients = await recipientsFor(ctx.db, customerId, { customer: true, reseller: true });
  return enqueueFor(ctx.db, recipients, 'location_change', `location-change:${changeId}`, (locale) => locationChangeEmail({ customerName: org?.name ?? customerId, effectiveAt, changes }, locale), ctx.clock());
}

/** Applies announced changes whose time has come (on the primary: `job run replicate` and the server's schedule call it too). */
export async function applyDueSiteChanges(ctx: { db: Database; clock: Clock; audit: AuditLog }): Promise<number> {
  const now = ctx.clock().toISOString();
  let n = 0;
  for (const ch of await dueSiteChanges(ctx.db, now)) {
    if (!(await markSiteChangeApplied(ctx.db, ch.id, now))) continue;
    const v = JSON.parse(ch.change_json) as Record<string, unknown>;
    if (ch.kind === 'site' && ch.site_name) {
      await upsertSite(ctx.db, { name: ch.site_name, country: String(v.country), provider: String(v.provider), hdsCertified: v.hds_certified === 1, now });
    } else if (ch.kind === 'customer' && ch.customer_id) {
      await setCustomerSites(ctx.db, { customerId: ch.customer_id, primary: String(v.primary), replica: v.replica === null ? null : String(v.replica), now });
    }
    await ctx.audit.append({ actorType: 'system', actorId: null, actorLabel: 'site changes', orgId: ch.customer_id, action: 'site.change_applied', target: ch.site_name ? `site:${ch.site_name}` : `customer:${ch.customer_id ?? ''}`, ip: null, userAgent: null, requestId: null, outcome: 'success', details: { change: v, announcedAt: ch.announced_at } });
    n++;
  }
  return n;
}

/** Records a customer's express authorisation to keep its data on a site outside the EU/EEA (who, when, which document). */
export async function adminAuthoriseSite(ctx: AdminContext, customerName: string, site: string, a: { by: string; on: string; document: string }): Promise<void> {
  const c = await findCustomerByName(ctx.db, customerName);
  if (!c) throw apiError('customerNotFound', { name: customerName });
  await siteOrFail(ctx.db, site);
  await recordSiteAuthorisation(ctx.db, { customer_id: c.id, site_name: site, authorised_by: a.by, authorised_on: a.on, document: a.document, recorded_at: ctx.clock().toISOString(), recorded_by: ctx.actor });
  await audit(ctx, 'customer.site_authorised', `customer:${c.id}`, c.id, { site, by: a.by, on: a.on, document: a.document });
}

export async function adminListSites(ctx: AdminContext): Promise<(SitesTable & { inEu: boolean; customers: number; pending: SiteChangesTable[] })[]> {
  const pending = await pendingSiteChanges(ctx.db);
  const self = (await getSiteState(ctx.db))?.self_name;
  const out = [];
  for (const s of await listSites(ctx.db)) {
    out.push({ ...s, inEu: isEuEea(s.country), customers: (await customersOnSite(ctx.db, s.name, s.name === self)).length, pending: pending.filter((p) => p.site_name === s.name) });
  }
  return out;
}

/** A customer's sites as people see them (console). Unassigned customers live on this installation's own site. */
export async function customerSitesOf(db: Database, customerId: string): Promise<CustomerSites> {
  const cs = await customerSites(db, customerId);
  const self = (await getSiteState(db))?.self_name ?? 'primary';
  const summary = async (name: string | null | undefined): Promise<SiteSummary | null> => {
    const s = name ? await findSite(db, name) : undefined;
    return s ? { name: s.name, country: s.country, provider: s.provider, hdsCertified: Number(s.hds_certified) === 1, inEu: isEuEea(s.country) } : null;
  };
  const announced = (await pendingSiteChanges(db)).filter((c) => c.customer_id === customerId || (c.site_name !== null && (c.site_name === (cs?.primary_site ?? self) || c.site_name === cs?.replica_site)));
  return { primary: await summary(cs?.primary_site ?? self), replica: await summary(cs?.replica_site), replicatedUpTo: cs?.replicated_up_to ?? null, announced: announced.map((c) => ({ effectiveAt: c.effective_at })) };
}

/**
 * The sites an agent of this customer may use: its primary and replica when they are set;
 * otherwise this installation's own site and every joined replica that may hold the
 * customer's data (in the EU/EEA, or authorised by the customer). Only sites with an address.
 */
export async function agentSitesOf(db: Database, customerId: string): Promise<{ name: string; url: string; fingerprint: string }[]> {
  const all = await listSites(db);
  const cs = await customerSites(db, customerId);
  let names: Set<string>;
  if (cs) names = new Set([cs.primary_site, ...(cs.replica_site ? [cs.replica_site] : [])]);
  else {
    names = new Set([(await getSiteState(db))?.self_name ?? 'primary']);
    const replicas = new Set((await listReplicationCredentials(db)).map((c) => c.site_name));
    for (const s of all) if (replicas.has(s.name) && (isEuEea(s.country) || (await findSiteAuthorisation(db, customerId, s.name)))) names.add(s.name);
  }
  return all.flatMap((s) => (names.has(s.name) && s.url && s.fingerprint ? [{ name: s.name, url: s.url, fingerprint: s.fingerprint }] : []));
}
