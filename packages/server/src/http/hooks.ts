import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LogSink } from '../log.js';

/** Headers on every response, errors included (onSend runs for all of them). */
export async function securityHeaders(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const console = req.routeOptions.config?.console === true && reply.statusCode < 400;
  void reply.headers({
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    // The API serves data only; the console may load its own scripts, styles and images, and talk to the API.
    'content-security-policy': console ? CONSOLE_CSP : "default-src 'none'; frame-ancestors 'none'",
    'cache-control': console ? (reply.getHeader('cache-control') ?? 'no-store') : 'no-store',
    'x-request-id': req.id,
  });
  if (console) void reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=()');
}

const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * One line per request, built from an allow-list of fields: method, path without the
 * query string, status, duration, caller ids. Never headers, tokens or bodies.
 */
export function requestLogger(log: LogSink) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    log({
      level: 'info',
      msg: 'request',
      reqId: req.id,
      method: req.method,
      path: req.url.split('?', 1)[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      ip: req.ip,
      ...(req.principal?.kind === 'machine' ? { customerId: req.principal.customerId, machineId: req.principal.machineId } : {}),
      ...(req.principal?.kind === 'user' ? { userId: req.principal.userId, orgId: req.principal.orgId } : {}),
    });
  };
}
