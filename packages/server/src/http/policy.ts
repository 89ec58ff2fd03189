import type { FastifyRequest } from 'fastify';
import { apiError } from '../errors.js';
import type { Principal } from '../types.js';

/** Every action a route can perform. A route without one fails closed (500). */
export const ACTIONS = [
  'repo:read',
  'repo:init',
  'repo:add-key-slot',
  'chunks:read',
  'packs:write',
  'packs:read',
  'snapshots:write',
  'snapshots:read',
  'machines:list',
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * Machine credentials are append-only (ransomware resistance): they add and read their
 * own customer's data, and no action that deletes or rewrites anything is ever granted.
 * The tenant check itself is structural: handlers scope every query by
 * `principal.customerId`, and no route takes a customer id from the client.
 */
const MACHINE_ACTIONS: ReadonlySet<Action> = new Set<Action>(ACTIONS);

export function can(principal: Principal, action: Action): boolean {
  return principal.kind === 'machine' && MACHINE_ACTIONS.has(action);
}

/** preHandler: runs after authentication and validation, before the handler. */
export async function authorize(req: FastifyRequest): Promise<void> {
  const config = req.routeOptions.config;
  if (config.auth === 'none' || req.is404) return;
  if (!req.principal) throw apiError('unauthenticated');
  if (config.action === undefined) throw new Error(`route ${req.routeOptions.url ?? '?'} declares no action`);
  if (!can(req.principal, config.action)) throw apiError('forbidden');
}
