/**
 * The development setup a newcomer gets from `npm start`, driven by a real headless Chromium: the
 * real entry point (`node dist/src/main.js`, no OIDC_ISSUER) with its embedded IdP, demo API and
 * demo SPA; login at the IdP's own form, the session cookie as the browser stored it, an API call
 * through the BFF, and RP-initiated logout through the IdP's confirmation page.
 *
 * The BFF is reached at http://localhost:<port>: browsers treat http://localhost as a secure
 * context, so they accept its `Secure` (`__Host-`) cookies over plain HTTP. The IdP stays on
 * 127.0.0.1, a different site, as a real IdP would be.
 *
 * Skipped, with a message, only when no Chromium binary is installed. A screenshot of the signed-in
 * SPA is written to test-results/demo-signed-in.png.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Cookie, Page } from 'playwright-core';
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

/** The repository root (this file runs as dist/test/e2e/browser-demo.test.js). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCREENSHOT = join(ROOT, 'test-results', 'demo-signed-in.png');
const SESSION_COOKIE = '__Host-bff-session';
/** Every Playwright action and wait. */
const ACTION_TIMEOUT_MS = 15_000;
const BANNER_TIMEOUT_MS = 20_000;
/**
 * A JWT or JWE in compact serialisation: base64url of `{"…` (so `eyJ`), then dot-separated parts.
 * The dots matter: the session cookie is `v1.<random>.<mac>` in base64url, where a bare `eyJ` can
 * occur by chance, but never followed by two more dots.
 */
const COMPACT_TOKEN = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./;
const CHROMIUM = findChromium();

/**
 * The same flow twice: as `npm start` gives it, and with FAPI 2.0 Message Signing switched on through
 * the environment (PAR + signed JAR, JARM in fragment.jwt: the response travels in the URL fragment,
 * which only a browser keeps, and the BFF's relay page posts it back under a nonce CSP).
 */
const VARIANTS: { name: string; env: Record<string, string>; screenshot: string }[] = [
  { name: 'development setup', env: {}, screenshot: SCREENSHOT },
  {
    name: 'with JAR and JARM fragment.jwt',
    env: { MS_BFF_JAR_ENABLED: 'true', MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: 'fragment.jwt' },
    screenshot: join(ROOT, 'test-results', 'demo-signed-in-jarm-fragment.png'),
  },
];

