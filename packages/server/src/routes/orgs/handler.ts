import type { OrgListResponse, OrgRecord } from '@coffre/core';
import { auditRequest } from '../../audit/record.js';
import { reviewOverdue } from '../access-review/report.js';
import { lastReviewOfOrg } from '../../db/queries/access-reviews.js';
import { createOrg, listOrgs, setOrgStatus, subtreeIds, updateOrg, type OrgPatch, type OrgRow } from '../../db/queries/orgs.js';
import type { Locale } from '../../db/schema.js';
import { customerSitesOf } from '../../admin/sites.js';
import type { OrgDetail } from '@coffre/core/people-api';
import { apiError } from '../../errors.js';
import { targetOrgOf, userOf, type App, type Deps } from '../../http/context.js';
import type { OrgId } from '../../types.js';
import { createOrgSchema, getOrgSchema, listOrgsSchema, resumeOrgSchema, suspendOrgSchema, updateOrgSchema } from './schema.js';

interface ContactBody {
  alertEmail?: string | null;
  referentName?: string | null;
  referentEmail?: string | null;
  referentPhone?: string | null;
  locale?: Locale;
}

export function presentOrg(o: OrgRow): OrgRecord {
  return {
    id: o.id,
    name: o.name,
    type: o.type,
    parentId: o.parent_id,
    status: o.status,
    alertEmail: o.alert_email,
    incidentReferent: { name: o.referent_name, email: o.referent_email, phone: o.referent_phone },
    locale: o.locale,
    createdAt: o.created_at,
    updatedAt: o.updated_at,
    suspendedAt: o.suspended_at,
  };
}

function patchOf(b: ContactBody): OrgPatch {
  const patch: OrgPatch = {};
  if (b.alertEmail !== undefined) patch.alert_email = b.alertEmail;
  if (b.referentName !== undefined) patch.referent_name = b.referentName;
  if (b.referentEmail !== undefined) patch.referent_email = b.referentEmail;
  if (b.referentPhone !== undefined) patch.referent_phone = b.referentPhone;
  if (b.locale !== undefined) patch.locale = b.locale;
  return patch;
}

export function registerOrgRoutes(app: App, deps: Deps): void {
  app.get('/orgs', { schema: listOrgsSchema, config: { auth: 'user', action: 'orgs:read', tenant: 'subtree' } }, async (req): Promise<OrgListResponse> => {
    const p = userOf(req);
    const orgs = await listOrgs(deps.db, await subtreeIds(deps.db, p.orgId));
    const now = deps.clock();
    return {
      orgs: await Promise.all(
        orgs.map(async (o) => ({ ...presentOrg(o), accessReviewOverdue: reviewOverdue(o, await lastReviewOfOrg(deps.db, o.id), now) })),
      ),
    };
  });

  app.post<{ Body: ContactBody & { name: string; type: 'reseller' | 'customer'; parentId?: string } }>(
    '/orgs',
    { schema: createOrgSchema, config: { auth: 'user', action: 'orgs:create', tenant: 'body:parentId' } },
    async (req, reply) => {
      const parent = targetOrgOf(req);
      const b = req.body;
      const now = deps.clock().toISOString();
      const org = await createOrg(
        deps.db,
        {
          name: b.name,
          type: b.type,
          parentId: parent.id,
          alertEmail: b.alertEmail ?? null,
          referentName: b.referentName ?? null,
          referentEmail: b.referentEmail ?? null,
          referentPhone: b.referentPhone ?? null,
          locale: b.locale ?? 'fr',
        },
        now,
      );
      await auditRequest(deps, req, { action: 'org.create', outcome: 'success', orgId: org.id, target: `org:${org.id}`, details: { name: org.name, type: org.type, parentId: parent.id } });
      void reply.code(201);
      return presentOrg(org);
    },
  );

  app.get('/orgs/:orgId', { schema: getOrgSchema, config: { auth: 'user', action: 'orgs:read', tenant: 'param:orgId' } }, async (req) => {
    const o = targetOrgOf(req);
    const detail: OrgDetail = { ...presentOrg(o), accessReviewOverdue: reviewOverdue(o, await lastReviewOfOrg(deps.db, o.id), deps.clock()) };
    return o.type === 'customer' ? { ...detail, sites: await customerSitesOf(deps.db, o.id) } : detail;
  });

  app.patch<{ Body: ContactBody }>('/orgs/:orgId', { schema: updateOrgSchema, config: { auth: 'user', action: 'orgs:update', tenant: 'param:orgId', reauth: true } }, async (req) => {
    const o = targetOrgOf(req);
    const patch = patchOf(req.body);
    const updated = await updateOrg(deps.db, o.id, patch, deps.clock().toISOString());
    await auditRequest(deps, req, { action: 'org.update', outcome: 'success', orgId: o.id, target: `org:${o.id}`, details: { fields: Object.keys(req.body) } });
    return presentOrg(updated);
  });

  for (const [path, status, schema] of [
    ['/orgs/:orgId/suspend', 'suspended', suspendOrgSchema],
    ['/orgs/:orgId/resume', 'active', resumeOrgSchema],
  ] as const) {
    app.post(path, { schema, config: { auth: 'user', action: 'orgs:suspend', tenant: 'param:orgId', reauth: true } }, async (req) => {
      const p = userOf(req);
      const o = targetOrgOf(req);
      // Nobody suspends their own organisation (or the operator): it would lock themselves out.
      if (o.id === p.orgId || o.type === 'operator') throw apiError('notOnSelf');
      const updated = await setOrgStatus(deps.db, o.id as OrgId, status, deps.clock().toISOString());
      await auditRequest(deps, req, { action: status === 'suspended' ? 'org.suspend' : 'org.resume', outcome: 'success', orgId: o.id, target: `org:${o.id}` });
      return presentOrg(updated);
    });
  }
}
