import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { consoleUrl, launchChromium, openPage, screenshot, type TestPage } from '../src/browser.js';
import { TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';
import { totpAt } from '../src/people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

/**
 * The console in real Chromium against a real server and a real agent (issue 4, point 8):
 * the initial administrator's first sign-in (password change, TOTP enrolment with the QR
 * code's secret, recovery codes), a machine enrolled with a token made in the console, a
 * real backup appearing, a revocation (with re-authentication) refusing the agent, each
 * action found in the audit viewer, the language switch, and a phone-width dashboard.
 * Accessible names come from docs/CONSOLE.md.
 */
describe('web console in Chromium', { timeout: 240_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let tp: TestPage;
  let page: Page;
  let agent: TestAgent;
  let secret = '';
  let lastStep = 0;
  const data = tempDir('console-data');

  /** The next TOTP code the server will accept (a later time step than any used). */
  async function nextCode(): Promise<string> {
    for (;;) {
      const now = Math.floor(Date.now() / 30_000);
      const step = Math.max(now - 1, lastStep + 1);
      if (step <= now + 1) {
        lastStep = step;
        return totpAt(secret, step);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  before(async () => {
    const dir = tempDir('console-server');
    // Re-authentication after 6 seconds, so the test sees the dialog without waiting 5 minutes.
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ v: 1, reauthMinutes: 0.1 }));
    server = await TestServer.start(dir);
    expectCode(await server.admin(['org', 'create', 'Infogérance Rhône', '--type', 'reseller']), 0, 'reseller');
    expectCode(await server.admin(['org', 'create', 'Cabinet Dupont', '--type', 'customer', '--parent', 'Infogérance Rhône']), 0, 'customer');
    expectCode(await server.admin(['org', 'create', 'Laboratoire Martin', '--type', 'customer', '--parent', 'Infogérance Rhône']), 0, 'customer 2');
    expectCode(await server.admin(['tier', 'create', 'Essentiel 500 Go', '--limit', '500GB', '--price', '49']), 0, 'tier');
    expectCode(await server.admin(['customer', 'set', 'Cabinet Dupont', '--tier', 'Essentiel 500 Go', '--alert-email', 'alertes@dupont.fr']), 0, 'customer set');
    mkdirSync(join(data, 'Patients'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(data, 'Patients', `dossier-${i}.txt`), `Compte rendu ${i}\n`.repeat(2000));
    browser = await launchChromium();
    tp = await openPage(browser);
    page = tp.page;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
    agent?.cleanup();
  });

  test('first sign-in of the initial administrator: password change, TOTP enrolment, recovery codes', async () => {
    const [email, temporary] = readFileSync(join(server.dataDir, 'secrets', 'initial-admin-password'), 'utf8').trim().split('\n') as [string, string];
    await page.goto(consoleUrl(server.url));
    await page.getByLabel('Adresse e-mail').fill(email);
    await page.getByLabel('Mot de passe', { exact: true }).fill(temporary);
    await screenshot(page, '01-sign-in');
    await page.getByRole('button', { name: 'Se connecter' }).click();

    await page.getByLabel('Mot de passe actuel').fill(temporary);
    await page.getByLabel('Nouveau mot de passe', { exact: true }).fill('court');
    await page.getByLabel('Confirmer le nouveau mot de passe').fill('court');
    await page.getByRole('button', { name: 'Changer le mot de passe' }).click();
    await page.getByRole('alert').first().waitFor();
    assert.match(await page.getByRole('alert').first().innerText(), /12/, 'the policy is explained (at least 12 characters)');
    const good = 'Violoncelle-Ambre-Rivière-2026';
    await page.getByLabel('Nouveau mot de passe', { exact: true }).fill(good);
    await page.getByLabel('Confirmer le nouveau mot de passe').fill(good);
    await page.getByRole('button', { name: 'Changer le mot de passe' }).click();

    await page.getByRole('heading', { name: "Application d'authentification" }).waitFor();
    assert.ok(await page.getByRole('img', { name: 'QR code à scanner' }).isVisible());
    secret = (await page.getByTestId('totp-secret').innerText()).replace(/\s+/g, '');
    assert.match(secret, /^[A-Z2-7]{32}$/);
    await screenshot(page, '02-totp-enrolment');
    lastStep = Math.floor(Date.now() / 30_000) - 1;
    await page.getByLabel('Code de vérification').fill(await nextCode());
    await page.getByRole('button', { name: 'Activer' }).click();
    await page.getByRole('heading', { name: 'Codes de secours' }).waitFor();
    assert.equal(await page.getByTestId('recovery-codes').locator('li').count(), 10);
    await page.getByRole('button', { name: "J'ai noté mes codes" }).click();
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    assert.equal(existsSync(join(server.dataDir, 'secrets', 'initial-admin-password')), false, 'the temporary password file is gone once changed');
  });

  test('a machine enrolled with a token made in the console; a real backup appears', async () => {
    await page.getByRole('link', { name: 'Cabinet Dupont' }).click();
    await page.getByRole('heading', { level: 1, name: 'Cabinet Dupont' }).waitFor();
    await page.getByRole('button', { name: "Créer un jeton d'enrôlement" }).click();
    const command = (await page.getByTestId('enroll-command').innerText()).trim();
    assert.match(command, /^coffre enroll --server https:\/\/\S+ --token cfe_\S+ --fingerprint [0-9A-F:]{95}$/);
    agent = new TestAgent(server);
    expectCode(await agent.run([...command.split(/\s+/).slice(1), '--machine', 'accueil']), 0, 'enroll with the command from the console');
    // Before any job: the machine owes nothing, the console says so.
    await page.reload();
    await page.getByRole('row', { name: /accueil/ }).filter({ hasText: 'Aucune sauvegarde planifiée' }).first().waitFor();
    expectCode(await agent.run(['job', 'add', 'quotidien', '--path', data, '--schedule', '0 22 * * *', '--timezone', 'Europe/Paris']), 0, 'job add');
    expectCode(await agent.run(['backup', data]), 0, 'backup');
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Machines' }).waitFor();
    const row = page.getByRole('row', { name: /accueil/ });
    await row.first().waitFor();
    assert.match(await row.first().innerText(), /Aucun test de restauration/);
    expectCode(await agent.run(['restore-test', '--sample', '100']), 0, 'restore test');
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Machines' }).waitFor();
    const text = await row.first().innerText();
    assert.match(text, /OK/);
    assert.match(text, /Restauration prouvée le \d{1,2} \S+ \d{4} \(20 fichiers comparés\)/);
    assert.match(text, /Planification quotidien : « 0 22 \* \* \* » \(Europe\/Paris\)/);
    await page.getByRole('heading', { level: 2, name: 'Sauvegardes' }).waitFor();
    // Where the data live: the installation's own site until the operator assigns others.
    const sites = page.getByRole('region', { name: 'Lieux d’hébergement' });
    assert.match(await sites.innerText(), /Site principal\s+primary — hébergeur non précisé, FR \(non certifié HDS\)/);
    await screenshot(page, '04-customer');
  });

  test('the dashboard shows the customer backed up, the other never backed up', async () => {
    await page.getByRole('link', { name: 'Tableau de bord' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    const dupont = await page.getByRole('row', { name: /Cabinet Dupont/ }).innerText();
    assert.match(dupont, /OK/);
    assert.match(dupont, /Essentiel 500 Go/);
    assert.match(dupont, /% de 500 Go protégés/);
    assert.match(await page.getByRole('row', { name: /Laboratoire Martin/ }).innerText(), /Jamais sauvegardé/);
    await page.getByLabel('Rechercher').fill('Martin');
    await page.getByRole('row', { name: /Cabinet Dupont/ }).waitFor({ state: 'detached' });
    await page.getByLabel('Rechercher').fill('');
    await screenshot(page, '03-dashboard');
  });

  test('a failed run becomes an open alert on the dashboard and the customer page', async () => {
    await agent.reportFailedRun('PRE_COMMAND_FAILED', 120_000);
    expectCode(await server.admin(['job', 'run', 'observatory']), 0, 'observatory');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    const dupont = await page.getByRole('row', { name: /Cabinet Dupont/ }).innerText();
    assert.match(dupont, /Échec/);
    await page.getByRole('row', { name: /Cabinet Dupont/ }).getByRole('link', { name: '1 alerte ouverte' }).click();
    await page.getByRole('heading', { level: 1, name: 'Cabinet Dupont' }).waitFor();
    const alerts = page.getByTestId('alerts');
    await alerts.getByRole('row', { name: /Sauvegarde en échec/ }).waitFor();
    assert.match(await alerts.innerText(), /PRE_COMMAND_FAILED/);
    assert.match(await alerts.innerText(), /accueil/);
    await screenshot(page, '04b-customer-alert');
    await page.getByRole('link', { name: 'Tableau de bord' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
  });

  test('revoking the credential needs a fresh second factor; the agent is then refused', async () => {
    await page.getByRole('link', { name: 'Cabinet Dupont' }).click();
    await page.getByRole('heading', { level: 1, name: 'Cabinet Dupont' }).waitFor();
    await new Promise((r) => setTimeout(r, 7000)); // past reauthMinutes (6 s)
    // The machines table's row (the alerts table names the machine too).
    const row = page.getByRole('row', { name: /accueil/ }).filter({ has: page.getByRole('button', { name: 'Révoquer' }) }).first();
    await row.getByRole('button', { name: 'Révoquer' }).click();
    // A confirmation step first (destructive action), then the re-authentication dialog.
    const confirmFirst = page.getByRole('dialog').getByRole('button', { name: /Révoquer|Confirmer/ });
    if (await confirmFirst.count()) await confirmFirst.first().click();
    const dialog = page.getByRole('dialog', { name: 'Confirmez votre identité' });
    await dialog.waitFor();
    await dialog.getByLabel('Code de vérification').fill(await nextCode());
    await dialog.getByRole('button', { name: 'Confirmer' }).click();
    await page.getByRole('row', { name: /accueil/ }).filter({ hasText: 'Révoquée' }).first().waitFor();
    const refused = await agent.run(['backup', data]);
    assert.equal(refused.code, 10, refused.stderr);
  });

  test('people and access: creating a person asks for a fresh second factor, then shows the temporary password; the access review', async () => {
    await page.getByRole('link', { name: 'Personnes et accès' }).click();
    await page.getByRole('heading', { level: 1, name: 'Personnes et accès' }).waitFor();
    await page.getByLabel('E-mail', { exact: true }).fill('secretariat@dupont.fr');
    await page.getByLabel('Nom complet').fill('Claire Martin');
    await page.getByLabel('Rôle', { exact: true }).selectOption('auditor');
    await new Promise((r) => setTimeout(r, 7000)); // past reauthMinutes (6 s) since the proof of the revocation
    await page.getByRole('button', { name: 'Créer la personne' }).click();
    // The server answers 403 REAUTH_REQUIRED; the console asks for a code and sends the creation again.
    const dialog = page.getByRole('dialog', { name: 'Confirmez votre identité' });
    await dialog.waitFor();
    await dialog.getByLabel('Code de vérification').fill(await nextCode());
    await dialog.getByRole('button', { name: 'Confirmer' }).click();
    const temporary = await page.getByTestId('temporary-password').innerText();
    assert.match(temporary.trim(), /^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
    await page.getByRole('row', { name: /Claire Martin/ }).first().waitFor();
    await page.getByRole('heading', { name: 'Revue des accès' }).waitFor();
    await screenshot(page, '05-people');
  });

  test('the audit viewer shows those actions and a verified chain', async () => {
    await page.getByRole('link', { name: "Journal d'audit" }).click();
    await page.getByRole('heading', { level: 1, name: "Journal d'audit" }).waitFor();
    await page.getByTestId('chain-status').filter({ hasText: 'Chaîne vérifiée' }).waitFor();
    const text = await page.locator('main').innerText();
    for (const a of [/jeton d'enrôlement/i, /révoqu/i, /connexion/i, /second facteur|double authentification|authentification/i, /Personne créée/]) assert.match(text, a);
    await screenshot(page, '06-audit');
  });

  test('switching to English changes the whole interface', async () => {
    await page.getByLabel('Langue').selectOption('en');
    await page.getByRole('heading', { level: 1, name: 'Audit trail' }).waitFor();
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    assert.match(await page.getByRole('row', { name: /Laboratoire Martin/ }).innerText(), /Never backed up/);
    await screenshot(page, '07-dashboard-en');
    await page.getByLabel('Language').selectOption('fr');
  });

  test('at phone width the dashboard fits the screen', async () => {
    const phone = await openPage(browser, { width: 375, height: 800 });
    await phone.context.addCookies(await tp.context.cookies());
    await phone.page.goto(consoleUrl(server.url));
    await phone.page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    // Evaluated in the page (a string: this file is compiled without the DOM library).
    const overflow = await phone.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 1, `no horizontal scrolling of the page (overflow ${overflow}px)`);
    await screenshot(phone.page, '08-dashboard-phone');
    assert.deepEqual(phone.errors, []);
    await phone.context.close();
  });

  test('no console errors on any page', () => {
    assert.deepEqual(tp.errors, []);
  });
});
