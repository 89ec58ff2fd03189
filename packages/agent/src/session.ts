import { hostname, platform, release } from 'node:os';
import {
  COFFRE_VERSION,
  CoffreError,
  DEFAULT_ARGON2,
  DEFAULT_CHUNKER,
  keysEqual,
  makePassphraseSlot,
  makeRecoverySlot,
  newMasterKey,
  newRecoveryKey,
  normalizeFingerprint,
  openWithPassphrase,
  type Argon2Params,
  type EnrollResponse,
  type RepoConfig,
  type RepoResponse,
} from '@coffre/core';
import { ApiClient, ApiError, fetchServerCertificate } from './client.js';
import { clientOptions, failover, isNotPrimary, isOutOfReach, rememberSites, type AccessMode } from './sites.js';
import type { AgentConfig, ConfigStore } from './config.js';
import { Repository } from './engine/repo.js';
import { readPassphrase, type PassphraseSource } from './passphrase.js';

function argon2Params(): Argon2Params {
  // Tests may lower the cost through this variable; never documented for production use.
  const t = process.env.COFFRE_TEST_ARGON2;
  if (!t) return DEFAULT_ARGON2;
  const [m, it, p] = t.split(',').map(Number);
  return { m: m!, t: it!, p: p! };
}

export function clientFor(c: AgentConfig): ApiClient {
  return new ApiClient(clientOptions(c));
}

export interface EnrollOutcome {
  readonly config: AgentConfig;
  readonly createdRepository: boolean;
  readonly recoveryKey: string | null;
  /** Set when the machine is enrolled but the key could not be opened yet. */
  readonly keyError: CoffreError | null;
}

/**
 * Enrolls this machine. The certificate is checked against the fingerprint BEFORE the
 * token is sent. The first machine of a customer creates the master key (passphrase and
 * recovery key slots); later machines open it with the passphrase.
 */
export async function enroll(store: ConfigStore, args: { server: string; token: string; fingerprint?: string | undefined; machine?: string | undefined; pass: PassphraseSource }): Promise<EnrollOutcome> {
  // A configuration whose credential still works is never replaced; one whose credential
  // was revoked (loss, theft, re-issue) may be enrolled again, e.g. with a re-issue token.
  const previous = store.exists() ? store.load() : null;
  if (previous && (await credentialStillWorks(previous))) {
    throw new CoffreError('CONFLICT', `this configuration directory (${store.dir}) is already enrolled; use another --config directory or remove it first`);
  }
  const server = args.server.replace(/\/+$/, '');
  let certPem: string | undefined;
  let fingerprint: string;
  const seen = await fetchServerCertificate(server);
  if (args.fingerprint) {
    const want = normalizeFingerprint(args.fingerprint);
    if (seen.fingerprint !== want) {
      throw new CoffreError('TLS_PIN_MISMATCH', `the server's certificate fingerprint is ${seen.fingerprint}, not the expected ${want}: not enrolling (wrong server, or someone in between)`);
    }
    certPem = seen.pem;
    fingerprint = want;
  } else {
    // No fingerprint: the certificate must be valid for the system's CAs.
    fingerprint = seen.fingerprint;
    const probe = new ApiClient({ server, attempts: 1 });
    try {
      await probe.json('GET', '/health');
    } finally {
      probe.close();
    }
  }
  const anon = new ApiClient({ server, certPem, fingerprint, userAgent: `coffre-agent/${COFFRE_VERSION}` });
  let r: EnrollResponse;
  try {
    r = await anon.json<EnrollResponse>(
      'POST',
      '/enroll',
      { token: args.token.trim(), machineName: args.machine ?? hostname(), hostname: hostname(), os: `${platform()} ${release()}`, agentVersion: COFFRE_VERSION },
      false,
    );
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw new CoffreError('UNAUTHORIZED', 'the enrollment token is invalid, expired or already used; ask for a new one');
    if (e instanceof ApiError && e.status === 409) throw new CoffreError('CONFLICT', `a machine named "${args.machine ?? hostname()}" is already enrolled for this customer; choose another --machine name`);
    throw e;
  } finally {
    anon.close();
  }
  // A different customer's repository must not be opened with the previous key.
  if (previous && previous.customerId !== r.customerId) store.forgetKey();
  const config: AgentConfig = {
    v: 1,
    server,
    fingerprint,
    certPem: certPem ?? seen.pem,
    machineId: r.machineId,
    machineName: r.machineName,
    customerId: r.customerId,
    customerName: r.customerName,
    credential: r.credential,
  };
  store.save(config);

  const api = clientFor(config);
  try {
    const repo = await api.json<RepoResponse>('GET', '/repo');
    if (repo.site?.role === 'primary') rememberSites(store, config, repo); // the installation's sites, for failover
    if (repo.config === null) {
      const created = await initRepository(store, api, args.pass);
      if (created) return { config, createdRepository: true, recoveryKey: created, keyError: null };
    }
    try {
      await unlock(store, api, args.pass, true);
      return { config, createdRepository: false, recoveryKey: null, keyError: null };
    } catch (e) {
      if (e instanceof CoffreError) return { config, createdRepository: false, recoveryKey: null, keyError: e };
      throw e;
    }
  } finally {
    api.close();
  }
}

