/**
 * The token scan of no-tokens-anywhere.test.ts in headless Chromium, for the responses only a real
 * browser produces: fragment.jwt (the relay page's script posts the fragment) and form_post.jwt
 * (the IdP's cross-site form post arrives without the SameSite binding cookie and goes through the
 * relay page). Login, session, API call, refresh, logout (JSON and the GET navigation); every log line
 * and every response Chromium received from the BFF (status, headers with Set-Cookie and Location,
 * body) is searched for what the IdP issued to the client, the client's private key and the
 * sessions' DPoP private keys.
 *
 * Exceptions, asserted to be exactly where they are: `id_token_hint` in the logout's end-session URL
 * (README, "SPAs never see a token"), and the relay page of a cross-site form post, which hands the
 * browser back the authorization response (`response`) the IdP's own page had just posted, as a
 * hidden field to re-post it same-site (no-store, no-referrer; src/endpoints/callback-relay.ts).
 *
 * Skipped, with a message, only when no Chromium binary is installed.
 */
import { strict as assert } from 'node:assert';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Response } from 'playwright-core';
import { clientMetadata } from '../helpers/bff-harness.js';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import {
  IdpHarvest,
  keepDpopKey,
  logHaystacks,
  newScanTarget,
  responseHaystack,
  type ScanStack,
  type ScanTarget,
  scan,
  type SeenResponse,
  startScanStack,
  targetSecrets,
  tapResponses,
} from '../helpers/secret-scan.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const CHROMIUM = findChromium();
const TIMEOUT_MS = 20_000;
/** A body Chromium no longer had: the test fails on it (the scan would not have seen it). */
const UNAVAILABLE = '(body unavailable)';

interface Variant extends ScanTarget {
  mode: 'fragment.jwt' | 'form_post.jwt';
  base: string;
  /** Every response the BFF sent, as sent. */
  tap: SeenResponse[];
}

const MATRIX = [
  { mode: 'fragment.jwt', store: 'memory', dpop: false },
  { mode: 'form_post.jwt', store: 'redis', dpop: true },
] as const;

