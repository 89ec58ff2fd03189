import { validateChunkerParams, type AddKeySlotRequest, type KeySlot, type RepoInitRequest, type RepoResponse } from '@coffre/core';
import { addKeySlot, getRepo, initRepo } from '../../db/queries/repo.js';
import { apiError } from '../../errors.js';
import { getSiteState } from '../../db/queries/replication.js';
import { agentSitesOf } from '../../admin/sites.js';
import { machineOf, type App, type Deps } from '../../http/context.js';
import { isoNow } from '../../types.js';
import { addKeySlotSchema, getRepoSchema, initRepoSchema, MAX_KEY_SLOT_BYTES } from './schema.js';

function serializeSlot(slot: KeySlot): { id: string; json: string } {
  const json = JSON.stringify(slot);
  if (Buffer.byteLength(json, 'utf8') > MAX_KEY_SLOT_BYTES) throw apiError('keySlotTooLarge', { id: slot.id, maxBytes: MAX_KEY_SLOT_BYTES });
  return { id: slot.id, json };
}

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
      sites,
      site: { name: state?.self_name ?? 'primary', role: state?.role ?? 'primary', epoch: state?.epoch ?? 1 },
    };
  });

  app.post<{ Body: RepoInitRequest }>('/repo/init', { schema: initRepoSchema, config: { action: 'repo:init' } }, async (req) => {
    const p = machineOf(req);
    const { config, keySlots } = req.body;
    try {
      validateChunkerParams(config.chunker);
    } catch (err) {
      throw apiError('badChunkerParams', { reason: (err as Error).message });
    }
    const slots = keySlots.map(serializeSlot);
    if (new Set(slots.map((s) => s.id)).size !== slots.length) throw apiError('duplicateKeySlot');
    await initRepo(deps.db, { customerId: p.customerId, machineId: p.machineId, config, slotsJson: slots, now: isoNow(deps.clock) });
    return { ok: true };
  });

  app.post<{ Body: AddKeySlotRequest }>('/repo/key-slots', { schema: addKeySlotSchema, config: { action: 'repo:add-key-slot' } }, async (req) => {
    const p = machineOf(req);
    const slot = serializeSlot(req.body.slot);
    await addKeySlot(deps.db, { customerId: p.customerId, machineId: p.machineId, id: slot.id, json: slot.json, now: isoNow(deps.clock) });
    return { ok: true };
  });
}