/** True if the saved credential is accepted by its server; false if refused (revoked, unknown). Other failures propagate. */
async function credentialStillWorks(config: AgentConfig): Promise<boolean> {
  const api = clientFor(config);
  try {
    await api.json('GET', '/repo');
    return true;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
    throw e;
  } finally {
    api.close();
  }
}

/** Creates the master key and its slots. Returns the recovery key, or null if another machine won the race. */
async function initRepository(store: ConfigStore, api: ApiClient, pass: PassphraseSource): Promise<string | null> {
  const passphrase = await readPassphrase(pass, { confirm: true, prompt: 'New passphrase for this customer\'s backups: ' });
  if (!passphrase) throw new CoffreError('NO_KEY', 'a passphrase is needed to create the encryption key: set COFFRE_PASSPHRASE or use --passphrase-file');
  const master = newMasterKey();
  const recovery = newRecoveryKey();
  const slots = [await makePassphraseSlot(master, passphrase, argon2Params()), makeRecoverySlot(master, recovery.raw)];
  const config: RepoConfig = { v: 1, chunker: DEFAULT_CHUNKER, compression: 'zstd' };
  try {
    await api.json('POST', '/repo/init', { config, keySlots: slots }, false);
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return null;
    throw e;
  }
  store.saveKey(master);
  return recovery.text;
}

/**
 * Makes the master key available. A passphrase that is given must open a key slot, even
 * if the key is cached (a wrong passphrase is always an error); with none given, the
 * cached key is used; otherwise the passphrase is asked for.
 */
export async function unlock(store: ConfigStore, api: ApiClient, pass: PassphraseSource, ignoreCache = false): Promise<Buffer> {
  const cached = ignoreCache ? null : store.loadKey();
  const given = await (cached ? readPassphraseNoPrompt(pass) : readPassphrase(pass));
  if (cached && given === null) return cached;
  if (given === null) throw new CoffreError('NO_KEY', 'the passphrase is needed to open the encryption key: set COFFRE_PASSPHRASE or use --passphrase-file');
  const repo = await api.json<RepoResponse>('GET', '/repo');
  if (!repo.config) throw new CoffreError('NO_KEY', 'the repository has no key yet');
  const master = await openWithPassphrase(repo.keySlots, given);
  if (!cached || !keysEqual(cached, master)) store.saveKey(master);
  return master;
}

async function readPassphraseNoPrompt(pass: PassphraseSource): Promise<string | null> {
  if (pass.file) return readPassphrase(pass);
  const env = process.env.COFFRE_PASSPHRASE;
  return env !== undefined && env !== '' ? env : null;
}

/**
 * Opens the repository for a command: config, credential, key. When the configured server
 * is out of reach, reads go to another site of the installation and writes to a site
 * promoted in its place (sites.ts).
 */
export async function openRepository(store: ConfigStore, pass: PassphraseSource, mode: AccessMode = 'read'): Promise<Repository> {
  let c = store.load();
  let api = clientFor(c);
  try {
    let info: RepoResponse;
    try {
      info = await api.json<RepoResponse>('GET', '/repo');
      // A backup to a replica or a demoted primary would be refused: look for the primary first.
      if (mode === 'write' && info.site && info.site.role !== 'primary') throw new ApiError(409, info.site.role === 'replica' ? 'SITE_READ_ONLY' : 'SITE_DEMOTED', `${c.server} is not the primary site (${info.site.role})`);
    } catch (e) {
      if (!isOutOfReach(e) && !isNotPrimary(e)) throw e;
      const other = await failover(store, store.load(), mode);
      if (!other) throw e;
      api.close();
      ({ config: c, api } = other);
      info = await api.json<RepoResponse>('GET', '/repo');
    }
    if (info.site?.role === 'primary') rememberSites(store, c, info);
    if (!info.config) throw new CoffreError('NO_KEY', 'the repository has not been initialised; enroll a machine with a passphrase first');
    const master = await unlock(store, api, pass);
    return new Repository({ api, master, config: info.config, machineId: c.machineId, cacheDir: `${store.cacheDir}/${c.customerId}` });
  } catch (e) {
    api.close();
    if (e instanceof ApiError && e.status === 401) {
      throw new CoffreError('UNAUTHORIZED', 'the server refused this machine\'s credential (revoked or unknown); ask for a new enrollment token and enroll again');
    }
    throw e;
  }
}
