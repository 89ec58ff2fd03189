import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import { deliverOutbox, enqueue, GIVE_UP_HOURS } from '../src/mail/outbox.js';
import { smtpTransport, redactSmtpUrl, type MailTransport } from '../src/mail/transport.js';
import {
  alertClosedEmail,
  alertOpenedEmail,
  alertReminderEmail,
  customerWeeklyEmail,
  formatBytes,
  resellerDailyEmail,
  tierExceededEmail,
  type AlertEmailInput,
} from '../src/mail/templates.js';
import { isoWeek, localDate, nextMonth } from '../src/observatory/calendar.js';
import type { LogEntry } from '../src/log.js';
import { testServer, type TestServer } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

/** A real SMTP server in the test process (smtp-server) that can refuse the next messages. */
class Smtp {
  readonly received: { to: string[]; raw: Buffer }[] = [];
  refuse = 0;
  private server!: SMTPServer;
  port = 0;
  async start(): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (this.refuse > 0) {
            this.refuse--;
            cb(Object.assign(new Error('mailbox busy, try later'), { responseCode: 451 }));
            return;
          }
          this.received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks) });
          cb();
        });
      },
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.server.address() as AddressInfo).port;
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const mail = (key: string, to = 'cabinet@example.fr') => ({ dedupKey: key, kind: 'test', to, locale: 'fr' as const, subject: `Sujet ${key}`, text: `Texte ${key}`, html: `<p>${key}</p>` });

describe('the outbox over real SMTP', () => {
  let ts: TestServer;
  let smtp: Smtp;
  let transport: MailTransport;
  const logs: LogEntry[] = [];
  const log = (e: LogEntry) => void logs.push(e);

  before(async () => {
    ts = await testServer();
    smtp = new Smtp();
    await smtp.start();
    transport = smtpTransport(`smtp://127.0.0.1:${smtp.port}`, 'coffre <alertes@example.fr>');
  });
  after(async () => {
    transport.close();
    await smtp.close();
    await ts.close();
  });

  it('enqueues once per key, sends with both parts, marks sent', async () => {
    assert.equal(await enqueue(ts.admin.db, mail('a1'), ts.clock.now()), true);
    assert.equal(await enqueue(ts.admin.db, mail('a1'), ts.clock.now()), false, 'same key: no second email');
    const c = await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log);
    assert.deepEqual(c, { sent: 1, retrying: 0, failed: 0, waiting: 0 });
    assert.equal(smtp.received.length, 1);
    const parsed = await simpleParser(smtp.received[0]!.raw);
    assert.equal(parsed.subject, 'Sujet a1');
    assert.equal(parsed.text?.trim(), 'Texte a1');
    assert.match(String(parsed.html), /<p>a1<\/p>/);
    assert.match(parsed.from?.text ?? '', /alertes@example\.fr/);
    const row = await ts.admin.db.selectFrom('outbox').selectAll().where('dedup_key', '=', 'a1').executeTakeFirstOrThrow();
    assert.equal(row.status, 'sent');
    assert.equal(row.attempts, 1);
    assert.equal((await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log)).sent, 0, 'never sent twice');
  });

  it('without an SMTP server configured, emails wait (and a warning says so); they go once one is', async () => {
    await enqueue(ts.admin.db, mail('w1'), ts.clock.now());
    const c = await deliverOutbox(ts.admin.db, null, ts.clock.now(), log);
    assert.deepEqual(c, { sent: 0, retrying: 0, failed: 0, waiting: 1 });
    assert.ok(logs.some((l) => l.level === 'warn' && /no SMTP server configured/.test(l.msg) && l.waiting === 1));
    assert.equal((await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log)).sent, 1);
  });

  it('a temporary SMTP failure is retried after a backoff; nothing is lost', async () => {
    smtp.refuse = 2;
    const before = smtp.received.length;
    await enqueue(ts.admin.db, mail('r1'), ts.clock.now());
    assert.deepEqual(await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log), { sent: 0, retrying: 1, failed: 0, waiting: 1 });
    const row = await ts.admin.db.selectFrom('outbox').selectAll().where('dedup_key', '=', 'r1').executeTakeFirstOrThrow();
    assert.equal(row.attempts, 1);
    assert.match(row.last_error ?? '', /451|busy/);
    assert.equal(Date.parse(row.next_attempt_at) - ts.clock.now().getTime(), 60_000, 'first retry after 1 minute');
    assert.equal((await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log)).sent, 0, 'not due yet');
    ts.clock.advance(60_000);
    assert.equal((await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log)).retrying, 1, 'second failure');
    const again = await ts.admin.db.selectFrom('outbox').selectAll().where('dedup_key', '=', 'r1').executeTakeFirstOrThrow();
    assert.equal(Date.parse(again.next_attempt_at) - ts.clock.now().getTime(), 5 * 60_000, 'then after 5 minutes');
    ts.clock.advance(5 * 60_000);
    assert.equal((await deliverOutbox(ts.admin.db, transport, ts.clock.now(), log)).sent, 1);
    assert.equal(smtp.received.length, before + 1);
  });

  it(`an email that cannot be sent for ${GIVE_UP_HOURS} hours is marked failed and logged as an error`, async () => {
    const dead = smtpTransport('smtp://127.0.0.1:1', 'coffre <alertes@example.fr>');
    await enqueue(ts.admin.db, mail('d1'), ts.clock.now());
    assert.equal((await deliverOutbox(ts.admin.db, dead, ts.clock.now(), log)).retrying, 1);
    ts.clock.advance(GIVE_UP_HOURS * 3_600_000);
    const c = await deliverOutbox(ts.admin.db, dead, ts.clock.now(), log);
    assert.equal(c.failed, 1);
    assert.ok(logs.some((l) => l.level === 'error' && l.msg === 'email given up' && l.kind === 'test'));
    dead.close();
    const row = await ts.admin.db.selectFrom('outbox').selectAll().where('dedup_key', '=', 'd1').executeTakeFirstOrThrow();
    assert.equal(row.status, 'failed');
  });

  it('two deliveries at once never send an email twice', async () => {
    const before = smtp.received.length;
    for (let i = 0; i < 5; i++) await enqueue(ts.admin.db, mail(`c${i}`), ts.clock.now());
    const [a, b] = await Promise.all([deliverOutbox(ts.admin.db, transport, ts.clock.now(), log), deliverOutbox(ts.admin.db, transport, ts.clock.now(), log)]);
    assert.equal(a.sent + b.sent, 5);
    assert.equal(smtp.received.length, before + 5);
  });

  it('the SMTP password never shows in messages', () => {
    assert.equal(redactSmtpUrl('smtp://user:s3cret@mail.example.fr:587'), 'smtp://user:***@mail.example.fr:587');
  });
});

