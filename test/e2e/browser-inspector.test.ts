/**
 * The demo's proof, in Debian's Chromium against the real entry point (`node dist/src/main.js`, the
 * development setup `npm start` gives): opened at http://127.0.0.1:<port> it moves to the public URL
 * and logs in; the session inspector shows what page JavaScript can see (nothing), the session
 * cookie's attributes as set, each step of the login as the server ran it, the upstream's view of an
 * API call (DPoP, cnf.jkt equal to the session key's thumbprint), expiry countdowns, "refresh now"
 * (a rotation counted) and "log out everywhere" (the IdP's back-channel logout ends the session
 * while the browser still holds the cookie); a cancel at the IdP shows a calm "cancelled" page.
 *
 * The README's screenshots are taken here: with UPDATE_SCREENSHOTS=1 (`npm run screenshots`, and
 * .ci/run) they are written to docs/screenshots/, otherwise to test-results/.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../helpers/bff-harness.js';
import {
  closeChromium,
  findChromium,
  launchChromium,
  NO_CHROMIUM,
  openIdpLogin,
  openPage,
  signInAsAlice,
} from '../helpers/chromium.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? join(ROOT, 'docs', 'screenshots')
  : join(ROOT, 'test-results', 'screenshots');
const CHROMIUM = findChromium();
const ACTION_TIMEOUT_MS = 20_000;
/** A JWT or JWE in compact serialisation (see browser-demo.test.ts). */
const COMPACT_TOKEN = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./;

