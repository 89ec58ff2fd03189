import type { AccessReport } from '@coffre/core';
import type { Database } from '../../db/database.js';
import { lastReviewOfOrg, type LastReview } from '../../db/queries/access-reviews.js';
import type { OrgRow } from '../../db/queries/orgs.js';
import { listUsers, secondFactors } from '../../db/queries/users.js';

/** Annex 3 §7.2.3: access is reviewed at least every six months. */
export const REVIEW_PERIOD_DAYS = 182;

export type { LastReview };

/** When the next review is due: six months after the last one, or after the organisation's creation. */
export function reviewDueAt(org: OrgRow, last: LastReview | null): string {
  const from = Date.parse(last?.reviewedAt ?? org.created_at);
  return new Date(from + REVIEW_PERIOD_DAYS * 86_400_000).toISOString();
}

export function reviewOverdue(org: OrgRow, last: LastReview | null, now: Date): boolean {
  return Date.parse(reviewDueAt(org, last)) <= now.getTime();
}

/** The people of one organisation, their role, last sign-in and second-factor status. */
export async function accessReport(db: Database, org: OrgRow, now: Date): Promise<AccessReport> {
  const users = await listUsers(db, [org.id]);
  const last = await lastReviewOfOrg(db, org.id);
  return {
    org: { id: org.id, name: org.name, type: org.type },
    generatedAt: now.toISOString(),
    users: await Promise.all(
      users.map(async (u) => {
        const f = await secondFactors(db, u);
        return {
          id: u.id,
          name: u.name,
          email: u.email,
          role: u.role,
          status: u.status,
          lastLoginAt: u.last_login_at,
          secondFactor: f.totp && f.webauthn > 0 ? 'totp+webauthn' : f.totp ? 'totp' : f.webauthn > 0 ? 'webauthn' : 'none',
          createdAt: u.created_at,
        };
      }),
    ),
    lastReview: last,
    dueAt: reviewDueAt(org, last),
    overdue: reviewOverdue(org, last, now),
  };
}
