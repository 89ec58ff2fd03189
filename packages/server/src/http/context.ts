import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database } from '../db/database.js';
import type { LogSink } from '../log.js';
import type { KeyedMutex } from '../mutex.js';
import type { ObjectStore } from '../store/object-store.js';
import type { Clock, Principal } from '../types.js';
import type { Action } from './policy.js';
import { apiError } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** 'none' for the few public routes; every other route requires a machine credential. */
    auth?: 'none';
    /** What the route does, checked against the caller's policy before the handler runs. */
    action?: Action;
  }
  interface FastifyRequest {
    principal: Principal | null;
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
  readonly locks: KeyedMutex;
}

/** The authenticated caller; only reachable on routes that require authentication. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw apiError('unauthenticated');
  return req.principal;
}
