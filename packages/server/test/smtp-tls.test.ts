import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { smtpTransport } from '../src/mail/transport.js';

/** A certificate for 127.0.0.1, trusted by the tests through `tls.ca`. */
async function localhostCert(): Promise<{ cert: string; key: string }> {
  const { generate } = await import('selfsigned');
  const notBeforeDate = new Date(Date.now() - 60_000);
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 86_400_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A real SMTP server (smtp-server) on an ephemeral port, recording what it receives and any AUTH attempt. */
class Relay {
  readonly received: { secure: boolean; to: string[] }[] = [];
  readonly logins: string[] = [];
  port = 0;
  private server!: SMTPServer;
  constructor(private readonly options: SMTPServerOptions) {}
  async start(): Promise<this> {
    this.server = new SMTPServer({
      logger: false,
      authOptional: true,
      ...this.options,
      onAuth: (auth, _session, cb) => {
        this.logins.push(auth.username ?? '');
        cb(null, { user: auth.username });
      },
      onData: (stream, session, cb) => {
        stream.resume();
        stream.on('end', () => {
          this.received.push({ secure: session.secure, to: session.envelope.rcptTo.map((r) => r.address) });
          cb();
        });
      },
    });
    // A client that hangs up during the handshake (an unverifiable certificate) is no error of the relay's.
    this.server.on('error', () => undefined);
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const message = { to: 'cabinet@example.fr', subject: 'Essai', text: 'Texte', html: '<p>Texte</p>' };

describe('SMTP transport security: requireTLS and smtps://', () => {
  let cert: { cert: string; key: string };
  let plain: Relay; // no STARTTLS at all
  let starttls: Relay; // offers STARTTLS
  let implicit: Relay; // TLS from the first byte (smtps)
  before(async () => {
    cert = await localhostCert();
    plain = await new Relay({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true }).start();
    starttls = await new Relay({ key: cert.key, cert: cert.cert }).start();
    implicit = await new Relay({ secure: true, key: cert.key, cert: cert.cert }).start();
  });
  after(async () => {
    await Promise.all([plain.close(), starttls.close(), implicit.close()]);
  });

  it('with requireTLS, a server without STARTTLS gets nothing, and the error says why', async () => {
    const t = smtpTransport(`smtp://127.0.0.1:${plain.port}`, 'coffre <alertes@example.fr>', { requireTLS: true });
    try {
      await assert.rejects(t.send(message), (e: Error) => {
        assert.match(e.message, /STARTTLS/);
        assert.match(e.message, /requireTLS/);
        return true;
      });
      assert.equal(plain.received.length, 0);
    } finally {
      t.close();
    }
  });

  it('requireTLS is on by default when the URL carries a password: the password is never sent in clear', async () => {
    const t = smtpTransport(`smtp://coffre:s3cret@127.0.0.1:${plain.port}`, 'coffre <alertes@example.fr>');
    try {
      await assert.rejects(t.send(message), /STARTTLS/);
      assert.deepEqual(plain.logins, [], 'no AUTH over the plaintext connection');
      assert.equal(plain.received.length, 0);
    } finally {
      t.close();
    }
  });

  it('with requireTLS, a server offering STARTTLS (certificate verified) receives the message encrypted', async () => {
    const t = smtpTransport(`smtp://coffre:s3cret@127.0.0.1:${starttls.port}`, 'coffre <alertes@example.fr>', { tls: { ca: cert.cert } });
    try {
      await t.send(message);
      assert.deepEqual(starttls.received, [{ secure: true, to: ['cabinet@example.fr'] }]);
      assert.deepEqual(starttls.logins, ['coffre']);
    } finally {
      t.close();
    }
  });

  it('smtps:// speaks TLS from the start (implicit TLS) and delivers', async () => {
    const t = smtpTransport(`smtps://coffre:s3cret@127.0.0.1:${implicit.port}`, 'coffre <alertes@example.fr>', { tls: { ca: cert.cert } });
    try {
      await t.send(message);
      assert.deepEqual(implicit.received, [{ secure: true, to: ['cabinet@example.fr'] }]);
    } finally {
      t.close();
    }
  });

  it('smtps:// refuses a certificate it cannot verify', async () => {
    const t = smtpTransport(`smtps://127.0.0.1:${implicit.port}`, 'coffre <alertes@example.fr>');
    try {
      await assert.rejects(t.send(message), /certificate/i);
    } finally {
      t.close();
    }
  });
});
