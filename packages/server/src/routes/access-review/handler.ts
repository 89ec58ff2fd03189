import { auditRequest } from '../../audit/record.js';
import { insertAccessReview } from '../../db/queries/access-reviews.js';
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
      await insertAccessReview(deps.db, org.id, { reviewedBy: p.userId, reviewedAt: now.toISOString(), reportJson: JSON.stringify({ users: report.users, note: req.body?.note ?? null }) });
      await auditRequest(deps, req, { action: 'access-review.mark', outcome: 'success', orgId: org.id, target: `org:${org.id}`, details: { users: report.users.length } });
      void reply.code(201);
      return accessReport(deps.db, org, now);
    },
  );
}
