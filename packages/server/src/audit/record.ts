import type { FastifyRequest } from 'fastify';
import type { Deps } from '../http/context.js';
import type { AuditEntry, AuditOutcome } from './chain.js';

export interface RequestAuditEvent {
  readonly action: string;
  readonly outcome: AuditOutcome;
  readonly orgId?: string | null;
  readonly target?: string | null;
  readonly details?: Readonly<Record<string, unknown>> | null;
  /** For events before anyone is signed in (failed sign-in): the identifier typed. */
  readonly actorLabel?: string;
}

/** Records an event of an HTTP request: actor from the principal, IP, user agent and request id from the request. */
export async function auditRequest(deps: Deps, req: FastifyRequest, e: RequestAuditEvent): Promise<AuditEntry> {
  const p = req.principal;
  const actor =
    p?.kind === 'user'
      ? { actorType: 'user' as const, actorId: p.userId, actorLabel: p.email, orgId: p.orgId }
      : p?.kind === 'machine'
        ? { actorType: 'machine' as const, actorId: p.machineId, actorLabel: p.machineName, orgId: p.customerId }
        : { actorType: 'anonymous' as const, actorId: null, actorLabel: e.actorLabel ?? null, orgId: null };
  return deps.audit.append({
    ...actor,
    orgId: e.orgId !== undefined ? e.orgId : actor.orgId,
    action: e.action,
    target: e.target ?? null,
    ip: req.ip,
    userAgent: truncate(req.headers['user-agent'], 400),
    requestId: req.id,
    outcome: e.outcome,
    details: e.details ?? null,
  });
}

function truncate(s: string | undefined, n: number): string | null {
  if (s === undefined) return null;
  return s.length > n ? s.slice(0, n) : s;
}
