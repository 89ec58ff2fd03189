import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database } from '../db/database.js';
import type { LogSink } from '../log.js';
import type { SectionLocks } from '../db/engine.js';
import type { ObjectStore } from '../store/object-store.js';
import type { AuditLog } from '../audit/log.js';
import type { ServerKeys } from '../auth/server-key.js';
import type { ServerSettings } from '../datadir.js';
import type { OrgRow } from '../db/queries/orgs.js';
import type { Clock, MachinePrincipal, Principal, UserPrincipal } from '../types.js';
import type { Action } from './policy.js';
import type { UserAction } from './roles.js';
import { apiError } from '../errors.js';

/**
 * Where a people's route finds the organisation it acts on, for the tenant check:
 * a path parameter (the org itself, or the org of a user or machine), the body's parent
 * org, the operator root (global things), or nothing because the handler itself restricts
 * to the caller's subtree ('subtree') or acts on the caller alone ('self').
 */
export type TenantSource = 'param:orgId' | 'param:userId' | 'param:machineId' | 'body:parentId' | 'operator' | 'subtree' | 'self';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** 'none' for the few public routes; 'user' for people (session cookie); 'replica' for a replica site's credential; default: machine credential. */
    auth?: 'none' | 'user' | 'replica';
    /** What the route does, checked against the caller's policy before the handler runs. */
    action?: Action | UserAction;
    /** People's routes: where the target organisation comes from (required). */
    tenant?: TenantSource;
    /** People's routes: the least complete session that may call it (default 'full'). */
    stage?: 'second-factor' | 'setup' | 'full';
    /** People's routes: destructive, needs a recent second-factor proof. */
    reauth?: boolean;
    /** The web console's files: served with the console's Content-Security-Policy. */
    console?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
    /** The organisation a people's route acts on, once the policy layer has checked it. */
    targetOrg: OrgRow | null;
    /** The raw session cookie value of a people's request (to derive its CSRF token). */
    sessionToken: string | null;
  }
}

/** What routes see. Fastify types plugin scopes with the default raw server whatever the
 *  real one is (HTTPS here); routes never touch the raw server, so they use this. */
export type App = FastifyInstance;

/** Everything a handler may use; passed explicitly, no globals. */
export interface Deps {
  readonly db: Database;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: LogSink;
  readonly locks: SectionLocks;
  readonly keys: ServerKeys;
  readonly audit: AuditLog;
  readonly settings: ServerSettings;
  /** SHA-256 fingerprint of the served certificate (for the enrollment command shown to people). */
  readonly fingerprint: string;
  /** DIR/secrets: the initial administrator's password file is removed once it has served. */
  readonly secretsDir: string;
}

/** The calling machine, on machine routes (the policy layer guarantees the kind). */
export function machineOf(req: FastifyRequest): MachinePrincipal {
  if (req.principal?.kind !== 'machine') throw apiError('unauthenticated');
  return req.principal;
}

/** The signed-in person, on people's routes. */
export function userOf(req: FastifyRequest): UserPrincipal {
  if (req.principal?.kind !== 'user') throw apiError('notSignedIn');
  return req.principal;
}

/** The organisation checked by the policy layer (routes whose tenant is a parameter or the body). */
export function targetOrgOf(req: FastifyRequest): OrgRow {
  if (!req.targetOrg) throw new Error(`route ${req.routeOptions.url ?? '?'} has no checked target organisation`);
  return req.targetOrg;
}
