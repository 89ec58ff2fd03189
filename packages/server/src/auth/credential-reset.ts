import type { Database } from '../db/database.js';
import { revokeUserSessions } from '../db/queries/sessions.js';
import { resetSecondFactors, updateUser, type UserRow } from '../db/queries/users.js';
import { credentialsResetEmail } from '../mail/account-templates.js';
import { enqueue } from '../mail/outbox.js';
import { newTemporaryPassword } from '../secrets.js';
import type { UserId } from '../types.js';
import { hashPassword } from './passwords.js';

export type ResetWhat = 'password' | 'second-factor';

/**
 * Resets a person's password (to a new temporary one, returned once, to change at the next
 * sign-in) or second factors (set up again at the next sign-in), and ends their sessions.
 * Shared by the console API (`/users/{id}/reset-*`) and `coffre-server user reset-*`.
 */
export async function resetCredentials(db: Database, user: UserRow, what: ResetWhat, now: Date): Promise<{ temporaryPassword: string | null; sessionsEnded: number }> {
  const at = now.toISOString();
  let temporaryPassword: string | null = null;
  if (what === 'password') {
    temporaryPassword = newTemporaryPassword();
    await updateUser(db, user.id, { password_hash: await hashPassword(temporaryPassword), must_change_password: 1 }, at);
  } else {
    await resetSecondFactors(db, user.id as UserId, at);
  }
  const sessionsEnded = await revokeUserSessions(db, user.id, at);
  return { temporaryPassword, sessionsEnded };
}

/** Tells the person concerned (outbox, in their language), so that a reset they did not ask for is noticed. */
export async function queueResetNotice(db: Database, user: UserRow, what: ResetWhat, by: { readonly name: string; readonly email: string }, publicUrl: string | null, now: Date, requestId: string): Promise<void> {
  const e = credentialsResetEmail({ personName: user.name, what, byName: by.name, byEmail: by.email, at: now.toISOString(), consoleUrl: publicUrl }, user.locale);
  await enqueue(
    db,
    { dedupKey: `credentials-reset:${what}:${user.id}:${now.toISOString()}:${requestId}`, kind: `credentials_reset_${what.replace('-', '_')}`, to: user.email, locale: user.locale, subject: e.subject, text: e.text, html: e.html },
    now,
  );
}
