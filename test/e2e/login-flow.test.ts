import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { DevIdp } from '../../src/dev/idp.js';
import type { ClientKey, RunningBff, StoreKind } from '../helpers/bff-harness.js';
import { apiCall, fullLogin, loginUntilCallback, startLogin } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { confirmEndSession, TestBrowser } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const CLIENT_ID = 'bff-e2e';
const AUDIENCE = 'urn:test:api';

for (const storeKind of ['memory', 'redis'] as StoreKind[]) {
  describe(`login, session, API proxy and logout against oidc-provider (${storeKind} store)`, () => {
    let idp: DevIdp;
    let bff: RunningBff;
    let upstream: RecordingUpstream;
    let key: ClientKey;
    let stack: Stack;

    before(async () => {
      stack = await startStack({ clientId: CLIENT_ID, idp: { resourceAudience: AUDIENCE }, storeKind });
      ({ idp, bff, upstream, key } = stack);
    });
    after(async () => {
      await stack?.close();
    });

    it('redirects to the IdP with only client_id and request_uri (PAR, FAPI 2.0 §5.3.3.2-6)', async () => {
      const browser = new TestBrowser();
      const start = await startLogin(browser, bff.url, idp.issuer);
      assert.equal(start.response.status, 302);
      assert.deepEqual([...start.url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
      assert.equal(start.url.searchParams.get('client_id'), CLIENT_ID);
      assert.match(start.url.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/);
    });

    it('logs in, sets exactly the session cookie attributes, proxies with the token, logs out', async () => {
      const browser = new TestBrowser();
      const callback = await fullLogin(browser, bff.url, idp, '/after-login?tab=2');
      assert.equal(callback.status, 302);
      assert.equal(callback.headers.get('location'), '/after-login?tab=2');

      const setCookie = callback.headers.get('set-cookie') ?? '';
      const sessionCookie = setCookie
        .split(/,(?=\s*__Host-)/)
        .find((c) => c.trim().startsWith('__Host-bff-session='));
      assert.ok(sessionCookie, 'session cookie set');
      const attrs = sessionCookie
        .split(';')
        .slice(1)
        .map((a) => a.trim().toLowerCase())
        .sort();
      assert.deepEqual(attrs, ['httponly', 'path=/', 'samesite=lax', 'secure']);
      assert.ok(!/domain=/i.test(sessionCookie), 'no Domain attribute (__Host- prefix)');

      const session = await apiCall(browser, bff.url, '/auth/session');
      assert.equal(session.status, 200);
      const body = (await session.json()) as {
        claims: Record<string, unknown>;
        expiresAt: string;
        logoutUrl: string;
      };
      assert.equal(body.claims.sub, 'alice');
      assert.equal(body.claims.email, 'alice@example.com');
      assert.match(body.logoutUrl, /^\/auth\/logout\?sid=/);
      const text = JSON.stringify(body);
      assert.ok(!/eyJ/.test(text), '/auth/session never returns a token');

      upstream.requests.length = 0;
      const api = await apiCall(browser, bff.url, '/api/echo/things/1?x=1&y=%20z', {
        headers: { 'x-custom': 'kept', authorization: 'Bearer forged-by-browser' },
      });
      assert.equal(api.status, 200);
      assert.equal(api.headers.get('set-cookie'), null, 'upstream Set-Cookie is dropped');
      assert.equal(api.headers.get('x-upstream'), null, 'headers outside the allowlist are dropped');
      assert.equal(
        api.headers.get('cache-control'),
        'private, no-store',
        'user-token responses are not stored',
      );
      const seen = upstream.requests[0];
      assert.ok(seen);
      assert.equal(seen.url, '/things/1?x=1&y=%20z');
      assert.equal(seen.headers.cookie, undefined, 'browser cookies never reach the upstream');
      assert.equal(seen.headers['x-csrf'], undefined, 'the CSRF header is ours');
      assert.equal(seen.headers['x-custom'], 'kept');
      const auth = String(seen.headers.authorization);
      assert.match(auth, /^Bearer ey/);
      const at = decodeJwt(auth.slice('Bearer '.length));
      assert.equal(at.sub, 'alice');
      assert.equal(at.aud, AUDIENCE);

      // Capture the refresh token server-side to prove revocation at logout.
      const loaded = await bff.services.sessions.load(browser.cookie(bff.url, '__Host-bff-session')?.value);
      const refreshToken = loaded?.data.refreshToken;
      assert.ok(refreshToken, 'a refresh token was issued');

      const logout = await apiCall(browser, bff.url, '/auth/logout', { method: 'POST' });
      assert.equal(logout.status, 302);
      const endSession = new URL(logout.headers.get('location') ?? '');
      assert.equal(endSession.origin, new URL(idp.issuer).origin);
      assert.ok(endSession.searchParams.get('id_token_hint'));
      assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${bff.url}/`);
      assert.match(logout.headers.get('set-cookie') ?? '', /__Host-bff-session=;.*Max-Age=0/i);
      const done = await confirmEndSession(browser, endSession, { stopWhen: (u) => u.origin === bff.url });
      assert.equal(done.url.href, `${bff.url}/`);

      const after = await apiCall(browser, bff.url, '/auth/session');
      assert.equal(after.status, 401);
      const apiAfter = await apiCall(browser, bff.url, '/api/echo/x');
      assert.equal(apiAfter.status, 401);
      assert.equal(((await apiAfter.json()) as { code: string }).code, 'BFF_SESSION_REQUIRED');

      const metrics = await (await browser.request(`${bff.url}/metrics`)).text();
      for (const endpoint of ['par', 'token', 'revocation']) {
        assert.match(
          metrics,
          new RegExp(
            `bff_idp_requests_total\\{endpoint="${endpoint}",auth_method="private_key_jwt",outcome="success"\\} [1-9]`,
          ),
          endpoint,
        );
      }

      // RFC 7009: the refresh token no longer works at the IdP.
      const direct = await oidc.discovery(
        new URL(idp.issuer),
        CLIENT_ID,
        { id_token_signed_response_alg: 'PS256' },
        oidc.PrivateKeyJwt(await importKey(key)),
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      await assert.rejects(oidc.refreshTokenGrant(direct, refreshToken), (err: unknown) => {
        assert.equal((err as { error?: string }).error, 'invalid_grant');
        return true;
      });
    });

    it('rotates the session id at login (no fixation) and destroys the previous session', async () => {
      const browser = new TestBrowser();
      await fullLogin(browser, bff.url, idp);
      const first = browser.cookie(bff.url, '__Host-bff-session')?.value;
      assert.ok(first);
      await fullLogin(browser, bff.url, idp);
      const second = browser.cookie(bff.url, '__Host-bff-session')?.value;
      assert.ok(second);
      assert.notEqual(first, second);
      assert.equal(await bff.services.sessions.load(first), undefined, 'the pre-login session is gone');
      assert.ok(await bff.services.sessions.load(second));
    });

    it('lets several tabs log in at once with one binding cookie', async () => {
      const browser = new TestBrowser();
      const a = await loginUntilCallback(browser, bff.url, idp, '/a');
      const b = await loginUntilCallback(browser, bff.url, idp, '/b');
      const logins = browser.cookies(bff.url).filter((c) => c.name.startsWith('__Host-bff-login'));
      assert.equal(logins.length, 1, 'no cookie pile-up');
      assert.equal((await browser.request(b)).headers.get('location'), '/b');
      assert.equal((await browser.request(a)).headers.get('location'), '/a');
    });
  });
}

async function importKey(key: ClientKey) {
  const { importJWK } = await import('jose');
  return {
    key: (await importJWK(key.privateJwk, key.privateJwk.alg)) as CryptoKey,
    kid: key.privateJwk.kid as string,
  };
}
