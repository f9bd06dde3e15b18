/**
 * Debian's Chromium for browser tests, through playwright-core (never a downloaded browser). The
 * flags are the ones the project's CI uses; a test file skips with a message when no binary exists.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** The skip reason of a browser test file on a machine without Chromium. */
export const NO_CHROMIUM = 'no Chromium binary (/usr/bin/chromium, chromium or chromium-browser on PATH)';

export function findChromium(): string | undefined {
  const candidates = ['/usr/bin/chromium'];
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      if (found.trim()) candidates.push(found.trim());
    } catch {
      // not on PATH
    }
  }
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Closes the browser, giving up after `ms` (a hung Chromium must not hang the test run). */
export async function closeChromium(browser: Browser | undefined, ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([browser?.close().catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

/**
 * A fresh context and page with every Playwright action and navigation bounded by `timeoutMs`;
 * uncaught page errors (and, with `consoleErrors`, console errors) are pushed to `errors`.
 */
export async function openPage(
  browser: Browser,
  opts: {
    viewport: { width: number; height: number };
    timeoutMs: number;
    errors: string[];
    consoleErrors?: boolean;
  },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: opts.viewport });
  context.setDefaultTimeout(opts.timeoutMs);
  context.setDefaultNavigationTimeout(opts.timeoutMs);
  const page = await context.newPage();
  page.on('pageerror', (err) => opts.errors.push(err.message));
  if (opts.consoleErrors)
    page.on('console', (msg) => {
      if (msg.type() === 'error') opts.errors.push(`console: ${msg.text()}`);
    });
  return { context, page };
}

/** In the demo SPA at `base`: "Log in", which goes through PAR to the embedded IdP's login page on 127.0.0.1. */
export async function openIdpLogin(page: Page): Promise<void> {
  await page.locator('#login').click();
  await page.waitForURL((url) => url.hostname === '127.0.0.1' && url.pathname.startsWith('/interaction/'));
}

/**
 * Logs alice in from the demo SPA at `base` through the embedded IdP's form; consent is automatic
 * for the first-party client, so the browser ends back at `base`/ (returnTo=/).
 */
export async function signInAsAlice(page: Page, base: string): Promise<void> {
  await openIdpLogin(page);
  await page.locator('#username').fill('alice');
  await page.locator('#password').fill('alice-password');
  await page.locator('#sign-in').click();
  await page.waitForURL(`${base}/`);
}
