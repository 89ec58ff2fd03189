import { randomUUID } from 'node:crypto';
import type { UserId } from '../../types.js';
import type { Database } from '../database.js';
import type { SessionsTable } from '../schema.js';

export type SessionRow = SessionsTable & { user_id: UserId };

export async function createSession(
  db: Database,
  s: { tokenHash: string; userId: UserId; now: string; expiresAt: string; ip: string | null; userAgent: string | null },
): Promise<SessionRow> {
  const row: SessionRow = {
    id: randomUUID(),
    token_hash: s.tokenHash,
    user_id: s.userId,
    created_at: s.now,
    last_seen_at: s.now,
    expires_at: s.expiresAt,
    second_factor_at: null,
    ip: s.ip,
    user_agent: s.userAgent,
    challenge: null,
    challenge_expires_at: null,
    revoked_at: null,
  };
  await db.insertInto('sessions').values(row).execute();
  return row;
}

export async function findSessionByTokenHash(db: Database, tokenHash: string): Promise<SessionRow | undefined> {
  return (await db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst()) as SessionRow | undefined;
}

export async function updateSession(db: Database, id: string, patch: Partial<Omit<SessionsTable, 'id' | 'user_id'>>): Promise<void> {
  await db.updateTable('sessions').set(patch).where('id', '=', id).execute();
}

/** Live sessions of a user, newest first. */
export async function listSessions(db: Database, userId: UserId, now: string): Promise<SessionRow[]> {
  return (await db
    .selectFrom('sessions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('last_seen_at', 'desc')
    .execute()) as SessionRow[];
}

/** Revokes one session of a user (false if it is not theirs or already ended). */
export async function revokeSession(db: Database, userId: UserId, id: string, now: string): Promise<boolean> {
  const res = await db.updateTable('sessions').set({ revoked_at: now }).where('id', '=', id).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Revokes every session of a user, except `keep` if given; returns how many. */
export async function revokeUserSessions(db: Database, userId: UserId, now: string, keep?: string): Promise<number> {
  let q = db.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null);
  if (keep !== undefined) q = q.where('id', '!=', keep);
  return Number((await q.executeTakeFirst()).numUpdatedRows);
}
