/**
 * No token anywhere it should not be (issue 11 item 3). Every flow runs against one oidc-provider
 * (memory and Redis stores; Bearer and DPoP; plain and JARM responses; a client secret and a private
 * key): login, API call, refresh, refresh on an upstream 401, logout (JSON and redirect), a refresh
 * the IdP refuses, a forged callback, a callback with a bad state or in another browser, and an IdP
 * error. Every log line (at trace, access log on) and every response the browser got from the BFF
 * (status, headers with each Set-Cookie and the Location, body) is searched for what the IdP
 * issued in those flows (taken from the IdP: access, refresh and ID tokens, codes, JARM responses)
 * and for the client's secret or private key and the sessions' DPoP private keys (JWK `d` and
 * PKCS#8 PEM), whole and, for JWTs, by payload and signature segment.
 *
 * The one exception (README, "SPAs never see a token"): the ID token as `id_token_hint` in the
 * end-session URL the logout answers with (OIDC RP-Initiated Logout 1.0 §2), asserted to be exactly
 * there and exactly the ID token. The fragment.jwt mode needs a real browser: see
 * browser-no-tokens.test.ts.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { DevIdp } from '../../src/dev/idp.js';
import { clientMetadata } from '../helpers/bff-harness.js';
import { ALICE } from '../helpers/flows.js';
import {
  IdpHarvest,
  type Issued,
  keepDpopKey,
  logHaystacks,
  newScanTarget,
  RecordingBrowser,
  responseHaystack,
  type ScanStack,
  type ScanTarget,
  scan,
  type SeenResponse,
  startScanStack,
  targetSecrets,
} from '../helpers/secret-scan.js';
import { loginAtDevIdp, type NavigateResult } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

type Mode = 'query' | 'form_post' | 'query.jwt' | 'form_post.jwt';

interface Variant extends ScanTarget {
  name: string;
  mode: Mode;
  auth: 'private_key_jwt' | 'client_secret_post';
}

const SECRET = 'a-client-secret-the-scan-must-never-find-0123456789';

const MATRIX: Omit<Variant, 'clientId' | 'port' | 'key' | 'skewMs' | 'logs' | 'dpopKeys'>[] = [
  { name: 'memory, Bearer, query', store: 'memory', dpop: false, mode: 'query', auth: 'private_key_jwt' },
  { name: 'Redis, DPoP, form_post', store: 'redis', dpop: true, mode: 'form_post', auth: 'private_key_jwt' },
  {
    name: 'memory, DPoP, query.jwt',
    store: 'memory',
    dpop: true,
    mode: 'query.jwt',
    auth: 'private_key_jwt',
  },
  {
    name: 'Redis, Bearer, form_post.jwt',
    store: 'redis',
    dpop: false,
    mode: 'form_post.jwt',
    auth: 'private_key_jwt',
  },
  {
    name: 'Redis, Bearer, query, client_secret_post',
    store: 'redis',
    dpop: false,
    mode: 'query',
    auth: 'client_secret_post',
  },
];

function modeEnv(mode: Mode): Record<string, string> {
  if (mode === 'query' || mode === 'form_post') return { MS_BFF_RESPONSE_MODE: mode };
  return { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: mode };
}

describe(
  'no token, code, secret or private key in logs or browser-visible responses',
  { timeout: 180_000 },
  () => {
    let idp: DevIdp;
    let upstream: RecordingUpstream;
    let stack: ScanStack | undefined;
    const harvest = new IdpHarvest();
    const variants: Variant[] = [];

    before(async () => {
      for (const [i, m] of MATRIX.entries())
        variants.push({ ...m, ...(await newScanTarget(`bff-scan-${i}`)) });
      stack = await startScanStack(variants, harvest, {
        client: (v) => {
          const meta = clientMetadata(v.clientId, `http://127.0.0.1:${v.port}`, v.key);
          if (v.auth === 'client_secret_post') {
            const { jwks: _j, token_endpoint_auth_signing_alg: _a, ...rest } = meta;
            return { ...rest, token_endpoint_auth_method: 'client_secret_post', client_secret: SECRET };
          }
          return v.dpop ? { ...meta, dpop_bound_access_tokens: true } : meta;
        },
        bff: (v) => ({
          ...(v.auth === 'private_key_jwt' ? { key: v.key } : {}),
          env: {
            ...modeEnv(v.mode),
            ...(v.auth === 'client_secret_post'
              ? { MS_BFF_TOKEN_AUTH_METHOD: 'client_secret_post', OIDC_CLIENT_SECRET: SECRET }
              : {}),
          },
        }),
      });
      ({ idp, upstream } = stack);
    });
    after(async () => {
      await stack?.close();
    });

    const callbackOf = (v: Variant) => (u: URL) => u.href.startsWith(`${v.bff?.url}/auth/callback`);

    /** Logs in, following every hop until the page the login returns to (not requested). */
    async function login(v: Variant, browser: RecordingBrowser): Promise<void> {
      const base = v.bff?.url as string;
      const start = await browser.navigate(`${base}/auth/login?returnTo=/after-login`, {
        stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
      });
      assert.ok(start.stopped, `login redirected to the IdP (${start.response.status})`);
      const done = await loginAtDevIdp(
        browser,
        start.url,
        ALICE.username,
        ALICE.password,
        (u) => u.origin === base && u.pathname === '/after-login',
      );
      assert.ok(done.stopped, `login came back to /after-login (ended at ${done.url})`);
      const cookie = browser.cookie(base, '__Host-bff-session')?.value;
      assert.ok(cookie, 'a session');
      await keepDpopKey(v, cookie);
    }

    /** Logs in at the IdP and stops before the callback; returns the callback the IdP sent. */
    async function untilCallback(v: Variant, browser: RecordingBrowser): Promise<NavigateResult> {
      const base = v.bff?.url as string;
      const start = await browser.navigate(`${base}/auth/login?returnTo=/after-login`, {
        stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
      });
      return loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, callbackOf(v));
    }

    /** Delivers a callback (GET, or the IdP's form post) in `browser`. */
    function deliver(browser: RecordingBrowser, cb: NavigateResult, url = cb.url) {
      return browser.request(url, {
        method: cb.pending?.method ?? 'GET',
        headers: {
          'sec-fetch-site': 'same-site',
          'sec-fetch-mode': 'navigate',
          ...(cb.pending?.body instanceof URLSearchParams
            ? { 'content-type': 'application/x-www-form-urlencoded' }
            : {}),
        },
        ...(cb.pending?.body !== undefined ? { body: cb.pending.body } : {}),
      });
    }

    const api = (
      browser: RecordingBrowser,
      v: Variant,
      path: string,
      init: { method?: string; accept?: string } = {},
    ) =>
      browser.request(`${v.bff?.url}${path}`, {
        method: init.method ?? 'GET',
        headers: {
          'x-csrf': '1',
          'sec-fetch-site': 'same-origin',
          ...(init.accept ? { accept: init.accept } : {}),
        },
      });

    /** Every flow of the variant; returns what the browsers received. */
    async function runFlows(v: Variant, issued: Issued): Promise<SeenResponse[]> {
      const base = v.bff?.url as string;
      const browser = new RecordingBrowser([base]);
      const other = new RecordingBrowser([base]);

      // 1. Login, session, API call, refresh, refresh on an upstream 401, logout (JSON caller).
      await login(v, browser);
      assert.equal((await api(browser, v, '/auth/session', { accept: 'application/json' })).status, 200);
      upstream.behave({ kind: 'ok' });
      assert.equal((await api(browser, v, '/api/echo/items')).status, 200);
      const accessBefore = issued.access.size;
      // Ten minutes later for the BFF only: its access token is stale (the IdP's live 300 s).
      v.skewMs = 600_000;
      assert.equal((await api(browser, v, '/api/echo/items')).status, 200, 'after a refresh');
      v.skewMs = 0;
      assert.ok(issued.access.size > accessBefore, 'the refresh got a new access token');
      upstream.behave({
        kind: 'status',
        status: 401,
        headers: { 'www-authenticate': `${v.dpop ? 'DPoP' : 'Bearer'} error="invalid_token"` },
      });
      await (await api(browser, v, '/api/echo/items')).text();
      upstream.behave({ kind: 'ok' });
      const jsonLogout = await api(browser, v, '/auth/logout', {
        method: 'POST',
        accept: 'application/json',
      });
      assert.equal(jsonLogout.status, 200);

      // 2. A refresh the IdP refuses (its refresh token destroyed at the IdP): the session ends.
      await login(v, browser);
      const refreshToken = [...issued.refresh].at(-1) as string;
      const stored = await idp.provider.RefreshToken.find(refreshToken);
      assert.ok(stored, 'the IdP knows the refresh token');
      await stored.destroy();
      v.skewMs = 600_000;
      const refused = await api(browser, v, '/api/echo/items');
      v.skewMs = 0;
      assert.equal(refused.status, 401, 'refresh failed: no session any more');

      // 3. Login, logout as a form post (302 to the end-session endpoint).
      await login(v, browser);
      const redirectLogout = await api(browser, v, '/auth/logout', { method: 'POST' });
      assert.equal(redirectLogout.status, 302);

      // 4. Error paths. A forged callback; a real code with a bad state; a real callback in another
      // browser; an IdP error response for a real transaction.
      const forged = new URL(`${base}/auth/callback`);
      forged.search = new URLSearchParams({
        code: 'forged-code-0123456789',
        state: 'forged-state',
        iss: idp.issuer,
      }).toString();
      assert.ok((await browser.request(forged)).status >= 400, 'forged callback refused');

      const stolen = await untilCallback(v, browser);
      assert.ok(stolen.stopped);
      assert.ok((await deliver(other, stolen)).status >= 400, 'a callback in another browser is refused');
      if (!v.mode.endsWith('.jwt') && stolen.url.searchParams.has('state')) {
        const badState = new URL(stolen.url);
        badState.searchParams.set('state', 'not-the-state');
        assert.ok((await deliver(browser, stolen, badState)).status >= 400, 'a bad state is refused');
      }
      const pending = await browser.navigate(`${base}/auth/login?returnTo=/after-login`, {
        stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
      });
      assert.ok(pending.stopped);
      const state = issued.states.at(-1) as string;
      const idpError = new URL(`${base}/auth/callback`);
      idpError.search = new URLSearchParams({
        error: 'access_denied',
        error_description: 'the user said no',
        state,
        iss: idp.issuer,
      }).toString();
      assert.ok((await browser.request(idpError)).status >= 400, 'an IdP error is an error page');

      return [...browser.seen, ...other.seen];
    }

    for (const m of MATRIX) {
      it(m.name, async () => {
        const v = variants.find((x) => x.name === m.name) as Variant;
        const issued = harvest.of(v.clientId);
        const responses = await runFlows(v, issued);

        // The scan looked for something: every kind of value was issued in these flows.
        assert.ok(issued.codes.size >= 4, `codes issued: ${issued.codes.size}`);
        assert.ok(issued.access.size >= 4, `access tokens issued: ${issued.access.size}`);
        assert.ok(issued.refresh.size >= 4, `refresh tokens issued: ${issued.refresh.size}`);
        assert.ok(issued.id.size >= 3, `ID tokens issued: ${issued.id.size}`);
        if (v.mode.endsWith('.jwt')) assert.ok(issued.jarm.size >= 4, `JARM responses: ${issued.jarm.size}`);
        if (v.dpop) assert.ok(v.dpopKeys.length >= 3, 'DPoP keys of the sessions');
        // The upstream received the access tokens the IdP issued (the same values are searched for).
        const sent = upstream.requests.map((r) => String(r.headers.authorization ?? '').replace(/^\S+ /, ''));
        assert.ok(sent.some((t) => issued.access.has(t)));

        const secrets = targetSecrets(issued, v, v.auth === 'client_secret_post' ? SECRET : undefined);

        // The exception: id_token_hint in the end-session URL of a logout, and only the ID token.
        let hints = 0;
        const haystacks = responses.map((r) => {
          const { where, text, hinted } = responseHaystack(r, issued);
          if (hinted) hints++;
          return { where, text };
        });
        assert.equal(hints, 2, 'both logouts (JSON and redirect) sent the hint');

        assert.ok(v.logs.lines.length > 20, `logged: ${v.logs.lines.length} lines`);
        haystacks.push(...logHaystacks(v.logs));
        const findings = scan(haystacks, secrets);
        assert.deepEqual(findings, [], 'no secret in a log line or a browser-visible response');
        assert.ok(!v.logs.lines.some((l) => l.includes('PRIVATE KEY')), 'no PEM in the logs');
      });
    }
  },
);
