/**
 * JARM response modes that only a real browser completes, against Glewlwyd 2.7 and in Chromium:
 * form_post.jwt (Glewlwyd's auto-submitting form, a cross-site POST to the callback) and
 * fragment.jwt (the BFF's relay page reads the fragment and posts it). The IdP runs on 127.0.0.1
 * and the BFF on localhost: two sites, as in production.
 */
import { strict as assert } from 'node:assert';
import { accessSync, constants } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import {
  continueUrl,
  GLEWLWYD_SCOPES,
  GLEWLWYD_USER,
  type Glewlwyd,
  glewlwydClient,
  glewlwydUnavailable,
  startGlewlwyd,
} from '../helpers/glewlwyd.js';

const CHROMIUM = '/usr/bin/chromium';
function chromiumMissing(): string | undefined {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return undefined;
  } catch {
    return `${CHROMIUM} is missing (apt-get install chromium)`;
  }
}
const skip = glewlwydUnavailable() ?? chromiumMissing() ?? false;
const TIMEOUT_MS = 20_000;

describe('Glewlwyd JARM in Chromium', { skip }, () => {
  let glw: Glewlwyd;
  let browser: Browser;
  const running: RunningBff[] = [];

  before(async () => {
    glw = await startGlewlwyd();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30_000,
    });
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    for (const bff of running) await bff.close();
    await glw?.close();
  });

  for (const mode of ['form_post.jwt', 'fragment.jwt'] as const) {
    it(`${mode}: a full login with the preset, the response verified by the BFF`, async () => {
      const port = await freePort();
      const publicUrl = `http://localhost:${port}`;
      const clientId = mode === 'form_post.jwt' ? 'bffformpost' : 'bfffragment';
      const key = await makeClientKey('ES256');
      await glw.addClient(
        glewlwydClient(
          clientId,
          publicUrl,
          { method: 'private_key_jwt' },
          // Glewlwyd fetches our keys itself: give it the loopback address it can always resolve.
          { response_mode: mode, jwks_uri: `http://127.0.0.1:${port}/.well-known/jwks.json` },
        ),
      );
      const bff = await startBff({
        port,
        issuer: glw.issuer,
        clientId,
        key,
        env: {
          MS_BFF_IDP_PRESET: 'glewlwyd',
          MS_BFF_PUBLIC_URL: publicUrl,
          MS_BFF_JARM_ENABLED: 'true',
          MS_BFF_JARM_MODE: mode,
        },
      });
      running.push(bff);

      const context = await browser.newContext();
      context.setDefaultTimeout(TIMEOUT_MS);
      context.setDefaultNavigationTimeout(TIMEOUT_MS);
      try {
        // Sign in at Glewlwyd and consent (its login page does the same API calls).
        const signIn = await context.request.post(`${glw.origin}/api/auth/`, { data: GLEWLWYD_USER });
        assert.equal(signIn.status(), 200);
        const grant = await context.request.put(`${glw.origin}/api/auth/grant/${clientId}`, {
          data: { scope: GLEWLWYD_SCOPES },
        });
        assert.equal(grant.status(), 200);

        const page = await context.newPage();
        await page.goto(`${publicUrl}/auth/login?returnTo=%2Fafter`);
        await page.waitForURL((u) => u.pathname.endsWith('/login.html'));
        // The login page's "continue": back to the authorization endpoint with g_continue.
        await page.goto(continueUrl(new URL(page.url())).href);
        await page.waitForURL((u) => u.origin === publicUrl && u.pathname === '/after');

        const session = await page.request.get(`${publicUrl}/auth/session`, {
          headers: { 'x-csrf': '1' },
        });
        assert.equal(session.status(), 200, await session.text());
        const verified = await bff.metrics.registry.getSingleMetric('jarm_responses_verified_total')?.get();
        assert.equal(
          verified?.values.reduce((n, v) => n + v.value, 0),
          1,
          'one JARM response verified',
        );
      } finally {
        await context.close();
      }
    });
  }
});