for (const variant of VARIANTS)
  describe(
    `demo SPA in headless Chromium against \`npm start\` (${variant.name})`,
    {
      // Every wait inside is bounded; this only stops a hang nobody foresaw.
      timeout: 180_000,
      skip: CHROMIUM ? false : NO_CHROMIUM,
    },
    () => {
      let main: MainProcess | undefined;
      let browser: Browser | undefined;
      let context: BrowserContext;
      let page: Page;
      let base: string;
      let port: number;
      /** The session cookie's value while signed in, to show the server forgot it at logout. */
      let sessionValue: string | undefined;
      const pageErrors: string[] = [];
      const killOnExit = () => main?.child.kill('SIGKILL');

      /** Context for a failed assertion: where the browser is, what it shows, what the BFF printed. */
      async function diagnostics(): Promise<string> {
        const text = await page
          ?.evaluate(() => document.body?.textContent ?? '')
          .catch((err: unknown) => `(page text unavailable: ${String(err)})`);
        return [
          `page URL: ${page?.url()}`,
          `page text: ${String(text).slice(0, 2000)}`,
          `page errors: ${pageErrors.join(' | ') || '(none)'}`,
          `BFF stdout (tail): ${main?.stdout().slice(-3000)}`,
          `BFF stderr (tail): ${main?.stderr().slice(-3000)}`,
        ].join('\n');
      }

      /** Runs a step; a failure carries the diagnostics. */
      async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
        try {
          return await fn();
        } catch (err) {
          throw new Error(
            `${name} failed: ${(err as Error)?.message ?? String(err)}\n${await diagnostics()}`,
            {
              cause: err,
            },
          );
        }
      }

      async function cookies(): Promise<Cookie[]> {
        return context.cookies(base);
      }

      async function state(): Promise<string | undefined> {
        return page.evaluate(() => document.body.dataset.state);
      }

      before(async () => {
        port = await freePort();
        base = `http://localhost:${port}`;
        // Exactly what `npm start` runs once `prestart` has built.
        main = startMain({ PORT: String(port), MS_BFF_PUBLIC_URL: base, LOG_LEVEL: 'warn', ...variant.env });
        process.once('exit', killOnExit);
        await main.waitFor(`Open ${base}/`, BANNER_TIMEOUT_MS);

        browser = await launchChromium(CHROMIUM as string);
        ({ context, page } = await openPage(browser, {
          viewport: { width: 1000, height: 900 },
          timeoutMs: ACTION_TIMEOUT_MS,
          errors: pageErrors,
          consoleErrors: true,
        }));
      });

      after(async () => {
        await closeChromium(browser);
        await main?.stop();
        process.off('exit', killOnExit);
      });

      it('shows the signed-out SPA at /', async () => {
        await step('opening the SPA', async () => {
          await page.goto(`${base}/`);
          await page.locator('body[data-state="signed-out"]').waitFor();
          assert.equal(await page.locator('#login').isVisible(), true, 'the Log in button is shown');
          assert.equal(await page.locator('#logout').isVisible(), false, 'the Log out button is hidden');
        });
      });

      it('logs alice in through the embedded IdP and shows her claims', async () => {
        await step('login', async () => {
          assert.equal(await state(), 'signed-out', 'the previous step left the SPA signed out');
          // /auth/login → PAR → the IdP's login form on 127.0.0.1 → /auth/callback → returnTo=/.
          await signInAsAlice(page, base);
          await page.locator('body[data-state="signed-in"]').waitFor();
        });

        const shown = await page.locator('#session').textContent();
        const session = JSON.parse(shown ?? '') as { claims?: Record<string, unknown>; expiresAt?: unknown };
        assert.equal(session.claims?.sub, 'alice');
        assert.equal(session.claims?.preferred_username, 'alice');
        assert.equal(session.claims?.name, 'Alice Example');
        assert.equal(session.claims?.email, 'alice@example.com');
        assert.equal(typeof session.expiresAt, 'string');
        assert.match((await page.locator('#status').textContent()) ?? '', /Signed in as Alice Example/);
        assert.equal(await page.locator('#logout').isVisible(), true, 'the Log out button is shown');
        assert.equal(await page.locator('#login').isVisible(), false, 'the Log in button is hidden');
      });

      if (variant.env.MS_BFF_JARM_MODE) {
        it('completed that login through a verified JARM response in the URL fragment', async () => {
          const metrics = await (await fetch(`${base}/metrics`)).text();
          assert.match(metrics, /jarm_responses_verified_total\{mode="fragment\.jwt"\} 1/);
          assert.match(metrics, /jar_request_objects_created_total\{alg="ES256"\} [1-9]/);
        });
      }

      it('keeps the session in an HttpOnly __Host- cookie and no token anywhere in the browser', async () => {
        assert.equal(await state(), 'signed-in', 'the login step left the SPA signed in');
        const jar = await cookies();
        const session = jar.find((c) => c.name === SESSION_COOKIE);
        assert.ok(
          session,
          `Chromium holds a ${SESSION_COOKIE} cookie for ${base} (has: ${jar.map((c) => c.name).join(', ')})`,
        );
        sessionValue = session.value;
        assert.equal(session.httpOnly, true, 'HttpOnly');
        assert.equal(session.secure, true, 'Secure');
        assert.equal(session.path, '/', 'Path=/');
        assert.equal(session.sameSite, 'Lax', 'SameSite=Lax');
        // Host-only: Playwright reports a host-only cookie by its bare host; a Domain cookie gets a dot.
        assert.equal(session.domain, 'localhost', 'no Domain attribute: host-only for localhost');
        assert.ok(session.value.length > 0);

        // Every cookie the browser holds, for the BFF and for the IdP alike.
        for (const cookie of await context.cookies()) {
          assert.doesNotMatch(
            cookie.value,
            COMPACT_TOKEN,
            `cookie ${cookie.name} (${cookie.domain}) holds a token`,
          );
        }
        const pageText = await page.evaluate(() => document.documentElement.outerHTML);
        assert.doesNotMatch(pageText, COMPACT_TOKEN, 'the page shows a token');
        const storage = await page.evaluate(
          () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
        );
        assert.doesNotMatch(storage, COMPACT_TOKEN, 'Web Storage holds a token');

        const documentCookie = await page.evaluate(() => document.cookie);
        assert.ok(
          !documentCookie.includes(SESSION_COOKIE),
          `document.cookie exposes the session: ${documentCookie}`,
        );
        assert.ok(!documentCookie.includes(session.value), 'document.cookie exposes the session value');
      });

      it('calls the demo API through the BFF with alice’s access token', async () => {
        assert.equal(await state(), 'signed-in', 'the login step left the SPA signed in');
        await step('calling the API', async () => {
          await page.locator('#call-api').click();
          await page.locator('body[data-api="ok"]').waitFor();
        });
        const result = JSON.parse((await page.locator('#api-result').textContent()) ?? '') as Record<
          string,
          unknown
        >;
        // The demo API answers 200 only after verifying a JWT access token (RFC 9068) from the dev IdP.
        assert.equal(result.sub, 'alice');
        assert.equal(result.aud, 'urn:fapi-bff:demo-api');
        assert.equal(result.client_id, 'fapi-bff-dev');
        assert.doesNotMatch(
          await page.evaluate(() => document.documentElement.outerHTML),
          COMPACT_TOKEN,
          'the page shows a token after the API call',
        );

        mkdirSync(join(ROOT, 'test-results'), { recursive: true });
        await page.screenshot({ path: variant.screenshot, fullPage: true, timeout: ACTION_TIMEOUT_MS });
      });

      it('logs out through the IdP’s end-session confirmation and ends signed out', async () => {
        assert.equal(await state(), 'signed-in', 'the login step left the SPA signed in');
        await step('logout', async () => {
          await page.locator('#logout').click();
          // GET /auth/logout?sid=… → the IdP's end_session_endpoint, which always asks for confirmation.
          await page.waitForURL((url) => url.hostname === '127.0.0.1');
          await page.locator('#logout-yes').click();
          // Back at post_logout_redirect_uri.
          await page.waitForURL(`${base}/`);
          await page.locator('body[data-state="signed-out"]').waitFor();
        });
        assert.equal(await page.locator('#login').isVisible(), true, 'the Log in button is shown again');
        assert.equal(
          (await cookies()).find((c) => c.name === SESSION_COOKIE),
          undefined,
          'the session cookie is gone',
        );

        const status = await page.evaluate(async () => {
          const response = await fetch('/auth/session', {
            headers: { 'X-CSRF': '1', Accept: 'application/json' },
            credentials: 'same-origin',
            cache: 'no-store',
          });
          return response.status;
        });
        assert.equal(status, 401, 'GET /auth/session after logout');

        // Not only the cookie is gone: the server destroyed the session, so replaying it fails too.
        assert.ok(sessionValue, 'the cookie step recorded the session value');
        const replay = await fetch(`${base}/auth/session`, {
          headers: { cookie: `${SESSION_COOKIE}=${sessionValue}`, 'x-csrf': '1', accept: 'application/json' },
          signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
        });
        assert.equal(replay.status, 401, 'the old session cookie, replayed after logout');
      });

      it('asks for credentials again on the next login (the IdP session ended too)', async () => {
        assert.equal(await state(), 'signed-out', 'the logout step left the SPA signed out');
        // Had the IdP kept its session (e.g. "No, stay signed in"), it would sign alice in silently.
        await step('starting a new login', async () => {
          await openIdpLogin(page);
          await page.locator('#username').waitFor();
        });
      });
    },
  );
