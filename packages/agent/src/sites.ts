import { COFFRE_VERSION, CoffreError, EPOCH_HEADER, type RepoResponse, type SiteInfo, type SiteRecord } from '@coffre/core';
import { ApiClient, ApiError, fetchServerCertificate } from './client.js';
import type { AgentConfig, ConfigStore } from './config.js';

/**
 * Failover between the sites of an installation (docs/CONTINUITY.md). The agent keeps the
 * list of sites the server gives with the repository (URL and certificate fingerprint,
 * pinned like the enrolment's). When its server cannot be reached:
 * - reads (snapshots, ls, restore, restore-test, verify) use any other site that answers,
 *   the replica included, without changing the configuration;
 * - backups go only to a site that says it is the primary with a higher epoch than the
 *   agent knows (a promotion): the configuration then moves there for good.
 * Every request carries the highest epoch the agent knows, so an old primary that comes
 * back refuses the agent's writes.
 */
export type AccessMode = 'read' | 'write';

export function clientOptions(c: AgentConfig, server = c.server, certPem = c.certPem, fingerprint = c.fingerprint): ConstructorParameters<typeof ApiClient>[0] {
  // A CA-signed primary is checked by its CAs and name; the other sites are pinned.
  if (c.trust === 'system' && server === c.server) return { server, credential: c.credential, userAgent: `coffre-agent/${COFFRE_VERSION}`, headers: { [EPOCH_HEADER]: String(c.epoch ?? 1) } };
  return { server, certPem, fingerprint, credential: c.credential, userAgent: `coffre-agent/${COFFRE_VERSION}`, headers: { [EPOCH_HEADER]: String(c.epoch ?? 1) } };
}

/** The primary cannot be reached (network, TLS handshake to a dead host, 502–504): worth trying another site. */
export function isOutOfReach(e: unknown): boolean {
  return e instanceof CoffreError && e.code === 'UNREACHABLE';
}

/** Another site, checked against its pinned fingerprint, with what it says about itself. */
async function probe(site: SiteRecord): Promise<{ site: SiteRecord; certPem: string; info: SiteInfo } | null> {
  try {
    const cert = await fetchServerCertificate(site.url);
    if (cert.fingerprint !== site.fingerprint.replace(/:/g, '').toLowerCase()) return null; // not the site we were told about
    const api = new ApiClient({ server: site.url, certPem: cert.pem, fingerprint: site.fingerprint, attempts: 1 });
    try {
      return { site, certPem: cert.pem, info: await api.json<SiteInfo>('GET', '/site') };
    } finally {
      api.close();
    }
  } catch {
    return null;
  }
}

/**
 * Another site to use when `c.server` is out of reach (or refuses writes because it was
 * demoted). Writes: only a primary promoted above the epoch the agent knows, saved as the
 * new server. Reads: such a primary, else any site that answers (a replica), not saved.
 */
export async function failover(store: ConfigStore, c: AgentConfig, mode: AccessMode): Promise<{ config: AgentConfig; api: ApiClient } | null> {
  const others = (c.sites ?? []).filter((s) => s.url.replace(/\/+$/, '') !== c.server.replace(/\/+$/, ''));
  const answers = (await Promise.all(others.map(probe))).filter((a): a is NonNullable<typeof a> => a !== null);
  const promoted = answers.filter((a) => a.info.role === 'primary' && a.info.epoch > (c.epoch ?? 1)).sort((a, b) => b.info.epoch - a.info.epoch)[0];
  if (promoted) {
    const moved: AgentConfig = { ...c, trust: 'pinned', server: promoted.site.url, fingerprint: promoted.site.fingerprint.replace(/:/g, '').toLowerCase(), certPem: promoted.certPem, epoch: promoted.info.epoch };
    store.save(moved);
    process.stderr.write(`coffre: site ${promoted.site.name} (${promoted.site.url}) is now the primary; this machine uses it from now on\n`);
    return { config: moved, api: new ApiClient(clientOptions(moved)) };
  }
  if (mode === 'write') return null;
  const any = answers.find((a) => a.info.role !== 'demoted');
  if (!any) return null;
  process.stderr.write(`coffre: ${c.server} cannot be reached; reading from site ${any.site.name} (${any.site.url}) instead\n`);
  const config: AgentConfig = { ...c, trust: 'pinned', server: any.site.url, certPem: any.certPem, fingerprint: any.site.fingerprint.replace(/:/g, '').toLowerCase() };
  return { config, api: new ApiClient(clientOptions(config)) };
}

/** Keeps the site list and the highest epoch the server gave (only from the configured server). */
export function rememberSites(store: ConfigStore, c: AgentConfig, info: RepoResponse): void {
  const sites = info.sites ?? [];
  const epoch = info.site && info.site.role === 'primary' ? Math.max(c.epoch ?? 1, info.site.epoch) : c.epoch ?? 1;
  const same = JSON.stringify(sites) === JSON.stringify(c.sites ?? []) && epoch === (c.epoch ?? 1);
  if (!same) store.save({ ...c, sites, epoch });
}

/** A write refused because the server is a replica or was demoted. */
export function isNotPrimary(e: unknown): boolean {
  return e instanceof ApiError && (e.apiCode === 'SITE_DEMOTED' || e.apiCode === 'SITE_READ_ONLY');
}
