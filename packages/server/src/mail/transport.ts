import nodemailer from 'nodemailer';

/** The longest one send can take with the timeouts below (connect + greeting + socket idle, with margin). */
export const SEND_TIMEOUT_MS = 5 * 60_000;

export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** Where the outbox hands emails over. One implementation: SMTP (nodemailer). */
export interface MailTransport {
  send(m: MailMessage): Promise<void>;
  close(): void;
}

/**
 * SMTP with the URL of the settings or `COFFRE_SMTP_URL`: `smtp://host:port` upgrades to
 * TLS with STARTTLS whenever the server offers it (certificate verified), `smtps://` is TLS
 * from the start; credentials go in the URL (`smtp://user:pass@host:587`) and never into
 * logs. Nodemailer options may be given as query parameters (e.g. `?requireTLS=true`).
 */
export function smtpTransport(url: string, from: string): MailTransport {
  // Bounded waits: a stuck SMTP server must not hold a job forever (SEND_TIMEOUT_MS in all).
  const t = nodemailer.createTransport({ url, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000 }, { from });
  return {
    async send(m) {
      await t.sendMail({ to: m.to, subject: m.subject, text: m.text, html: m.html });
    },
    close() {
      t.close();
    },
  };
}

/** The SMTP URL with any password replaced, for messages and logs. */
export function redactSmtpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
