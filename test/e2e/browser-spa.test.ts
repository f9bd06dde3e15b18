/**
 * The served SPA in Debian's Chromium: a navigation to a client-side route gets index.html through
 * the fallback and the SPA's script reads the route; the CSP is enforced (the page's inline script is
 * blocked, its same-origin script and stylesheet load); the hashed asset carries its year-long
 * immutable caching, and a second navigation takes it from the browser's cache (the BFF's access log
 * sees it once) while index.html, never stored, is fetched again.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { LogSink } from '../helpers/bff-harness.js';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import { type Stack, startStack } from '../helpers/stack.js';

const CHROMIUM = findChromium();
const ACTION_TIMEOUT_MS = 15_000;
const SCRIPT = '/assets/app.3f2a9c1d.js';
const STYLE = '/assets/style.0badc0de1.css';

const INDEX = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>served SPA</title>
<link rel="stylesheet" href="${STYLE}">
<script src="${SCRIPT}" defer></script>
<script>document.documentElement.dataset.inline = 'ran';</script>
</head><body data-state="loading"><p id="route"></p></body></html>
`;
const APP = `document.getElementById('route').textContent = location.pathname;
document.body.dataset.state = 'ready';
`;

describe(
  'served SPA in Chromium',
  {
    timeout: 120_000,
    skip: CHROMIUM ? false : 'no Chromium binary (/usr/bin/chromium, chromium or chromium-browser on PATH)',
  },
  () => {
    let root: string;
    let stack: Stack;
    let browser: Browser;
    let page: Page;
    const logs = new LogSink();
    const consoleLines: string[] = [];
    const assetHeaders = new Map<string, Record<string, string>>();
    /** Requests the BFF answered for `path`, from its access log. */
    const served = (path: string) =>
      logs.records().filter((r) => r.access === true && r.path === path).length;

    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'spa-browser-'));
      mkdirSync(join(root, 'assets'));
      writeFileSync(join(root, 'index.html'), INDEX);
      writeFileSync(join(root, SCRIPT.slice(1)), APP);
      writeFileSync(join(root, STYLE.slice(1)), 'body { color: rgb(1, 2, 3); }\n');
      stack = await startStack({
        clientId: 'spa-browser',
        env: { MS_BFF_STATIC_DIR: root, MS_BFF_ACCESS_LOG: 'true' },
        logs,
      });
      browser = await launchChromium(CHROMIUM as string);
      const context = await browser.newContext();
      context.setDefaultTimeout(ACTION_TIMEOUT_MS);
      context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
      page = await context.newPage();
      page.on('console', (msg) => consoleLines.push(msg.text()));
      // Before any script of the page (init scripts are not subject to its CSP): record violations.
      await page.addInitScript(() => {
        const seen: string[] = [];
        (window as unknown as { violations: string[] }).violations = seen;
        document.addEventListener('securitypolicyviolation', (e) =>
          seen.push(`${e.effectiveDirective} ${e.blockedURI}`),
        );
      });
      page.on('response', async (response) => {
        const path = new URL(response.url()).pathname;
        if (path.startsWith('/assets/')) assetHeaders.set(path, await response.allHeaders());
      });
    });
    after(async () => {
      await browser?.close().catch(() => undefined);
      await stack?.close();
      rmSync(root, { recursive: true, force: true });
    });

    it('loads a client-side route through the index.html fallback', async () => {
      const response = await page.goto(`${stack.bff.url}/orders/42`);
      assert.equal(response?.status(), 200);
      assert.equal(response?.headers()['cache-control'], 'no-store');
      await page.locator('body[data-state="ready"]').waitFor();
      assert.equal(await page.locator('#route').textContent(), '/orders/42', 'the SPA read its route');
      const color = await page.evaluate(() => getComputedStyle(document.body).color);
      assert.equal(color, 'rgb(1, 2, 3)', 'the same-origin stylesheet applied');
    });

    it('enforces the CSP: the inline script is blocked', async () => {
      assert.equal(await page.evaluate(() => document.documentElement.dataset.inline), undefined);
      const violations = await page.evaluate(
        () => (window as unknown as { violations: string[] }).violations,
      );
      assert.deepEqual(violations, ['script-src-elem inline'], 'exactly the inline script was blocked');
      assert.ok(
        consoleLines.some((line) => /inline script.*Content Security Policy.*blocked/i.test(line)),
        `Chromium reported the blocked inline script (console: ${consoleLines.join(' | ')})`,
      );
    });

    it('caches the hashed assets as immutable: the next navigation does not fetch them again', async () => {
      assert.equal(assetHeaders.get(SCRIPT)?.['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(assetHeaders.get(STYLE)?.['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(served(SCRIPT), 1);
      assert.equal(served('/orders/42'), 1);

      await page.goto(`${stack.bff.url}/settings`);
      await page.locator('body[data-state="ready"]').waitFor();
      assert.equal(await page.locator('#route').textContent(), '/settings');
      assert.equal(served('/settings'), 1, 'index.html (no-store) came from the BFF');
      assert.equal(served(SCRIPT), 1, 'the hashed script came from the browser cache');
      assert.equal(served(STYLE), 1, 'the hashed stylesheet came from the browser cache');
    });
  },
);
