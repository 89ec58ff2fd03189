import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.js';
import type { Locale } from '../db/schema.js';
import type { LogSink } from '../log.js';
import { SEND_TIMEOUT_MS, type MailTransport } from './transport.js';

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

/** Minutes to wait after the 1st, 2nd… failed attempt; the last value repeats. */
export const RETRY_MINUTES = [1, 5, 15, 60, 180, 360] as const;
/** After this long without success an email is marked failed (and logged as an error). */
export const GIVE_UP_HOURS = 72;

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
    const due = await db.selectFrom('outbox').selectAll().where('status', '=', 'pending').where('next_attempt_at', '<=', at).orderBy('created_at').limit(limit).execute();
    for (const e of due) {
      // Claim: whoever moves next_attempt_at first sends it; the claim outlives any send.
      const claimUntil = new Date(Math.max(now.getTime(), Date.now()) + 2 * SEND_TIMEOUT_MS).toISOString();
      const claimed = await db.updateTable('outbox').set({ next_attempt_at: claimUntil }).where('id', '=', e.id).where('status', '=', 'pending').where('next_attempt_at', '=', e.next_attempt_at).executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) continue;
      try {
        await transport.send({ to: e.to_address, subject: e.subject, text: e.text_body, html: e.html_body });
        await db.updateTable('outbox').set({ status: 'sent', sent_at: new Date().toISOString(), attempts: e.attempts + 1, last_error: null }).where('id', '=', e.id).where('next_attempt_at', '=', claimUntil).execute();
        counts.sent++;
      } catch (err) {
        const attempts = e.attempts + 1;
        const message = (err as Error).message.slice(0, 300);
        const giveUp = now.getTime() - Date.parse(e.created_at) >= GIVE_UP_HOURS * 3_600_000;
        const wait = RETRY_MINUTES[Math.min(attempts, RETRY_MINUTES.length) - 1]!;
        await db
          .updateTable('outbox')
          .set({ status: giveUp ? 'failed' : 'pending', attempts, last_error: message, next_attempt_at: new Date(now.getTime() + wait * 60_000).toISOString() })
          .where('id', '=', e.id)
          .where('next_attempt_at', '=', claimUntil)
          .execute();
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
  const waiting = await db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'pending').executeTakeFirstOrThrow();
  counts.waiting = Number(waiting.n);
  if (!transport && counts.waiting > 0) log({ level: 'warn', msg: 'no SMTP server configured (smtp.url or COFFRE_SMTP_URL): emails are waiting in the outbox', waiting: counts.waiting });
  return counts;
}
