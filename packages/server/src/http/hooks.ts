import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LogSink } from '../log.js';

/** Headers on every response, errors included (onSend runs for all of them). */
export async function securityHeaders(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  void reply.headers({
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cache-control': 'no-store',
    'x-request-id': req.id,
  });
}

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
