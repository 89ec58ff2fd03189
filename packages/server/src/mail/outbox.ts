import type { Database } from '../db/database.js';
import { claimEmail, dueEmails, pendingEmailCount, recordEmailAttempt } from '../db/queries/outbox.js';
import type { LogSink } from '../log.js';
import { SEND_TIMEOUT_MS, type MailTransport } from './transport.js';

export { enqueue, type OutgoingEmail } from '../db/queries/outbox.js';

/** Minutes to wait after the 1st, 2nd… failed attempt; the last value repeats. */
export const RETRY_MINUTES = [1, 5, 15, 60, 180, 360] as const;
/** After this long without success an email is marked failed (and logged as an error). */
export const GIVE_UP_HOURS = 72;

export interface DeliveryCounts {
  sent: number;
  retrying: number;
  failed: number;
  /** Pending emails left for later (not due yet, or no SMTP server configured). */
  waiting: number;
}

/**
 * Sends the due emails of the outbox, oldest first. A failure is retried later
 * (RETRY_MINUTES); after GIVE_UP_HOURS the email is marked failed and logged as an error
 * so the operator sees it. Without a transport nothing is sent and everything waits.
 * Safe to run from several processes: an email is claimed (next attempt pushed forward)
 * before it is sent, so two deliveries never send it twice.
 */
export async function deliverOutbox(db: Database, transport: MailTransport | null, now: Date, log: LogSink, limit = 200): Promise<DeliveryCounts> {
  const counts: DeliveryCounts = { sent: 0, retrying: 0, failed: 0, waiting: 0 };
  const at = now.toISOString();
  if (transport) {
    const due = await dueEmails(db, at, limit);
    for (const e of due) {
      // Claim: whoever moves next_attempt_at first sends it; the claim outlives any send.
      const claimUntil = new Date(Math.max(now.getTime(), Date.now()) + 2 * SEND_TIMEOUT_MS).toISOString();
      if (!(await claimEmail(db, e.id, e.next_attempt_at, claimUntil))) continue;
      try {
        await transport.send({ to: e.to_address, subject: e.subject, text: e.text_body, html: e.html_body });
        await recordEmailAttempt(db, e.id, claimUntil, { status: 'sent', sentAt: new Date().toISOString(), attempts: e.attempts + 1, lastError: null });
        counts.sent++;
      } catch (err) {
        const attempts = e.attempts + 1;
        const message = (err as Error).message.slice(0, 300);
        const giveUp = now.getTime() - Date.parse(e.created_at) >= GIVE_UP_HOURS * 3_600_000;
        const wait = RETRY_MINUTES[Math.min(attempts, RETRY_MINUTES.length) - 1]!;
        await recordEmailAttempt(db, e.id, claimUntil, { status: giveUp ? 'failed' : 'pending', attempts, lastError: message, nextAttemptAt: new Date(now.getTime() + wait * 60_000).toISOString() });
        if (giveUp) {
          counts.failed++;
          log({ level: 'error', msg: 'email given up', kind: e.kind, outboxId: e.id, attempts, error: message });
        } else {
          counts.retrying++;
          log({ level: 'warn', msg: 'email not sent, will retry', kind: e.kind, outboxId: e.id, attempts, retryInMinutes: wait, error: message });
        }
      }
    }
  }
  counts.waiting = await pendingEmailCount(db);
  if (!transport && counts.waiting > 0) log({ level: 'warn', msg: 'no SMTP server configured (smtp.url or COFFRE_SMTP_URL): emails are waiting in the outbox', waiting: counts.waiting });
  return counts;
}
