import { X509Certificate } from 'node:crypto';
import { hostname, platform } from 'node:os';
import {
  COFFRE_VERSION,
  CoffreError,
  isCoffreError,
  DEFAULT_CHUNKER,
  deriveAdminKey,
  deriveReadKey,
  deriveWriteKeys,
  ed25519Sign,
  makePassphraseSlot,
  makeRecoverySlot,
  newMasterKey,
  newRecoveryKey,
  normalizeFingerprint,
  openWithPassphrase,
  openWithRecoveryKey,
  repoUpgradeMessage,
  WRITE_ONLY_MESSAGE,
  type EnrollResponse,
  type RepoConfig,
  type RepoResponse,
  type WriteKeys,
} from '@coffre/core';
import { ApiClient, ApiError, fetchServerCertificate } from './client.js';
import { clientOptions, failover, isNotPrimary, isOutOfReach, rememberSites, type AccessMode } from './sites.js';
import type { AgentConfig, ConfigStore } from './config.js';
import { Repository } from './engine/repo.js';
import { argon2Params, readPassphrase, type PassphraseSource } from './passphrase.js';
import { checkNewPassphrase, generatePassphrase } from './passphrase-strength.js';


export function clientFor(c: AgentConfig): ApiClient {
  return new ApiClient(clientOptions(c));
}

export interface EnrollOutcome {
  readonly config: AgentConfig;
  readonly createdRepository: boolean;
  readonly recoveryKey: string | null;
  /** The passphrase --generate-passphrase made for a new repository (shown once). */
  readonly generatedPassphrase?: string | null;
  /** Set when the machine is enrolled but the key could not be opened yet. */
  readonly keyError: CoffreError | null;
}

/**
 * Enrolls this machine. The certificate is checked against the fingerprint BEFORE the
 * token is sent. The first machine of a customer creates the master key (passphrase and
 * recovery key slots); later machines open it with the passphrase.
 */
export async function enroll(store: ConfigStore, args: { server: string; token: string; fingerprint?: string | undefined; machine?: string | undefined; pass: PassphraseSource; generatePassphrase?: boolean }): Promise<EnrollOutcome> {
  // A configuration whose credential still works is never replaced; one whose credential
  // was revoked (loss, theft, re-issue) may be enrolled again, e.g. with a re-issue token.
  const previous = store.exists() ? store.load() : null;
  if (previous && (await credentialStillWorks(previous))) {
    // Enrolled, but the repository was not created (a refused passphrase): finish that, no token needed.
    const resumed = await resumeInit(store, previous, args);
    if (resumed) return resumed;
    throw new CoffreError('CONFLICT', `this configuration directory (${store.dir}) is already enrolled; use another --config directory or remove it first`);
  }
  const server = args.server.replace(/\/+$/, '');
  // Nothing is sent before the server is authenticated: by the fingerprint given (and then
  // also by the CAs when they vouch for it), or without one by the CAs and the host name.
  const seen = await fetchServerCertificate(server);
  let trust: 'pinned' | 'system';
  let pin: string;
  if (args.fingerprint) {
    pin = normalizeFingerprint(args.fingerprint);
    if (seen.fingerprint !== pin) {
      throw new CoffreError('TLS_PIN_MISMATCH', `the server's certificate fingerprint is ${seen.fingerprint}, not the expected ${pin}: not enrolling (wrong server, or someone in between)`);
    }
    trust = (await caVouchesFor(server, pin)) ? 'system' : 'pinned';
    if (trust === 'pinned' && !isSelfSigned(seen.pem)) {
      throw new CoffreError('TLS_PIN_MISMATCH', `the server's certificate is issued by a CA this machine does not trust, for another host, or expired: install the CA (system store or NODE_EXTRA_CA_CERTS) or use a certificate valid for ${new URL(server).hostname}`);
    }
  } else {
    pin = seen.fingerprint;
    if (!(await caVouchesFor(server, pin))) {
      throw new CoffreError(
        'TLS_PIN_MISMATCH',
        `the server's certificate is not valid for ${new URL(server).hostname} with this machine's trusted CAs: nothing was sent. Ask the operator for the certificate fingerprint (printed by coffre-server start) and pass it with --fingerprint`,
      );
    }
    trust = 'system';
  }
  const anon = new ApiClient({ server, ...(trust === 'pinned' ? { certPem: seen.pem } : {}), fingerprint: pin, userAgent: `coffre-agent/${COFFRE_VERSION}` });
  let r: EnrollResponse;
  try {
    r = await anon.json<EnrollResponse>(
      'POST',
      '/enroll',
      // Only what the console shows: the machine's name and its OS family (docs/SECURITY.md).
      { token: args.token.trim(), machineName: args.machine ?? hostname(), hostname: '', os: platform(), agentVersion: COFFRE_VERSION },
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
    fingerprint: pin,
    certPem: seen.pem,
    trust,
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
      const created = await initRepository(store, api, args.pass, args.generatePassphrase ?? false);
      if (created) return { config, createdRepository: true, recoveryKey: created.recovery, generatedPassphrase: created.passphrase, keyError: null };
    }
    try {
      const info = await api.json<RepoResponse>('GET', '/repo');
      // A later machine: the passphrase gives it its write keys (format 2) or the key (format 1).
      const secret = await givenSecret(args.pass, true);
      if (!secret) throw new CoffreError('NO_KEY', 'the passphrase is needed to get this machine its backup keys: set COFFRE_PASSPHRASE or use --passphrase-file, then run "coffre backup"');
      await unlockWith(store, info, secret);
      store.forgetKey();
      return { config, createdRepository: false, recoveryKey: null, keyError: null };
    } catch (e) {
      if (e instanceof CoffreError) return { config, createdRepository: false, recoveryKey: null, keyError: e };
      throw e;
    }
  } finally {
    api.close();
  }
}

