import { randomUUID } from 'node:crypto';
import { auditRequest } from '../../audit/record.js';
import { targetOrgOf, userOf, type App, type Deps } from '../../http/context.js';
import { accessReport } from './report.js';
import { accessReportSchema, markReviewedSchema } from './schema.js';

export function registerAccessReviewRoutes(app: App, deps: Deps): void {
  app.get('/orgs/:orgId/access-review', { schema: accessReportSchema, config: { auth: 'user', action: 'access-review:read', tenant: 'param:orgId' } }, async (req) => {
    return accessReport(deps.db, targetOrgOf(req), deps.clock());
  });

  app.post<{ Body: { note?: string } | undefined }>(
    '/orgs/:orgId/access-review',
    { schema: markReviewedSchema, config: { auth: 'user', action: 'access-review:mark', tenant: 'param:orgId' } },
    async (req, reply) => {
      const p = userOf(req);
      const org = targetOrgOf(req);
      const now = deps.clock();
      const report = await accessReport(deps.db, org, now);
      await deps.db
        .insertInto('access_reviews')
        .values({ id: randomUUID(), org_id: org.id, reviewed_by: p.userId, reviewed_at: now.toISOString(), report_json: JSON.stringify({ users: report.users, note: req.body?.note ?? null }) })
        .execute();
      await auditRequest(deps, req, { action: 'access-review.mark', outcome: 'success', orgId: org.id, target: `org:${org.id}`, details: { users: report.users.length } });
      void reply.code(201);
      return accessReport(deps.db, org, now);
    },
  );
}
