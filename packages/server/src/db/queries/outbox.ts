import { randomUUID } from 'node:crypto';
import type { Database } from '../database.js';
import type { Locale, OutboxStatus, OutboxTable } from '../schema.js';

/**
 * The outbox of emails (mail/outbox.ts delivers it): platform-wide by nature, one queue
 * for the installation. Several processes may deliver at once: an email is claimed by a
 * conditional UPDATE on its `next_attempt_at` before it is sent, and every later write
 * names the claim, so no lock is needed.
 */

export interface OutgoingEmail {
  /** Enqueuing the same key again is a no-op (e.g. "alert:<id>:opened:<address>"). */
  readonly dedupKey: string;
  readonly kind: string;
  readonly to: string;
  readonly locale: Locale;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** Adds an email to the outbox; false when one with the same key is already there. */
export async function enqueue(db: Database, e: OutgoingEmail, now: Date): Promise<boolean> {
  const at = now.toISOString();
  const r = await db
    .insertInto('outbox')
    .values({
      id: randomUUID(),
      dedup_key: e.dedupKey,
      kind: e.kind,
      to_address: e.to,
      locale: e.locale,
      subject: e.subject,
      text_body: e.text,
      html_body: e.html,
      created_at: at,
      status: 'pending',
      attempts: 0,
      next_attempt_at: at,
      last_error: null,
      sent_at: null,
    })
    .onConflict((oc) => oc.column('dedup_key').doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Pending emails due at `at`, oldest first, at most `limit`. */
export async function dueEmails(db: Database, at: string, limit: number): Promise<OutboxTable[]> {
  return db.selectFrom('outbox').selectAll().where('status', '=', 'pending').where('next_attempt_at', '<=', at).orderBy('created_at').limit(limit).execute();
}

/** Claims a pending email read with `seenNextAttemptAt` until `claimUntil`; false if another delivery claimed it first. */
export async function claimEmail(db: Database, id: string, seenNextAttemptAt: string, claimUntil: string): Promise<boolean> {
  const claimed = await db.updateTable('outbox').set({ next_attempt_at: claimUntil }).where('id', '=', id).where('status', '=', 'pending').where('next_attempt_at', '=', seenNextAttemptAt).executeTakeFirst();
  return Number(claimed.numUpdatedRows) === 1;
}

/** Records the outcome of an attempt made under the claim `claimUntil` (nothing if the claim was lost). */
export async function recordEmailAttempt(
  db: Database,
  id: string,
  claimUntil: string,
  outcome: { status: OutboxStatus; attempts: number; lastError: string | null; sentAt?: string; nextAttemptAt?: string },
): Promise<void> {
  await db
    .updateTable('outbox')
    .set({
      status: outcome.status,
      attempts: outcome.attempts,
      last_error: outcome.lastError,
      ...(outcome.sentAt !== undefined ? { sent_at: outcome.sentAt } : {}),
      ...(outcome.nextAttemptAt !== undefined ? { next_attempt_at: outcome.nextAttemptAt } : {}),
    })
    .where('id', '=', id)
    .where('next_attempt_at', '=', claimUntil)
    .execute();
}

/** How many emails are still pending. */
export async function pendingEmailCount(db: Database): Promise<number> {
  const waiting = await db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'pending').executeTakeFirstOrThrow();
  return Number(waiting.n);
}