async function resumeInit(store: ConfigStore, config: AgentConfig, args: { pass: PassphraseSource; generatePassphrase?: boolean }): Promise<EnrollOutcome | null> {
  const api = clientFor(config);
  try {
    if ((await api.json<RepoResponse>('GET', '/repo')).config !== null) return null;
    const created = await initRepository(store, api, args.pass, args.generatePassphrase ?? false);
    if (!created) return null;
    return { config, createdRepository: true, recoveryKey: created.recovery, generatedPassphrase: created.passphrase, keyError: null };
  } finally {
    api.close();
  }
}

/** True when the system's CAs validate the server's certificate for its host name (and it is `pin`). */
async function caVouchesFor(server: string, pin: string): Promise<boolean> {
  const probe = new ApiClient({ server, fingerprint: pin, attempts: 1 });
  try {
    await probe.json('GET', '/health');
    return true;
  } catch (e) {
    if (isCoffreError(e, 'TLS_PIN_MISMATCH')) return false;
    throw e;
  } finally {
    probe.close();
  }
}

function isSelfSigned(pem: string): boolean {
  const x = new X509Certificate(pem);
  return x.issuer === x.subject && x.verify(x.publicKey);
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
async function initRepository(store: ConfigStore, api: ApiClient, pass: PassphraseSource, generate: boolean): Promise<{ recovery: string; passphrase: string | null } | null> {
  const passphrase = generate ? generatePassphrase() : await readPassphrase(pass, { confirm: true, prompt: 'New passphrase for this customer\'s backups: ' });
  if (!passphrase) throw new CoffreError('NO_KEY', 'a passphrase is needed to create the encryption key: set COFFRE_PASSPHRASE or use --passphrase-file (or let --generate-passphrase make one)');
  const c = store.load();
  checkNewPassphrase(passphrase, [c.customerName, c.machineName]);
  const master = newMasterKey();
  const recovery = newRecoveryKey();
  const slots = [await makePassphraseSlot(master, passphrase, argon2Params()), makeRecoverySlot(master, recovery.raw)];
  const config = format2Config({ chunker: DEFAULT_CHUNKER, compression: 'zstd' }, master);
  try {
    await api.json('POST', '/repo/init', { config, keySlots: slots }, false);
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return null;
    throw e;
  }
  // Unattended backups need only the write keys: the master key is not kept (FORMAT.md §2.4).
  store.saveWriteKeys(customerOf(store), deriveWriteKeys(master));
  return { recovery: recovery.text, passphrase: generate ? passphrase : null };
}

function customerOf(store: ConfigStore): string {
  return store.load().customerId;
}

/** A format-2 configuration: the public read key new data is sealed to, and the key-admin key. */
export function format2Config(base: Pick<RepoConfig, 'chunker' | 'compression'>, master: Buffer): RepoConfig {
  return { v: 2, chunker: base.chunker, compression: base.compression, readKey: deriveReadKey(master).publicKey.toString('base64'), adminKey: deriveAdminKey(master).publicKey.toString('base64') };
}

/** Moves a format-1 repository to format 2 (needs the master key; chunk ids and old data stay valid). */
export async function upgradeRepository(store: ConfigStore, api: ApiClient, info: RepoResponse, master: Buffer): Promise<RepoConfig> {
  if (!info.config) throw new CoffreError('NO_KEY', 'the repository has not been initialised');
  if (info.config.v === 2) {
    checkFormat2Keys(info, master);
    return info.config;
  }
  const config = format2Config(info.config, master);
  const signature = ed25519Sign(deriveAdminKey(master).privateKey, repoUpgradeMessage(info.customerId, config.readKey!, config.adminKey!)).toString('base64');
  await api.json('POST', '/repo/upgrade', { config, signature });
  store.saveWriteKeys(info.customerId, deriveWriteKeys(master));
  store.forgetKey();
  return config;
}

async function unlockWith(store: ConfigStore, info: RepoResponse, secret: { passphrase: string } | { recovery: string }): Promise<void> {
  const master = await openMaster(info, secret);
  if (info.config?.v !== 2) return; // format 1: checked, never stored (the passphrase is given per command until the upgrade)
  checkFormat2Keys(info, master);
  store.saveWriteKeys(info.customerId, deriveWriteKeys(master));
}

/** What a command needs: `write` (backups, listings) or `read` (anything that decrypts stored data). */
export type KeyNeed = 'write' | 'read';

/** The secret given for this command: a passphrase (file, environment) or the recovery key (environment). */
async function givenSecret(pass: PassphraseSource, prompt: boolean): Promise<{ passphrase: string } | { recovery: string } | null> {
  const recovery = process.env.COFFRE_RECOVERY_KEY;
  if (!pass.file && recovery) return { recovery };
  const p = await (prompt ? readPassphrase(pass) : readPassphraseNoPrompt(pass));
  return p === null ? null : { passphrase: p };
}

/** Opens the master key with the given secret; a wrong one is always an error (exit 11). */
export async function openMaster(info: RepoResponse, secret: { passphrase: string } | { recovery: string }): Promise<Buffer> {
  return 'recovery' in secret ? openWithRecoveryKey(info.keySlots, secret.recovery) : openWithPassphrase(info.keySlots, secret.passphrase);
}

/**
 * The keys for a command. A secret that is given must open a key slot (a wrong one is always
 * an error). Format 2: the machine keeps only its write keys; the master key is opened for
 * the command when the secret is given (or typed at a prompt when the command must read) and
 * never stored — a master key cached by format 1 is turned into write keys and removed.
 * Format 1: the master key is cached as before (ADR 0002).
 */
export async function unlock(store: ConfigStore, info: RepoResponse, pass: PassphraseSource, need: KeyNeed): Promise<{ master: Buffer | null; write: WriteKeys | null; cacheKey: Buffer | null }> {
  if (!info.config) throw new CoffreError('NO_KEY', 'the repository has no key yet');
  const customerId = info.customerId;
  const cached = store.loadKey();
  let kept = store.loadWriteKeys(customerId);
  // A machine that knows the repository as format 2 never goes back (a server, a stale replica
  // or an old database saying "format 1" would get the master key written to disk).
  if (info.config.v === 1 && kept) throw new CoffreError('INTEGRITY', DOWNGRADE);
  const promptOk = info.config.v === 1 ? !cached : need === 'read' || (!kept && !cached);
  const secret = await givenSecret(pass, promptOk);
  let master: Buffer | null = null;
  if (secret) master = await openMaster(info, secret);
  if (info.config.v === 1) {
    // Format 1 keeps working: a machine that cached the key before format 2 uses it; the key is
    // never written anew (others give the passphrase, or the customer upgrades).
    master ??= cached;
    if (!master) throw new CoffreError('NO_KEY', 'the passphrase is needed to open the encryption key: set COFFRE_PASSPHRASE or use --passphrase-file');
    return { master, write: null, cacheKey: null };
  }
  // Format 2: the keys the server lists must be the ones the master key gives.
  const own = master ?? cached;
  if (own) checkFormat2Keys(info, own);
  if (cached) {
    // A master key left by format 1, checked above: turned into write keys, then removed.
    store.saveWriteKeys(customerId, deriveWriteKeys(cached));
    store.forgetKey();
    kept = store.loadWriteKeys(customerId);
  }
  if (master) {
    const w = deriveWriteKeys(master);
    if (!kept || !kept.keys.readPublic.equals(w.readPublic) || !kept.keys.chunkId.equals(w.chunkId)) store.saveWriteKeys(customerId, w);
    kept = store.loadWriteKeys(customerId);
  }
  if (need === 'read' && !master) throw new CoffreError('NO_KEY', WRITE_ONLY_MESSAGE);
  if (!kept) throw new CoffreError('NO_KEY', 'this machine has not got its backup keys yet: run a command once with the passphrase (COFFRE_PASSPHRASE or --passphrase-file)');
  return { master, write: kept.keys, cacheKey: kept.cacheKey };
}

const DOWNGRADE =
  'the server says this repository uses storage format 1, but this machine knows it in format 2: refusing (a downgrade would put the master key on this machine). Check with the operator which database the server runs on';

/** INTEGRITY unless the configuration's read and key-admin keys are the master key's. */
export function checkFormat2Keys(info: RepoResponse, master: Buffer): void {
  const c = info.config!;
  if (c.readKey !== deriveReadKey(master).publicKey.toString('base64') || c.adminKey !== deriveAdminKey(master).publicKey.toString('base64')) {
    throw new CoffreError('INTEGRITY', "the server's repository keys are not the ones the passphrase gives (tampering, or an upgrade made without the master key): not using them; nothing was changed on this machine");
  }
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
export async function openRepository(store: ConfigStore, pass: PassphraseSource, mode: AccessMode = 'read', need: KeyNeed = 'write'): Promise<Repository> {
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
    const k = await unlock(store, info, pass, need);
    return new Repository({
      api,
      master: k.master,
      ...(k.write ? { write: k.write } : {}),
      ...(k.cacheKey ? { cacheKey: k.cacheKey } : {}),
      config: info.config,
      machineId: c.machineId,
      cacheDir: `${store.cacheDir}/${c.customerId}`,
    });
  } catch (e) {
    api.close();
    if (e instanceof ApiError && e.status === 401) {
      throw new CoffreError('UNAUTHORIZED', 'the server refused this machine\'s credential (revoked or unknown); ask for a new enrollment token and enroll again');
    }
    throw e;
  }
}
