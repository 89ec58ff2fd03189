import {
  ed25519Verify,
  keySlotsChangeMessage,
  repoUpgradeMessage,
  validateChunkerParams,
  type AddKeySlotRequest,
  type KeySlot,
  type RepoConfig,
  type RepoInitRequest,
  type RepoResponse,
  type RepoUpgradeRequest,
  type ReplaceKeySlotsRequest,
} from '@coffre/core';
import { auditRequest } from '../../audit/record.js';
import { addKeySlot, getRepo, initRepo, replaceKeySlots, upgradeRepo } from '../../db/queries/repo.js';
import { apiError } from '../../errors.js';
import { getSiteState } from '../../db/queries/replication.js';
import { agentSitesOf } from '../../admin/sites.js';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { isoNow } from '../../types.js';
import { addKeySlotSchema, getRepoSchema, initRepoSchema, MAX_KEY_SLOT_BYTES, replaceKeySlotsSchema, upgradeRepoSchema } from './schema.js';

function serializeSlot(slot: KeySlot): { id: string; json: string } {
  const json = JSON.stringify(slot);
  if (Buffer.byteLength(json, 'utf8') > MAX_KEY_SLOT_BYTES) throw apiError('keySlotTooLarge', { id: slot.id, maxBytes: MAX_KEY_SLOT_BYTES });
  return { id: slot.id, json };
}

function checkConfig(config: RepoConfig): void {
  try {
    validateChunkerParams(config.chunker);
  } catch (err) {
    throw apiError('badChunkerParams', { reason: (err as Error).message });
  }
  if (config.v === 2 && (!config.readKey || !config.adminKey)) throw apiError('repoFormat2Keys');
  if (config.v === 1 && (config.readKey || config.adminKey)) throw apiError('validation');
}

const b64 = (s: string) => Buffer.from(s, 'base64');

export function registerRepoRoutes(app: App, deps: Deps): void {
  app.get('/repo', { schema: getRepoSchema, config: { action: 'repo:read' } }, async (req): Promise<RepoResponse> => {
    const p = machineOf(req);
    const repo = await getRepo(deps.db, p.customerId);
    const state = await getSiteState(deps.db);
    // The customer's sites (agents keep the list and fail over to another when theirs is out of reach).
    const sites = await agentSitesOf(deps.db, p.customerId);
    return {
      customerId: p.customerId,
      machineId: p.machineId,
      machineName: p.machineName,
      config: repo.config,
      keySlots: repo.keySlots,
      keySlotsGeneration: repo.keySlotsGeneration,
      sites,
      site: { name: state?.self_name ?? 'primary', role: state?.role ?? 'primary', epoch: state?.epoch ?? 1 },
    };
  });

  app.post<{ Body: RepoInitRequest }>('/repo/init', { schema: initRepoSchema, config: { action: 'repo:init' } }, async (req) => {
    const p = machineOf(req);
    const { config, keySlots } = req.body;
    checkConfig(config);
    const slots = keySlots.map(serializeSlot);
    if (new Set(slots.map((s) => s.id)).size !== slots.length) throw apiError('duplicateKeySlot');
    await initRepo(deps.db, { customerId: p.customerId, machineId: p.machineId, config, slotsJson: slots, now: isoNow(deps.clock) });
    return { ok: true };
  });

  app.post<{ Body: AddKeySlotRequest }>('/repo/key-slots', { schema: addKeySlotSchema, config: { action: 'repo:add-key-slot' } }, async (req) => {
    const p = machineOf(req);
    const slot = serializeSlot(req.body.slot);
    // Format 2: a machine's unattended state must not be able to add a way in.
    if ((await getRepo(deps.db, p.customerId)).config?.v === 2) throw apiError('keySlotsNotSigned');
    await addKeySlot(deps.db, { customerId: p.customerId, machineId: p.machineId, id: slot.id, json: slot.json, now: isoNow(deps.clock) });
    return { ok: true };
  });

  app.put<{ Body: ReplaceKeySlotsRequest }>('/repo/key-slots', { schema: replaceKeySlotsSchema, config: { action: 'repo:replace-key-slots' } }, async (req) => {
    const p = machineOf(req);
    const { slots, expect, generation, signature } = req.body;
    const repo = await getRepo(deps.db, p.customerId);
    if (!repo.config) throw apiError('repoMissing');
    const signed = repo.config.v === 2 && ed25519Verify(b64(repo.config.adminKey!), keySlotsChangeMessage(p.customerId, generation, expect, slots), b64(signature));
    if (!signed) {
      await auditRequest(deps, req, { action: 'repo.key-slots.change', outcome: 'denied', orgId: p.customerId, target: `machine:${p.machineId}`, details: { reason: 'signature' } });
      throw apiError('keySlotsNotSigned');
    }
    if (!slots.some((s) => (s as { kind?: unknown }).kind === 'passphrase')) throw apiError('keySlotsEmpty');
    const rows = slots.map(serializeSlot);
    if (new Set(rows.map((s) => s.id)).size !== rows.length) throw apiError('duplicateKeySlot');
    const change = await replaceKeySlots(deps.db, { customerId: p.customerId, machineId: p.machineId, expect, generation, slots: rows, now: isoNow(deps.clock) });
    await auditRequest(deps, req, {
      action: 'repo.key-slots.change',
      outcome: 'success',
      orgId: p.customerId,
      target: `machine:${p.machineId}`,
      details: { added: change.added, removed: change.removed, kinds: slots.map((s) => (s as { kind?: unknown }).kind) },
    });
    return { ok: true, ...change };
  });

  app.post<{ Body: RepoUpgradeRequest }>('/repo/upgrade', { schema: upgradeRepoSchema, config: { action: 'repo:upgrade' } }, async (req) => {
    const p = machineOf(req);
    const { config, signature } = req.body;
    checkConfig(config);
    if (config.v !== 2) throw apiError('repoNotUpgradable');
    // Proof that the caller holds the new key-admin key (a typo'd or foreign key would lock the slots).
    if (!ed25519Verify(b64(config.adminKey!), repoUpgradeMessage(p.customerId, config.readKey!, config.adminKey!), b64(signature))) throw apiError('keySlotsNotSigned');
    await upgradeRepo(deps.db, { customerId: p.customerId, config, now: isoNow(deps.clock) });
    await auditRequest(deps, req, { action: 'repo.upgrade', outcome: 'success', orgId: p.customerId, target: `machine:${p.machineId}`, details: { format: 2 } });
    return { ok: true };
  });
}
