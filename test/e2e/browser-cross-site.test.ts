/**
 * Logins in a real Chromium with the IdP on another site: the IdP on http://127.0.0.1, the BFF on
 * http://localhost (a secure context, so `__Host-` cookies work over plain HTTP). The in-process
 * TestBrowser ignores SameSite; Chromium does not: it drops the Lax/Strict login binding cookie on the
 * IdP's cross-site form post, and with Strict also on the IdP's redirect. Every response mode the BFF
 * offers, with MS_BFF_COOKIE_SAMESITE lax and strict, must still log the user in (through the
 * same-site relay), and the page the login returns to must be loaded with the session cookie.
 * Two logins started in two tabs of one browser both complete, in either order.
 *
 * Skipped, with a message, only when no Chromium binary is installed.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { closeChromium, findChromium, launchChromium, NO_CHROMIUM } from '../helpers/chromium.js';

const CHROMIUM = findChromium();
const SESSION_COOKIE = '__Host-bff-session';
const ACTION_TIMEOUT_MS = 20_000;

type Mode = 'query' | 'form_post' | 'query.jwt' | 'fragment.jwt' | 'form_post.jwt';
const MODES: Mode[] = ['query', 'form_post', 'query.jwt', 'fragment.jwt', 'form_post.jwt'];
const SAME_SITE = ['lax', 'strict'] as const;

interface Variant {
  mode: Mode;
  sameSite: (typeof SAME_SITE)[number];
  clientId: string;
  port: number;
  base: string;
  key: Awaited<ReturnType<typeof makeClientKey>>;
  bff?: RunningBff;
}

function modeEnv(mode: Mode): Record<string, string> {
  if (mode === 'query' || mode === 'form_post') return { MS_BFF_RESPONSE_MODE: mode };
  return { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: mode };
}

describe(
  'cross-site logins in headless Chromium (IdP on 127.0.0.1, BFF on localhost)',
  {
    timeout: 300_000,
    skip: CHROMIUM ? false : NO_CHROMIUM,
  },
  () => {
    let idp: DevIdp;
    let browser: Browser;
    const variants: Variant[] = [];

    before(async () => {
      for (const mode of MODES) {
        for (const sameSite of SAME_SITE) {
          const port = await freePort();
          variants.push({
            mode,
            sameSite,
            clientId: `xs-${mode}-${sameSite}`,
            port,
            base: `http://localhost:${port}`,
            key: await makeClientKey('ES256'),
          });
        }
      }
      idp = await startDevIdp({
        clients: variants.map((v) => clientMetadata(v.clientId, v.base, v.key)),
      });
      for (const v of variants) {
        v.bff = await startBff({
          port: v.port,
          issuer: idp.issuer,
          clientId: v.clientId,
          key: v.key,
          env: {
            MS_BFF_PUBLIC_URL: v.base,
            MS_BFF_COOKIE_SAMESITE: v.sameSite,
            ...modeEnv(v.mode),
          },
        });
      }
      browser = await launchChromium(CHROMIUM as string);
    });

    after(async () => {
      await closeChromium(browser);
      for (const v of variants) await v.bff?.close();
      await idp?.close();
    });

    /** Starts a login in `page` and waits for the IdP's login form. */
    async function startLogin(page: Page, v: Variant, returnTo: string): Promise<void> {
      await page.goto(`${v.base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
      await page.waitForURL(
        (url) => url.hostname === '127.0.0.1' && url.pathname.startsWith('/interaction/'),
      );
      await page.locator('#username').waitFor();
    }

    /**
     * Signs in at the IdP and waits for the BFF to navigate to `returnTo`; returns the Cookie header
     * Chromium sent on that navigation (the top-level request after the callback).
     */
    async function finishLogin(page: Page, v: Variant, returnTo: string): Promise<string> {
      const landed = page.waitForRequest(
        (r) => r.url() === `${v.base}${returnTo}` && r.isNavigationRequest(),
      );
      await page.locator('#username').fill('alice');
      await page.locator('#password').fill('alice-password');
      await page.locator('#sign-in').click();
      const request = await landed;
      await page.waitForURL(`${v.base}${returnTo}`);
      return (await request.headerValue('cookie')) ?? '';
    }

    async function sessionStatus(page: Page): Promise<{ status: number; sub?: unknown }> {
      return page.evaluate(async () => {
        const r = await fetch('/auth/session', {
          headers: { 'X-CSRF': '1', Accept: 'application/json' },
          credentials: 'same-origin',
          cache: 'no-store',
        });
        const body = r.ok ? ((await r.json()) as { claims?: { sub?: unknown } }) : undefined;
        return { status: r.status, sub: body?.claims?.sub };
      });
    }

    async function diagnose(page: Page): Promise<string> {
      const text = await page.evaluate(() => document.body?.textContent ?? '').catch(() => '');
      return `at ${page.url()}: ${text.replace(/\s+/g, ' ').slice(0, 400)}`;
    }

    for (const mode of MODES) {
      for (const sameSite of SAME_SITE) {
        it(`logs in with response mode ${mode}, SameSite=${sameSite}`, async () => {
          const v = variants.find((x) => x.mode === mode && x.sameSite === sameSite) as Variant;
          let context: BrowserContext | undefined;
          try {
            context = await browser.newContext();
            context.setDefaultTimeout(ACTION_TIMEOUT_MS);
            context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
            const page = await context.newPage();
            await startLogin(page, v, '/after-login');
            const cookieHeader = await finishLogin(page, v, '/after-login').catch(async (err: unknown) => {
              throw new Error(`${(err as Error).message}\n${await diagnose(page)}`, { cause: err });
            });
            assert.ok(
              cookieHeader.includes(`${SESSION_COOKIE}=`),
              `the page after login was requested with the session cookie (Cookie: ${cookieHeader.replace(/=[^;]+/g, '=…')})`,
            );
            const session = await sessionStatus(page);
            assert.deepEqual(session, { status: 200, sub: 'alice' });

            const stored = (await context.cookies(v.base)).find((c) => c.name === SESSION_COOKIE);
            assert.equal(stored?.sameSite, sameSite === 'lax' ? 'Lax' : 'Strict');
            const binding = (await context.cookies(v.base)).find((c) => c.name === '__Host-bff-login');
            assert.equal(binding?.sameSite, sameSite === 'lax' ? 'Lax' : 'Strict', 'binding never weaker');
          } finally {
            await context?.close().catch(() => undefined);
          }
        });
      }
    }

    for (const mode of ['form_post.jwt', 'query'] as const) {
      it(`completes two logins started in two tabs of one browser (${mode}, SameSite=strict)`, async () => {
        const v = variants.find((x) => x.mode === mode && x.sameSite === 'strict') as Variant;
        const context = await browser.newContext();
        try {
          context.setDefaultTimeout(ACTION_TIMEOUT_MS);
          context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
          const tabA = await context.newPage();
          const tabB = await context.newPage();
          await startLogin(tabA, v, '/tab-a');
          await startLogin(tabB, v, '/tab-b');
          const bindings = (await context.cookies(v.base)).filter((c) => c.name === '__Host-bff-login');
          assert.equal(bindings.length, 1, 'one binding cookie shared by both tabs');
          // The second tab finishes first: each tab's transaction is its own.
          await finishLogin(tabB, v, '/tab-b');
          assert.deepEqual(await sessionStatus(tabB), { status: 200, sub: 'alice' });
          await finishLogin(tabA, v, '/tab-a').catch(async (err: unknown) => {
            throw new Error(`${(err as Error).message}\n${await diagnose(tabA)}`, { cause: err });
          });
          assert.deepEqual(await sessionStatus(tabA), { status: 200, sub: 'alice' });
        } finally {
          await context.close().catch(() => undefined);
        }
      });
    }
  },
);