describe(
  'no token in logs or responses, in headless Chromium (fragment.jwt, form_post.jwt)',
  {
    timeout: 180_000,
    skip: CHROMIUM ? false : 'no Chromium binary (/usr/bin/chromium, chromium or chromium-browser on PATH)',
  },
  () => {
    let upstream: RecordingUpstream;
    let stack: ScanStack | undefined;
    let browser: Browser;
    const harvest = new IdpHarvest();
    const variants: Variant[] = [];

    before(async () => {
      for (const m of MATRIX) {
        const target = await newScanTarget(`bff-scan-${m.mode}`);
        variants.push({ ...m, ...target, base: `http://localhost:${target.port}`, tap: [] });
      }
      stack = await startScanStack(variants, harvest, {
        client: (v) => ({
          ...clientMetadata(v.clientId, v.base, v.key),
          ...(v.dpop ? { dpop_bound_access_tokens: true } : {}),
        }),
        bff: (v) => ({
          key: v.key,
          env: { MS_BFF_PUBLIC_URL: v.base, MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: v.mode },
        }),
      });
      upstream = stack.upstream;
      for (const v of variants) v.tap = tapResponses(v.bff?.app.server as Server);
      browser = await launchChromium(CHROMIUM as string);
    });
    after(async () => {
      await browser?.close().catch(() => undefined);
      await stack?.close();
    });

    /** Records every response from the BFF's origin, body included (none for redirects). */
    function record(page: Page, origin: string): { done(): Promise<SeenResponse[]> } {
      const pending: Promise<SeenResponse>[] = [];
      page.on('response', (r: Response) => {
        const url = new URL(r.url());
        if (url.origin !== origin) return;
        pending.push(
          (async () => {
            // The body first: it is gone once the page navigates on.
            const [body, all] = await Promise.all([
              r.body().then(
                (b) => b.toString('utf8'),
                () => (r.status() >= 300 && r.status() < 400 ? '' : UNAVAILABLE),
              ),
              r.allHeaders(),
            ]);
            const headers: [string, string][] = [];
            for (const [k, v] of Object.entries(all))
              for (const value of k === 'set-cookie' ? v.split('\n') : [v]) headers.push([k, value]);
            return { method: r.request().method(), url, status: r.status(), headers, body };
          })(),
        );
      });
      return { done: () => Promise.all(pending) };
    }

    /** Logs in (at the IdP's form, or by its single sign-on when it still has a session). */
    async function login(page: Page, v: Variant): Promise<void> {
      const returned = `${v.base}/after-login`;
      await page.goto(`${v.base}/auth/login?returnTo=/after-login`);
      await page.waitForURL(
        (u) => u.href === returned || (u.hostname === '127.0.0.1' && u.pathname.startsWith('/interaction/')),
      );
      if (page.url() !== returned) {
        const landed = page.waitForURL(returned);
        await page.locator('#username').fill('alice');
        await page.locator('#password').fill('alice-password');
        await page.locator('#sign-in').click();
        await landed;
      }
      const cookie = (await page.context().cookies(v.base)).find((c) => c.name === '__Host-bff-session');
      assert.ok(cookie, 'a session cookie');
      await keepDpopKey(v, cookie.value);
    }

    const call = (page: Page, path: string, method = 'GET') =>
      page.evaluate(
        async ({ path, method }) => {
          const r = await fetch(path, {
            method,
            headers: { 'X-CSRF': '1', Accept: 'application/json' },
            credentials: 'same-origin',
            cache: 'no-store',
          });
          return { status: r.status, body: await r.text() };
        },
        { path, method },
      );

    for (const m of MATRIX) {
      it(`${m.mode} (${m.store}, ${m.dpop ? 'DPoP' : 'Bearer'})`, async () => {
        const v = variants.find((x) => x.mode === m.mode) as Variant;
        const issued = harvest.of(v.clientId);
        const context = await browser.newContext();
        context.setDefaultTimeout(TIMEOUT_MS);
        context.setDefaultNavigationTimeout(TIMEOUT_MS);
        const page = await context.newPage();
        const recorder = record(page, v.base);
        const tapFrom = v.tap.length;
        let responses: SeenResponse[];
        try {
          await login(page, v);
          assert.equal((await call(page, '/auth/session')).status, 200);
          await recorder.done();
          upstream.behave({ kind: 'ok' });
          assert.equal((await call(page, '/api/echo/items')).status, 200);
          v.skewMs = 600_000;
          assert.equal((await call(page, '/api/echo/items')).status, 200, 'after a refresh');
          v.skewMs = 0;
          const jsonLogout = await call(page, '/auth/logout', 'POST');
          await recorder.done();
          assert.equal(jsonLogout.status, 200);

          await login(page, v);
          const { logoutUrl } = JSON.parse((await call(page, '/auth/session')).body) as { logoutUrl: string };
          // A navigation to the logout URL: a 302 to the IdP's end-session endpoint.
          const ended = page.waitForURL((u) => u.hostname === '127.0.0.1');
          await recorder.done();
          await page.goto(new URL(logoutUrl, v.base).href);
          await ended;
          responses = await recorder.done();
        } finally {
          await context.close().catch(() => undefined);
        }

        assert.ok(issued.codes.size >= 2, `codes issued: ${issued.codes.size}`);
        assert.ok(issued.access.size >= 3, `access tokens issued: ${issued.access.size}`);
        assert.ok(issued.refresh.size >= 2, `refresh tokens issued: ${issued.refresh.size}`);
        assert.ok(issued.id.size >= 2, `ID tokens issued: ${issued.id.size}`);
        assert.ok(issued.jarm.size >= 2, `JARM responses issued: ${issued.jarm.size}`);
        if (v.dpop) assert.ok(v.dpopKeys.length >= 2, 'DPoP keys of the sessions');

        const secrets = targetSecrets(issued, v);
        // What Chromium got is what the BFF sent: every response it saw is in the tap, with the same
        // body where Chromium could still give it (a page that navigates on at once loses its body).
        const sent = v.tap.slice(tapFrom);
        for (const r of responses) {
          const match = sent.find(
            (t) =>
              t.method === r.method &&
              t.url.pathname + t.url.search === r.url.pathname + r.url.search &&
              t.status === r.status &&
              (r.body === UNAVAILABLE || r.body === '' || t.body === r.body),
          );
          assert.ok(match, `${r.method} ${r.url.pathname} → ${r.status} was sent as Chromium got it`);
        }
        let hints = 0;
        let relayed = 0;
        const haystacks = sent.map((r) => {
          const haystack = responseHaystack(r, issued);
          if (haystack.hinted) hints++;
          let text = haystack.text;
          if (
            r.method === 'POST' &&
            r.url.pathname === '/auth/callback' &&
            r.body.includes('<form id="relay"')
          ) {
            const echoed = /<input type="hidden" name="response" value="([^"]+)">/.exec(r.body)?.[1];
            assert.ok(echoed && issued.jarm.has(echoed), 'the relay re-posts the JARM response it received');
            assert.equal(r.headers.find(([k]) => k === 'cache-control')?.[1], 'no-store');
            assert.equal(r.headers.find(([k]) => k === 'referrer-policy')?.[1], 'no-referrer');
            relayed++;
            text = text
              .split(`name="response" value="${echoed}"`)
              .join('name="response" value="(the relay)"');
          }
          return { where: haystack.where, text };
        });
        assert.equal(hints, 2, 'both logouts sent id_token_hint');
        assert.equal(
          relayed,
          v.mode === 'form_post.jwt' ? 2 : 0,
          'a relay page only for cross-site form posts',
        );
        assert.ok(
          responses.some((r) => r.url.pathname === '/auth/callback'),
          'the callback responses were seen',
        );
        haystacks.push(...logHaystacks(v.logs));
        assert.deepEqual(scan(haystacks, secrets), [], 'no secret in a log line or a response Chromium got');
      });
    }
  },
);