describe(
  'session inspector of the demo SPA in Chromium',
  {
    timeout: 240_000,
    skip: CHROMIUM ? false : NO_CHROMIUM,
  },
  () => {
    let main: MainProcess;
    let browser: Browser;
    let page: Page;
    let port: number;
    let base: string;
    const pageErrors: string[] = [];

    const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
    async function shot(name: string): Promise<void> {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, name), fullPage: true, timeout: ACTION_TIMEOUT_MS });
    }
    async function signIn(): Promise<void> {
      await signInAsAlice(page, base);
      await page.locator('body[data-inspector="ready"]').waitFor();
    }

    before(async () => {
      port = await freePort();
      base = `http://localhost:${port}`;
      main = startMain({ PORT: String(port), LOG_LEVEL: 'warn' });
      await main.waitFor('fapi-bff DEVELOPMENT SETUP', 60_000);
      browser = await launchChromium(CHROMIUM as string);
      ({ page } = await openPage(browser, {
        viewport: { width: 1200, height: 900 },
        timeoutMs: ACTION_TIMEOUT_MS,
        errors: pageErrors,
      }));
    });
    after(async () => {
      await closeChromium(browser);
      await main?.stop();
    });

    it('moves a browser from 127.0.0.1 to the public URL, then logs in', async () => {
      await page.goto(`http://127.0.0.1:${port}/`);
      assert.equal(page.url(), `${base}/`);
      await page.locator('body[data-state="signed-out"]').waitFor();
      await signIn();
      assert.deepEqual(pageErrors, []);
    });

    it('shows what page JavaScript can see: no cookie, no storage, no token', async () => {
      const facts = await text('#page-facts');
      assert.match(facts, /document\.cookie"" \(empty: the session cookie is HttpOnly\)/);
      assert.match(facts, /localStorage0 item/);
      assert.match(facts, /sessionStorage0 item/);
      assert.equal(await page.evaluate(() => document.cookie), '');
      assert.doesNotMatch(await page.content(), COMPACT_TOKEN, 'no token in the page');
    });

    it("shows the session cookie's attributes as the server sets them", async () => {
      const header = await text('#cookie-header');
      assert.match(header, /^Set-Cookie: __Host-bff-session=…; /);
      for (const attribute of ['HttpOnly', 'Secure', 'Path=/', 'SameSite=Lax']) {
        assert.ok(header.includes(attribute), `${attribute} in ${header}`);
      }
      const [cookie] = (await page.context().cookies(base)).filter((c) => c.name === '__Host-bff-session');
      assert.ok(cookie?.httpOnly && cookie.secure && cookie.sameSite === 'Lax', 'Chromium stored it so');
    });

    let jkt = '';
    it('lists the steps of the login as the server ran them', async () => {
      const steps = await text('#login-steps');
      assert.match(steps, /Pushed Authorization Request: yes/);
      assert.match(steps, /PKCE: S256/);
      assert.match(steps, /Signed request object \(JAR\): ES256, not encrypted/);
      assert.match(steps, /Authorization response: JARM response_mode=jwt, signed PS256, not encrypted/);
      assert.match(steps, /Issuer check: iss verified/);
      assert.match(steps, /Token endpoint authentication: private_key_jwt \(ES256\)/);
      assert.match(steps, /ID token: signature verified, alg PS256/);
      assert.match(steps, /Refreshes since login: 0 \(0 rotated/);
      jkt = /DPoP, key thumbprint ([A-Za-z0-9_-]{43})/.exec(steps)?.[1] ?? '';
      assert.ok(jkt, steps);
      const countdowns = await text('#countdowns');
      assert.match(countdowns, /Access tokenin \d+ min \d\d s/);
      assert.match(countdowns, /Session \(absolute\)in \d+ h \d\d min/);
    });

    it("shows the upstream's view of an API call: DPoP-bound to the session's key, never the token", async () => {
      await page.locator('#call-api').click();
      await page.locator('body[data-api="ok"]').waitFor();
      const upstream = await text('#upstream-facts');
      assert.match(upstream, /token typeDPoP/);
      assert.match(upstream, /bindingDPoP: proof verified/);
      assert.ok(upstream.includes(`cnf.jkt${jkt}`), `the API saw cnf.jkt ${jkt}: ${upstream}`);
      assert.match(upstream, /scopesapi:read/);
      assert.doesNotMatch(await page.content(), COMPACT_TOKEN, 'no token in the page');
      await page.evaluate(() => window.scrollTo(0, 0));
      await shot('inspector.png');
    });

    it('refreshes now: a new access token, the refresh token rotated', async () => {
      const before = await text('#countdowns');
      await page.locator('#refresh-now').click();
      await page.locator('body[data-inspector="refreshed"]').waitFor();
      assert.match(
        await text('#login-steps'),
        /Refreshes since login: 1 \(1 rotated the refresh token\), last at/,
      );
      assert.match(await text('#status'), /Refreshed: a new access token/);
      assert.ok(before.length > 0);
    });

    it('logs out everywhere: the IdP ends the session by back-channel logout, the cookie is left dead', async () => {
      const [cookie] = (await page.context().cookies(base)).filter((c) => c.name === '__Host-bff-session');
      await page.locator('#logout-everywhere').click();
      await page.waitForURL((url) => url.hostname === '127.0.0.1');
      await page.locator('#logout-yes').click();
      await page.waitForURL(`${base}/`);
      await page.locator('body[data-state="signed-out"]').waitFor();
      // The BFF took no request for this logout: the browser still holds the cookie, the server ended it.
      const [still] = (await page.context().cookies(base)).filter((c) => c.name === '__Host-bff-session');
      assert.equal(still?.value, cookie?.value, 'the browser still holds the same cookie');
      const replay = await fetch(`${base}/auth/session`, {
        headers: { cookie: `__Host-bff-session=${cookie?.value}`, 'x-csrf': '1' },
        signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
      });
      assert.equal(replay.status, 401, 'the session ended on the server');
    });

    it("reads a cancel at the IdP as cancelled, on a styled page with 'Sign in again'", async () => {
      await openIdpLogin(page);
      await page.locator('#cancel').click();
      await page.waitForURL((url) => url.href.startsWith(`${base}/auth/callback`));
      assert.equal(await text('h1'), 'Sign-in cancelled');
      assert.match(await text('main'), /Nothing went wrong/);
      assert.equal(await page.locator('body').getAttribute('data-code'), 'BFF_LOGIN_CANCELLED');
      const style = await page.evaluate(
        () => getComputedStyle(document.querySelector('main') as Element).borderRadius,
      );
      assert.notEqual(style, '0px', 'the page style applied under its CSP');
      await shot('login-cancelled.png');
      await page.locator('a', { hasText: 'Sign in again' }).click();
      await page.waitForURL(
        (url) => url.hostname === '127.0.0.1' && url.pathname.startsWith('/interaction/'),
      );
    });
  },
);
