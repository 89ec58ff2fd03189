import { Readable } from 'node:stream';
import type { AuditPageResponse, ChainVerdictRecord } from '@coffre/core';
import type { FastifyRequest } from 'fastify';
import type { AuditFilter } from '../../audit/log.js';
import { auditRequest } from '../../audit/record.js';
import { csvChunks, jsonChunks } from '../../audit/stream.js';
import { findOrg, isWithin, subtreeIds } from '../../db/queries/orgs.js';
import { apiError } from '../../errors.js';
import { userOf, type App, type Deps } from '../../http/context.js';
import { exportAuditSchema, listAuditSchema, verifyAuditSchema } from './schema.js';

interface FilterQuery {
  actor?: string;
  action?: string;
  outcome?: string;
  orgId?: string;
  since?: string;
  until?: string;
}

export function registerAuditRoutes(app: App, deps: Deps): void {
  /**
   * The caller's view of the trail: the operator's people see everything (system entries
   * included); others see entries about their organisation and those below it.
   */
  async function filterFor(req: FastifyRequest, q: FilterQuery): Promise<AuditFilter> {
    const p = userOf(req);
    let orgIds: string[] | null = p.orgType === 'operator' ? null : await subtreeIds(deps.db, p.orgId);
    if (q.orgId !== undefined) {
      const org = await findOrg(deps.db, q.orgId);
      if (!org || !(await isWithin(deps.db, org, p.orgId))) throw apiError('orgNotFound');
      orgIds = await subtreeIds(deps.db, org.id);
    }
    return {
      orgIds,
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.outcome ? { outcome: q.outcome } : {}),
      ...(q.since ? { since: new Date(q.since).toISOString() } : {}),
      ...(q.until ? { until: new Date(q.until).toISOString() } : {}),
    };
  }

  app.get<{ Querystring: FilterQuery & { limit?: string; before?: string } }>(
    '/audit',
    { schema: listAuditSchema, config: { auth: 'user', action: 'audit:read', tenant: 'subtree' } },
    async (req): Promise<AuditPageResponse> => {
      const filter = await filterFor(req, req.query);
      const limit = Math.min(Math.max(Number(req.query.limit ?? 50), 1), 500);
      const before = req.query.before === undefined ? undefined : Number(req.query.before);
      // Reading the trail is itself recorded (before reading, so the reader sees it).
      await auditRequest(deps, req, { action: 'audit.read', outcome: 'success', details: { ...req.query } });
      const entries = await deps.audit.page(filter, limit + 1, before);
      const more = entries.length > limit;
      const page = more ? entries.slice(0, limit) : entries;
      return { entries: page, nextBefore: more ? page[page.length - 1]!.seq : null };
    },
  );

  app.get<{ Querystring: FilterQuery & { format: 'csv' | 'json' } }>(
    '/audit/export',
    { schema: exportAuditSchema, config: { auth: 'user', action: 'audit:read', tenant: 'subtree' } },
    async (req, reply) => {
      const { format, ...q } = req.query;
      const filter = await filterFor(req, q);
      await auditRequest(deps, req, { action: 'audit.export', outcome: 'success', details: { format, ...q } });
      const stamp = deps.clock().toISOString().replace(/[:.]/g, '-');
      void reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="coffre-audit-${stamp}.${format}"`);
      const entries = deps.audit.matching(filter);
      return reply.send(Readable.from(format === 'csv' ? csvChunks(entries) : jsonChunks(entries)));
    },
  );

  app.get('/audit/verify', { schema: verifyAuditSchema, config: { auth: 'user', action: 'audit:verify', tenant: 'operator' } }, async (req): Promise<ChainVerdictRecord> => {
    const verdict = await deps.audit.verify();
    await auditRequest(deps, req, { action: 'audit.verify', outcome: verdict.ok ? 'success' : 'failure', details: { count: verdict.count, firstBad: verdict.firstBad ?? null } });
    return verdict;
  });
}
