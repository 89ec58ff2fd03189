import type { ConnectionOptions } from 'node:tls';
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

export interface SmtpOptions {
  /**
   * Refuse to send unless the connection is encrypted: with `smtp://` the server must accept
   * STARTTLS, else nothing is sent (credentials included). Default (undefined or null): on
   * when the URL carries a password. `smtps://` is encrypted from the start anyway.
   */
  readonly requireTLS?: boolean | null;
  /** TLS options (e.g. `ca` for a relay with a private certificate authority). */
  readonly tls?: ConnectionOptions;
}

/**
 * SMTP with the URL of the settings or `COFFRE_SMTP_URL`: `smtp://host:port` upgrades to
 * TLS with STARTTLS whenever the server offers it (and must, with requireTLS), `smtps://`
 * is TLS from the start (implicit TLS, usually port 465); the certificate is verified in
 * both cases. Credentials go in the URL (`smtp://user:pass@host:587`) and never into
 * logs. Nodemailer options may be given as query parameters; they override these.
 */
export function smtpTransport(url: string, from: string, opts: SmtpOptions = {}): MailTransport {
  const requireTLS = opts.requireTLS ?? hasPassword(url);
  const secure = url.startsWith('smtps:');
  // Bounded waits: a stuck SMTP server must not hold a job forever (SEND_TIMEOUT_MS in all).
  const t = nodemailer.createTransport(
    { url, secure, requireTLS: requireTLS && !secure, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000, ...(opts.tls ? { tls: opts.tls } : {}) },
    { from },
  );
  return {
    async send(m) {
      try {
        await t.sendMail({ to: m.to, subject: m.subject, text: m.text, html: m.html });
      } catch (e) {
        throw explained(e, requireTLS && !secure);
      }
    },
    close() {
      t.close();
    },
  };
}

function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/** A TLS failure said in words an operator can act on (by nodemailer's error code, never its text). */
function explained(e: unknown, requireTLS: boolean): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (requireTLS && code === 'ETLS') {
    return Object.assign(
      new Error(
        `the SMTP server did not accept STARTTLS, and requireTLS is on (nothing is sent over an unencrypted connection): enable STARTTLS on the relay, use smtps://, or set smtp.requireTLS false for a relay without a password on a trusted network (${(e as Error).message})`,
      ),
      { code },
    );
  }
  return e;
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
