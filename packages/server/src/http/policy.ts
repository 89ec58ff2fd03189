import type { FastifyRequest } from 'fastify';
import { findMachine } from '../db/queries/machines.js';
import { findOrg, isWithin, operatorOrg, type OrgRow } from '../db/queries/orgs.js';
import { findUser } from '../db/queries/users.js';
import { apiError, type ReasonId } from '../errors.js';
import type { MachinePrincipal, SessionStage, UserPrincipal } from '../types.js';
import type { Deps, TenantSource } from './context.js';
import { getSiteState } from '../db/queries/replication.js';
import { checkFencing } from '../replication/admin.js';
import { EPOCH_HEADER } from '../replication/wire.js';
import { roleAllows, USER_ACTIONS, type UserAction } from './roles.js';

/** Every action a machine route can perform. A route without one fails closed (500). */
export const ACTIONS = [
  'repo:read',
  'repo:init',
  'repo:add-key-slot',
  'repo:replace-key-slots',
  'repo:upgrade',
  'chunks:read',
  'packs:write',
  'packs:read',
  'snapshots:write',
  'snapshots:read',
  'machines:list',
  'runs:write',
  'jobs:write',
  'heartbeat:write',
  'restore-tests:write',
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * Machine credentials are append-only (ransomware resistance): they add and read their
 * own customer's data, and no action that deletes or rewrites anything is ever granted —
 * except the key slots of a format-2 repository, and only with a signature by the key-admin
 * key that a machine's unattended state does not hold (routes/repo).
 * The tenant check itself is structural: handlers scope every query by
 * `principal.customerId`, and no route takes a customer id from the client.
 */
const MACHINE_ACTIONS: ReadonlySet<string> = new Set<string>(ACTIONS);

export function machineCan(_principal: MachinePrincipal, action: Action | UserAction): boolean {
  return MACHINE_ACTIONS.has(action);
}

/** What a machine may only do on the primary site (a replica or a demoted primary serves reads). */
const MACHINE_WRITES: ReadonlySet<string> = new Set<string>(['repo:init', 'repo:add-key-slot', 'repo:replace-key-slots', 'repo:upgrade', 'packs:write', 'snapshots:write', 'runs:write', 'jobs:write', 'heartbeat:write', 'restore-tests:write']);

/**
 * Fencing (docs/CONTINUITY.md): a write is accepted only by the primary site. An agent
 * sends the highest site epoch it knows; a primary that is told of a higher epoch than its
 * own does not take the caller's word for it: it asks the other sites (pinned TLS), and only
 * if one confirms it was promoted above this one does it demote itself and refuse the
 * write, so that an old primary coming back never takes backups beside the new one. A claim
 * no site confirms is ignored (asked again at most once a minute).
 */
async function refuseWritesUnlessPrimary(deps: Deps, req: FastifyRequest): Promise<void> {
  let state = await getSiteState(deps.db);
  if (!state) return; // never set up: a single site, the primary
  const header = req.headers[EPOCH_HEADER];
  const seen = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : 0;
  if (state.role === 'primary' && seen > state.epoch && promotionClaimWorthChecking(seen, deps.clock().getTime())) {
    const f = await checkFencing(deps);
    if (f.demotedBy) {
      deps.log({ level: 'warn', msg: 'site demoted: another site was promoted above this one', epoch: state.epoch, seen, promoted: f.demotedBy });
      state = (await getSiteState(deps.db)) ?? state;
    }
  }
  if (state.role === 'demoted') throw apiError('siteDemoted', { epoch: state.epoch });
  if (state.role === 'replica') throw apiError('siteReadOnly', { primary: state.primary_url });
}

/** When each claimed epoch was last checked with the other sites (a cache, in this process only: losing it only means asking again). */
const checkedClaims = new Map<number, number>();
function promotionClaimWorthChecking(epoch: number, now: number): boolean {
  const last = checkedClaims.get(epoch);
  if (last !== undefined && now - last < 60_000) return false;
  if (checkedClaims.size > 1000) checkedClaims.clear();
  checkedClaims.set(epoch, now);
  return true;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const STAGE_ORDER: Readonly<Record<SessionStage, number>> = { 'second-factor': 0, setup: 1, full: 2 };

/**
 * preHandler (after authentication and validation, before the handler): the one policy
 * layer. For people, in this order: session stage → role allows the action (403, whatever
 * the tenant: a refusal never tells whether a resource exists) → the target organisation
 * is the caller's own or below it (404 otherwise) → a fresh second-factor proof for
 * destructive actions.
 */
export function authorize(deps: Deps) {
  return async (req: FastifyRequest): Promise<void> => {
    const config = req.routeOptions.config;
    if (config.auth === 'none' || req.is404) return;
    const p = req.principal;
    if (!p) throw apiError(config.auth === 'user' ? 'notSignedIn' : 'unauthenticated');
    if (config.auth === 'replica') {
      // Replication routes are reads of the whole installation by a joined replica site, and nothing else.
      if (p.kind !== 'replica') throw apiError('forbidden');
      return;
    }
    if (config.auth !== 'user') {
      if (p.kind !== 'machine') throw apiError('forbidden');
      if (config.action === undefined) throw new Error(`route ${req.routeOptions.url ?? '?'} declares no action`);
      if (!machineCan(p, config.action)) throw apiError('forbidden');
      if (MACHINE_WRITES.has(config.action)) await refuseWritesUnlessPrimary(deps, req);
      return;
    }
    if (p.kind !== 'user') throw apiError('forbidden');
    const tenant = config.tenant;
    if (tenant === undefined) throw new Error(`route ${req.routeOptions.url ?? '?'} declares no tenant source`);

    const need = config.stage ?? 'full';
    if (STAGE_ORDER[p.stage] < STAGE_ORDER[need]) throw apiError(p.stage === 'second-factor' ? 'secondFactorRequired' : 'setupRequired');

    if (tenant !== 'self') {
      const action = config.action;
      if (action === undefined || !(USER_ACTIONS as readonly string[]).includes(action)) {
        throw new Error(`route ${req.routeOptions.url ?? '?'} declares no people's action`);
      }
      if (!roleAllows(p.role, action as UserAction)) {
        await deny(deps, req, p, action, 'role');
        throw apiError('roleForbidden');
      }
      req.targetOrg = await resolveTarget(deps, req, p, tenant);
    }

    if (config.reauth && !recentlyProven(deps, p)) throw apiError('reauthRequired');
    // People read on a replica (and sign in there); what they change belongs on the primary.
    if (!SAFE_METHODS.has(req.method) && !(req.routeOptions.url ?? '').includes('/auth/')) await refuseWritesUnlessPrimary(deps, req);
  };
}

function recentlyProven(deps: Deps, p: UserPrincipal): boolean {
  if (p.secondFactorAt === null) return false;
  return deps.clock().getTime() - Date.parse(p.secondFactorAt) <= deps.settings.reauthMinutes * 60_000;
}

async function deny(deps: Deps, req: FastifyRequest, p: UserPrincipal, action: string, why: string): Promise<void> {
  await deps.audit.append({
    actorType: 'user',
    actorId: p.userId,
    actorLabel: p.email,
    orgId: p.orgId,
    action: 'access.denied',
    target: `${req.method} ${req.routeOptions.url ?? ''}`,
    ip: req.ip,
    userAgent: req.headers['user-agent'] ?? null,
    requestId: req.id,
    outcome: 'denied',
    details: { action, why },
  });
}

/** Loads the target organisation named by the request and checks it is within the caller's tree. */
async function resolveTarget(deps: Deps, req: FastifyRequest, p: UserPrincipal, tenant: TenantSource): Promise<OrgRow | null> {
  const params = req.params as Record<string, string | undefined>;
  let org: OrgRow | undefined;
  let missing: ReasonId = 'orgNotFound';
  switch (tenant) {
    case 'subtree':
      return findOrg(deps.db, p.orgId).then((o) => o ?? null);
    case 'operator':
      org = await operatorOrg(deps.db);
      // Global operations belong to the operator's people only; others are told it does not exist.
      missing = 'notFound';
      break;
    case 'param:orgId':
      org = params.orgId ? await findOrg(deps.db, params.orgId) : undefined;
      break;
    case 'param:userId': {
      missing = 'userNotFound';
      const u = params.userId ? await findUser(deps.db, params.userId) : undefined;
      org = u ? await findOrg(deps.db, u.org_id) : undefined;
      break;
    }
    case 'param:machineId': {
      missing = 'machineNotFound';
      const m = params.machineId ? await findMachine(deps.db, params.machineId) : undefined;
      org = m ? await findOrg(deps.db, m.customer_id) : undefined;
      break;
    }
    case 'body:parentId': {
      const body = req.body as { parentId?: unknown } | undefined;
      const id = typeof body?.parentId === 'string' ? body.parentId : p.orgId;
      org = await findOrg(deps.db, id);
      break;
    }
    case 'self':
      return null;
  }
  if (!org || !(await isWithin(deps.db, org, p.orgId))) {
    // Probing another tenant is worth knowing about; the caller only learns "not found".
    if (org) await deny(deps, req, p, req.routeOptions.config.action ?? '', 'tenant');
    throw apiError(missing);
  }
  return org;
}
