import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { importJWK } from 'jose';
import * as oidc from 'openid-client';
import type { DevIdp } from '../../src/dev/idp.js';
import type { ClientKey, RunningBff, StoreKind } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const CLIENT_ID = 'bff-refresh';

for (const storeKind of ['memory', 'redis'] as StoreKind[]) {
  describe(`token refresh (${storeKind} store)`, () => {
    let idp: DevIdp;
    let bff: RunningBff;
    let upstream: RecordingUpstream;
    let key: ClientKey;
    let stack: Stack;
    const grants: string[] = [];
    let skewMs = 0;

    before(async () => {
      // Time moves by the test's clock: the access token (300 s) is made stale without sleeping.
      stack = await startStack({
        clientId: CLIENT_ID,
        idp: { resourceAudience: 'urn:test:api' },
        storeKind,
        clock: () => Date.now() + skewMs,
      });
      ({ idp, bff, upstream, key } = stack);
      idp.provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: unknown } } }) => {
        grants.push(String(ctx.oidc.params?.grant_type));
      });
    });
    after(async () => {
      await stack?.close();
    });

    const refreshes = () => grants.filter((g) => g === 'refresh_token').length;

    it('shares one refresh among concurrent requests and stores the rotated refresh token', async () => {
      const browser = new TestBrowser();
      await fullLogin(browser, bff.url, idp);
      const before = refreshes();
      skewMs += 301_000;
      upstream.requests.length = 0;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => apiCall(browser, bff.url, `/api/echo/c/${i}`)),
      );
      assert.deepEqual(
        results.map((r) => r.status),
        Array(12).fill(200),
      );
      assert.equal(refreshes() - before, 1, 'exactly one refresh_token grant for 12 concurrent calls');
      const tokens = new Set(upstream.requests.map((r) => r.headers.authorization));
      assert.equal(tokens.size, 1, 'every call carried the refreshed token');

      // The rotated refresh token was stored: using the old one again would make oidc-provider
      // revoke the whole grant and this call would fail.
      assert.equal((await apiCall(browser, bff.url, '/api/echo/fresh')).status, 200);
      assert.equal(refreshes() - before, 1, 'a fresh token is not refreshed');
      for (let i = 0; i < 3; i++) {
        skewMs += 301_000;
        const next = await apiCall(browser, bff.url, '/api/echo/again');
        assert.equal(next.status, 200);
      }
      assert.equal(refreshes() - before, 4);
    });

    it('a request that read the session before a sibling refreshed reuses that refresh (no replay of the rotated token)', async () => {
      const browser = new TestBrowser();
      await fullLogin(browser, bff.url, idp);
      const cookie = browser.cookie(bff.url, '__Host-bff-session')?.value;
      skewMs += 301_000;
      const stale = await bff.services.sessions.load(cookie);
      assert.ok(stale);
      const before = refreshes();
      assert.equal((await apiCall(browser, bff.url, '/api/echo/sibling')).status, 200);
      assert.equal(refreshes() - before, 1);
      const reused = await bff.services.tokens.ensureFresh(stale);
      assert.equal(refreshes() - before, 1, 'no second refresh_token grant');
      assert.notEqual(reused.data.accessToken, stale.data.accessToken);
      assert.notEqual(reused.data.refreshToken, stale.data.refreshToken);
      assert.equal(
        (await apiCall(browser, bff.url, '/api/echo/after')).status,
        200,
        'the grant is still alive',
      );
    });

    it('ends the session with 401 when the refresh token is rejected (invalid_grant)', async () => {
      const browser = new TestBrowser();
      await fullLogin(browser, bff.url, idp);
      const cookie = browser.cookie(bff.url, '__Host-bff-session')?.value;
      const stolen = (await bff.services.sessions.load(cookie))?.data.refreshToken;
      assert.ok(stolen);
      // Someone else rotates the token first: the BFF's copy becomes a reused token, and
      // oidc-provider revokes the grant when it sees it (refresh token reuse detection).
      const direct = await oidc.discovery(
        new URL(idp.issuer),
        CLIENT_ID,
        { id_token_signed_response_alg: 'PS256' },
        oidc.PrivateKeyJwt({
          key: (await importJWK(key.privateJwk, 'ES256')) as CryptoKey,
          kid: String(key.privateJwk.kid),
        }),
        { execute: [oidc.allowInsecureRequests] },
      );
      await oidc.refreshTokenGrant(direct, stolen);

      skewMs += 301_000;
      const res = await apiCall(browser, bff.url, '/api/echo/x');
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { code: string }).code, 'BFF_REFRESH_FAILED');
      assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 401, 'the session is gone');
    });
  });
}
