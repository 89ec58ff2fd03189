import { randomUUID } from 'node:crypto';
import type { Database } from '../database.js';

/** Access reviews (Annex 3 §7.2.3): one row each time an organisation's people were reviewed. */

export interface LastReview {
  readonly reviewedAt: string;
  readonly reviewedBy: string;
  readonly reviewerName: string | null;
}

/** The organisation's newest review, with its reviewer's name (null once that person is gone). */
export async function lastReviewOfOrg(db: Database, orgId: string): Promise<LastReview | null> {
  const r = await db
    .selectFrom('access_reviews as a')
    .leftJoin('users as u', 'u.id', 'a.reviewed_by')
    .select(['a.reviewed_at', 'a.reviewed_by', 'u.name'])
    .where('a.org_id', '=', orgId)
    .orderBy('a.reviewed_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return r ? { reviewedAt: r.reviewed_at, reviewedBy: r.reviewed_by, reviewerName: r.name } : null;
}

/** Records a review of the organisation's people (the report is kept as JSON). */
export async function insertAccessReview(db: Database, orgId: string, a: { reviewedBy: string; reviewedAt: string; reportJson: string }): Promise<void> {
  await db.insertInto('access_reviews').values({ id: randomUUID(), org_id: orgId, reviewed_by: a.reviewedBy, reviewed_at: a.reviewedAt, report_json: a.reportJson }).execute();
}
