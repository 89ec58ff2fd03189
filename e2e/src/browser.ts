import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './kit.js';

/** Screenshots of the console land here (CI keeps /test-artifacts/). */
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');

/** Debian's Chromium, headless, as ../shared/services/README.md describes. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

export interface TestPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console errors and uncaught exceptions seen so far (the console must have none). */
  readonly errors: string[];
}

/** A fresh browser context (its own cookies) on the console, French, Paris time. */
export async function openPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<TestPage> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, locale: 'fr-FR', timezoneId: 'Europe/Paris' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every 4xx API answer as "Failed to load resource"; the console expects
    // some (a refusal asking for re-authentication, a wrong code) and shows them itself.
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()) && m.location().url.includes('/api/v1/')) return;
    errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  return { context, page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * The console's URL for a test server: "localhost" rather than 127.0.0.1, because WebAuthn
 * and some cookie rules want a host name (the self-signed certificate covers localhost).
 */
export function consoleUrl(serverUrl: string, path = '/'): string {
  const u = new URL(serverUrl);
  return `https://localhost:${u.port}${path}`;
}
