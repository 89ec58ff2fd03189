import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SmtpSink, TestAgent, TestServer, expectCode, tempDir, type ReceivedEmail } from '../src/kit.js';
import { flipObjectByte, packObjects, serverObjects } from '../src/objects.js';

/**
 * Every kind of email with real processes (issue 5, points 2, 3 and 8): a real SMTP server
 * process offering STARTTLS receives what `coffre-server job run …` sends, and the test
 * parses each message (mailparser): alert, reminder and back-to-normal emails, the daily
 * reseller summary, the weekly customer report and the tier-crossing email, each in the
 * recipient's language, with a plain-text and an HTML part. Then the monthly usage CSV.
 */
describe('emails through a real SMTP server', { timeout: 180_000 }, () => {
  let sink: SmtpSink;
  let server: TestServer;
  let agent: TestAgent;
  const data = tempDir('mail-data');
  const dir = tempDir('mail-server');
  let seen = 0;

  /** The emails received since the last call. */
  async function fresh(expected: number): Promise<ReceivedEmail[]> {
    for (let i = 0; i < 50; i++) {
      const all = await sink.messages();
      if (all.length >= seen + expected) {
        const out = all.slice(seen);
        seen = all.length;
        return out;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const all = await sink.messages();
    throw new Error(`expected ${expected} new emails, got ${all.length - seen}: ${all.slice(seen).map((m) => m.subject).join(' | ')}`);
  }
  const to = (list: readonly ReceivedEmail[], address: string): ReceivedEmail => {
    const m = list.find((x) => x.to.includes(address));
    assert.ok(m, `an email to ${address} among ${list.map((x) => `${x.to.join(',')}: ${x.subject}`).join(' | ')}`);
    return m;
  };
  const job = async (name: string): Promise<Record<string, number>> => {
    const r = await server.admin(['job', 'run', name, '--json']);
    expectCode(r, 0, `job run ${name}`);
    return (JSON.parse(r.stdout) as { counts: Record<string, number> }).counts;
  };
  const failedRun = () => agent.reportFailedRun('PRE_COMMAND_FAILED');

  before(async () => {
    // Reminders every ~4 seconds instead of a day; the console's address for the links.
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ v: 1, alertReminderHours: 0.003, publicUrl: 'https://sauvegarde.example.fr', smtp: { url: null, from: 'Sauvegardes <sauvegardes@infogerance.example>' } }));
    // Initialise the data directory (and its TLS pair, which the SMTP sink reuses for STARTTLS).
    expectCode(await new TestServerCli(dir).run(['tier', 'list']), 0, 'init');
    sink = await SmtpSink.start({ cert: join(dir, 'tls/cert.pem'), key: join(dir, 'tls/key.pem') });
    process.env.COFFRE_SMTP_URL = sink.url; // inherited by the server and every CLI run
    server = await TestServer.start(dir);
    expectCode(await server.admin(['org', 'create', 'Infogérance Alpes', '--type', 'reseller']), 0, 'reseller');
    expectCode(await server.admin(['org', 'update', 'Infogérance Alpes', '--alert-email', 'support@alpes.example', '--language', 'en']), 0, 'reseller contacts');
    expectCode(await server.admin(['org', 'create', 'Cabinet Durand', '--type', 'customer', '--parent', 'Infogérance Alpes']), 0, 'customer');
    expectCode(await server.admin(['tier', 'create', 'Mini', '--limit', '1MB', '--price', '9.90']), 0, 'tier Mini');
    expectCode(await server.admin(['tier', 'create', 'Plus', '--limit', '1GB', '--price', '29.90']), 0, 'tier Plus');
    expectCode(await server.admin(['customer', 'set', 'Cabinet Durand', '--alert-email', 'secretariat@durand.example', '--tier', 'Mini']), 0, 'customer set');
    agent = new TestAgent(server);
    expectCode(await agent.enroll('Cabinet Durand', 'poste'), 0, 'enroll');
    mkdirSync(join(data, 'Dossiers'), { recursive: true });
    writeFileSync(join(data, 'Dossiers', 'imagerie.bin'), randomBytes(2_500_000));
    expectCode(await agent.run(['job', 'add', 'soir', '--path', data, '--schedule', '0 22 * * *', '--timezone', 'Europe/Paris']), 0, 'job add');
    expectCode(await agent.run(['backup', data]), 0, 'first backup');
  });
  after(async () => {
    delete process.env.COFFRE_SMTP_URL;
    await server?.stop();
    await sink?.stop();
    server?.cleanup();
    agent?.cleanup();
  });

  test('a failed backup: alert emails to the practice (French) and its reseller (English), over STARTTLS', async () => {
    await failedRun();
    const counts = await job('observatory');
    assert.equal(counts.opened, 1);
    assert.equal(counts.sent, 2);
    const mails = await fresh(2);
    const fr = to(mails, 'secretariat@durand.example');
    assert.equal(fr.subject, '[coffre] Alerte : sauvegarde en échec — Cabinet Durand (poste)');
    assert.match(fr.text, /La dernière sauvegarde de la machine « poste » du client « Cabinet Durand » a échoué le .+ \(code PRE_COMMAND_FAILED\)\./);
    assert.match(fr.text, /https:\/\/sauvegarde\.example\.fr\/clients\//);
    assert.match(fr.html, /<html lang="fr">/);
    assert.match(fr.html, /a échoué le/);
    const en = to(mails, 'support@alpes.example');
    assert.equal(en.subject, '[coffre] Alert: failed backup — Cabinet Durand (poste)');
    assert.match(en.text, /The latest backup of machine "poste" of customer "Cabinet Durand" failed on/);
    for (const m of mails) {
      assert.equal(m.secure, true, 'the session was upgraded to TLS (STARTTLS offered)');
      assert.match(m.from, /sauvegardes@infogerance\.example/);
      assert.ok(m.text.length > 0 && m.html.length > 0, 'a plain-text and an HTML part');
    }
    assert.equal((await job('observatory')).sent, 0, 'no second alert for the same failure');
  });

  test('while it lasts, a reminder follows', async () => {
    // alertReminderHours = 0.003 (10.8 s): long enough for the previous test's second run (each CLI run opens the backends) to come before it.
    await new Promise((r) => setTimeout(r, 11_000));
    const counts = await job('observatory');
    assert.equal(counts.reminders, 1);
    const mails = await fresh(2);
    assert.equal(to(mails, 'secretariat@durand.example').subject, '[coffre] Rappel n° 1 : sauvegarde en échec — Cabinet Durand (poste)');
    assert.equal(to(mails, 'support@alpes.example').subject, '[coffre] Reminder #1: failed backup — Cabinet Durand (poste)');
    assert.match(to(mails, 'secretariat@durand.example').text, /Cette alerte est ouverte depuis le/);
  });

  test('a successful backup: back-to-normal emails', async () => {
    writeFileSync(join(data, 'Dossiers', 'compte-rendu.txt'), 'ok\n');
    expectCode(await agent.run(['backup', data]), 0, 'backup');
    const counts = await job('observatory');
    assert.equal(counts.closed, 1);
    const mails = await fresh(2);
    assert.equal(to(mails, 'secretariat@durand.example').subject, '[coffre] Retour à la normale — Cabinet Durand (poste)');
    assert.match(to(mails, 'secretariat@durand.example').text, /est close depuis le .+ tout est rentré dans l'ordre/);
    assert.equal(to(mails, 'support@alpes.example').subject, '[coffre] Back to normal — Cabinet Durand (poste)');
  });

  test('reports: the daily summary to the reseller and the weekly report to the practice, once each', async () => {
    expectCode(await agent.run(['restore-test', '--sample', '100']), 0, 'a restore test proves the latest backup');
    const counts = await job('reports');
    assert.equal(counts.emails, 2);
    const mails = await fresh(2);
    const daily = to(mails, 'support@alpes.example');
    assert.match(daily.subject, /^\[coffre\] Daily summary of \d{1,2} \w+ \d{4} — Infogérance Alpes$/);
    assert.match(daily.text, /1 customer\(s\); all are up to date\./);
    assert.match(daily.text, /Customer: Cabinet Durand · Status: OK · Last successful backup: .+ · Open alerts: 0 · Protected volume: 2\.5\u00a0MB/);
    const weekly = to(mails, 'secretariat@durand.example');
    assert.match(weekly.subject, /^\[coffre\] Rapport hebdomadaire, semaine \d{2} — Cabinet Durand$/);
    assert.match(weekly.text, /Sauvegardes : 3 exécution\(s\) — 2 réussie\(s\), 0 partielle\(s\), 1 en échec\./);
    assert.match(weekly.text, /Machine: poste · État: OK · Dernière sauvegarde réussie: .+ · Dernière restauration prouvée: réussie le \d{1,2} \S+ \d{4} \(2 fichier\(s\) comparé\(s\)\)/);
    assert.match(weekly.text, /Aucune alerte ouverte\./);
    assert.match(weekly.html, /<th[^>]*>Dernière restauration prouvée<\/th>/);
    assert.equal((await job('reports')).emails, 0, 'once per day and per week');
  });

  test('metering: over the Mini tier, both are told and Plus applies from next month; the usage CSV shows it', async () => {
    const counts = await job('metering');
    assert.equal(counts.crossings, 1);
    const mails = await fresh(2);
    const fr = to(mails, 'secretariat@durand.example');
    assert.equal(fr.subject, '[coffre] Dépassement de votre offre Mini — Cabinet Durand');
    assert.match(fr.text, /atteint 2,5\u00a0Mo, au-delà de la limite de 1\u00a0Mo de l'offre « Mini »/);
    assert.match(fr.text, /l'offre « Plus » \(jusqu'à 1\u00a0Go, 29,90\s€ HT par mois\) s'applique à partir de \S+ \d{4}, sans nouvelle signature/);
    assert.match(fr.text, /aucune sauvegarde n’est refusée/);
    assert.match(to(mails, 'support@alpes.example').subject, /^\[coffre\] Your Mini plan is exceeded — Cabinet Durand$/);
    assert.equal((await job('metering')).crossings, 0, 'told once a month');
    expectCode(await agent.run(['backup', data]), 0, 'backups go on over the tier');

    const month = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit' }).format(new Date());
    const csv = await server.admin(['usage', 'export', '--month', month, '--reseller', 'Infogérance Alpes']);
    expectCode(csv, 0, 'usage export');
    const lines = csv.stdout.trim().split('\r\n');
    assert.equal(lines[0], 'reseller,customer,tier,monthly_price_eur,limit_bytes,max_protected_bytes,avg_protected_bytes,max_stored_bytes,days_metered,days_over_limit');
    const cells = lines[1]!.split(',');
    assert.deepEqual(cells.slice(0, 5), ['Infogérance Alpes', 'Cabinet Durand', 'Mini', '9.90', '1000000']);
    assert.ok(Number(cells[5]) > 2_500_000, cells[5]);
    assert.equal(cells[8], '1');
    assert.equal(cells[9], '1');
  });

  test('a stored pack that no longer matches its checksums: the reseller and the operator are told', async () => {
    expectCode(await server.admin(['org', 'update', 'operator', '--alert-email', 'exploitation@coffre.example']), 0, 'operator address');
    // Flip one byte in the middle of one stored pack, as a failing disk would.
    const objects = serverObjects(dir);
    const [pack] = await packObjects(objects);
    assert.ok(pack);
    await flipObjectByte(objects, pack.key, Math.floor(pack.size / 2));
    const packId = pack.key.slice(pack.key.lastIndexOf('/') + 1);
    const r = await server.admin(['job', 'run', 'verify', '--json']);
    expectCode(r, 1, 'verify finds the damage (exit 1)');
    const res = JSON.parse(r.stdout) as { counts: Record<string, number>; items: { outcome: string; detail: string }[] };
    assert.equal(res.counts.mismatches, 1);
    assert.match(res.items.find((i) => i.outcome === 'failed')!.detail, new RegExp(`pack ${packId}`));
    const mails = await fresh(2);
    assert.equal(to(mails, 'support@alpes.example').subject, '[coffre] Alert: integrity check failed — Cabinet Durand');
    const op = to(mails, 'exploitation@coffre.example');
    assert.equal(op.subject, "[coffre] Alerte : contrôle d'intégrité en échec — Cabinet Durand");
    assert.match(op.text, /ne correspond plus à son empreinte/);
    assert.ok(!mails.some((m) => m.to.includes('secretariat@durand.example')), 'the practice is not emailed about the storage side');
  });
});

/** `coffre-server` on a data directory before any server runs there. */
class TestServerCli {
  constructor(private readonly dataDir: string) {}
  async run(args: readonly string[]) {
    const { run, COFFRE_SERVER } = await import('../src/kit.js');
    return run(COFFRE_SERVER, [...args, '--data-dir', this.dataDir]);
  }
}
