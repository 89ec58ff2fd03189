import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { apiError } from '../errors.js';
import type { LogSink } from '../log.js';
import { errorBody } from './errors.js';

/**
 * Routes anyone may call before a full sign-in (sign-in, second factor, enrolment, a
 * replica's join): the body is a few hundred bytes, so a small limit and a short wait for it
 * keep an anonymous client from holding memory or a connection (slow-loris). The limits of
 * the other routes (64 MiB JSON, 30 minutes for a pack over a slow uplink) are for callers
 * that already proved who they are.
 */
export const PRE_AUTH_BODY_LIMIT = 16 * 1024;
/** From the end of the headers to the end of the body. */
export const PRE_AUTH_BODY_TIMEOUT_MS = 10_000;

type RouteConfig = { readonly auth?: string; readonly stage?: string } | undefined;

/** Open to callers that have not fully signed in: no credential at all, or a session still at its second factor. */
export function isPreAuth(config: RouteConfig): boolean {
  return config?.auth === 'none' || config?.stage === 'second-factor';
}

/** onRoute hook: the small body limit, unless the route sets its own. */
export function preAuthBodyLimit(route: RouteOptions): void {
  if (isPreAuth(route.config as RouteConfig) && route.bodyLimit === undefined) route.bodyLimit = PRE_AUTH_BODY_LIMIT;
}

const timers = new WeakMap<FastifyRequest, NodeJS.Timeout>();

/**
 * onRequest hook (runs before the body is read): a pre-auth request whose body has not
 * arrived within PRE_AUTH_BODY_TIMEOUT_MS gets `408 REQUEST_TIMEOUT` and its connection is
 * closed. `bodyReceived` (preValidation) and the end of the response disarm it.
 */
export function preAuthTimeout(log: LogSink) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!isPreAuth(req.routeOptions.config as RouteConfig) || req.method === 'GET' || req.method === 'HEAD') return;
    const timer = setTimeout(() => {
      timers.delete(req);
      log({ level: 'warn', msg: 'pre-auth request body too slow: connection closed', reqId: req.id, ip: req.ip, path: req.routeOptions.url ?? '' });
      reply.hijack(); // from here on Fastify sends nothing for this request
      const res = reply.raw;
      if (!res.headersSent) {
        const body = JSON.stringify(errorBody(apiError('requestTimeout'), req.id));
        res.writeHead(408, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close', 'cache-control': 'no-store', 'x-request-id': req.id });
        res.end(body);
      }
      req.raw.socket?.destroySoon();
    }, PRE_AUTH_BODY_TIMEOUT_MS);
    timer.unref();
    timers.set(req, timer);
    req.raw.once('close', () => disarm(req));
  };
}

function disarm(req: FastifyRequest): void {
  const t = timers.get(req);
  if (t !== undefined) clearTimeout(t);
  timers.delete(req);
}

/** preValidation and onResponse hook: the body is in (or the answer is out). */
export async function bodyReceived(req: FastifyRequest): Promise<void> {
  disarm(req);
}