describe('email templates', () => {
  const alert: AlertEmailInput = {
    customerName: 'Cabinet <Dupont> & fils',
    machineName: 'accueil',
    kind: 'backup_missed',
    since: '2026-03-29T20:00:00.000Z',
    openedAt: '2026-03-30T05:00:00.000Z',
    errorCode: null,
    consoleUrl: 'https://console.example.fr/clients/c1',
  };

  it('alert emails in French and English, times in Europe/Paris, both parts, HTML escaped', () => {
    const fr = alertOpenedEmail(alert, 'fr');
    assert.equal(fr.subject, '[coffre] Alerte : sauvegarde manquée — Cabinet <Dupont> & fils (accueil)');
    assert.match(fr.text, /prévue le 29 mars 2026 à 22:00, n'a pas eu lieu/, 'summer time in Paris: 20:00Z is 22:00');
    assert.match(fr.text, /Voir dans la console: https:\/\/console\.example\.fr\/clients\/c1/);
    assert.match(fr.html, /Cabinet &lt;Dupont&gt; &amp; fils/);
    assert.doesNotMatch(fr.html, /<Dupont>/);
    const en = alertOpenedEmail({ ...alert, since: '2026-01-15T21:00:00.000Z' }, 'en');
    assert.match(en.text, /due on 15 January 2026 at 22:00, did not take place/, 'winter: 21:00Z is 22:00');
    assert.match(alertOpenedEmail({ ...alert, kind: 'backup_failed', errorCode: 'DISK_FULL' }, 'fr').text, /\(code DISK_FULL\)/);
    assert.match(alertOpenedEmail({ ...alert, kind: 'verify_mismatch', machineName: null }, 'en').subject, /^\[coffre\] Alert: integrity check failed — Cabinet <Dupont> & fils$/);
    assert.match(alertReminderEmail(alert, 'fr', 3).subject, /^\[coffre\] Rappel n° 3 : sauvegarde manquée/);
    assert.match(alertClosedEmail({ ...alert, closedAt: '2026-03-31T06:00:00.000Z' }, 'en').text, /closed on 31 March 2026 at 08:00: things are back to normal/);
  });

  it('reports and the tier email', () => {
    const daily = resellerDailyEmail(
      {
        resellerName: 'Alpes',
        day: '2026-11-27T07:00:00.000Z',
        customers: [
          { name: 'A', status: 'ok', lastSuccessAt: '2026-11-26T21:00:00.000Z', openAlerts: 0, protectedBytes: 1_500_000_000 },
          { name: 'B', status: 'late', lastSuccessAt: null, openAlerts: 2, protectedBytes: 0 },
        ],
        consoleUrl: null,
      },
      'fr',
    );
    assert.match(daily.text, /2 client\(s\) suivi\(s\) ; 1 demande\(nt\) votre attention\./);
    assert.match(daily.text, /Client: B · État: En retard · Dernière sauvegarde réussie: jamais · Alertes ouvertes: 2 · Volume protégé: 0\u00a0o/);
    assert.match(daily.text, /Volume protégé: 1,5\u00a0Go/);
    const weekly = customerWeeklyEmail(
      {
        customerName: 'C',
        week: '2026-W48',
        from: '2026-11-20T08:00:00.000Z',
        to: '2026-11-27T08:00:00.000Z',
        runs: { success: 5, partial: 1, failed: 1 },
        protectedBytes: 10,
        storedBytes: 5,
        machines: [{ name: 'm', status: 'ok', lastSuccessAt: null, lastRestoreTest: { snapshotId: 'x', finishedAt: '2026-11-01T11:00:00.000Z', result: 'success', sampledFiles: 10, comparedFiles: 8, mismatches: 0 } }],
        openAlerts: [alert],
        consoleUrl: null,
        sites: {
          primary: { name: 'paris', country: 'FR', provider: 'Hébergeur Un', hdsCertified: true, inEu: true },
          replica: { name: 'lille', country: 'FR', provider: 'Hébergeur Deux', hdsCertified: true, inEu: true },
          replicatedUpTo: '2026-11-27T07:00:00.000Z',
          announced: [],
        },
      },
      'en',
    );
    assert.equal(weekly.subject, '[coffre] Weekly report, week 48 — C');
    assert.match(weekly.text, /Your data are hosted by Hébergeur Un \(FR, certified health-data host\), with a copy on a second site at Hébergeur Deux \(FR, certified health-data host\), up to date \(copied up to 27 November 2026/);
    const behind = customerWeeklyEmail(
      { customerName: 'C', week: '2026-W48', from: '2026-11-20T08:00:00.000Z', to: '2026-11-27T08:00:00.000Z', runs: { success: 0, partial: 0, failed: 0 }, protectedBytes: 0, storedBytes: 0, machines: [], openAlerts: [], consoleUrl: null,
        sites: { primary: { name: 'paris', country: 'FR', provider: 'Hébergeur Un', hdsCertified: true, inEu: true }, replica: { name: 'lille', country: 'FR', provider: 'Hébergeur Deux', hdsCertified: false, inEu: true }, replicatedUpTo: '2026-11-26T08:00:00.000Z', announced: [] } },
      'fr',
    );
    assert.match(behind.text, /avec une copie sur un second site chez Hébergeur Deux \(FR\), EN RETARD \(copiée jusqu'au 26 novembre 2026/);
    assert.match(weekly.text, /Backups: 7 run\(s\) — 5 succeeded, 1 partial, 1 failed\./);
    assert.match(weekly.text, /Last proven restore: succeeded on 1 November 2026 \(8 file\(s\) compared\)/);
    assert.match(weekly.text, /1 open alert\(s\):\n\n• The scheduled backup of machine "accueil"/);
    const tier = tierExceededEmail({ customerName: 'C', tierName: 'Mini', limitBytes: 1e9, protectedBytes: 1.2e9, nextTier: null, from: '2026-12-01' }, 'en');
    assert.match(tier.text, /There is no larger plan: your provider will contact you\./);
    assert.equal(formatBytes(999, 'en'), '999\u00a0B');
    assert.equal(formatBytes(1_000_000, 'fr'), '1\u00a0Mo');
  });

  it('calendar helpers: local day in Paris, ISO weeks at year ends, next month', () => {
    assert.equal(localDate(new Date('2026-03-28T23:30:00Z'), 'Europe/Paris'), '2026-03-29');
    assert.equal(localDate(new Date('2026-10-25T22:59:00Z'), 'Europe/Paris'), '2026-10-25');
    assert.equal(isoWeek('2026-12-31'), '2026-W53');
    assert.equal(isoWeek('2027-01-03'), '2026-W53');
    assert.equal(isoWeek('2027-01-04'), '2027-W01');
    assert.equal(isoWeek('2024-12-30'), '2025-W01');
    assert.equal(isoWeek('2026-11-26'), '2026-W48');
    assert.equal(nextMonth('2026-12-15'), '2027-01');
    assert.equal(nextMonth('2026-01'), '2026-02');
  });
});
