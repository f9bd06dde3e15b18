/**
 * Attacks on the login and callback, against the real oidc-provider. Each test fails if the check
 * it names is removed: the attack would then end in a session (a 302 with the session cookie).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { DevIdp } from '../../src/dev/idp.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { apiCall, fullLogin, loginUntilCallback, errorCode } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const CLIENT_ID = 'bff-attacks';

function tokenRequests(idp: DevIdp): { count: number } {
  const counter = { count: 0 };
  idp.provider.on('grant.success', () => {
    counter.count++;
  });
  idp.provider.on('grant.error', () => {
    counter.count++;
  });
  return counter;
}

describe('callback and session attacks', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let now = Date.now();
  let tokenCalls: { count: number };
  let stack: Stack;

  before(async () => {
    stack = await startStack({ clientId: CLIENT_ID, alg: 'PS256', clock: () => now });
    ({ idp, bff, upstream } = stack);
    tokenCalls = tokenRequests(idp);
  });
  after(async () => {
    await stack?.close();
  });

  it('refuses a callback delivered to another browser (state bound to the browser)', async () => {
    const victim = new TestBrowser();
    const callback = await loginUntilCallback(victim, bff.url, idp);
    const attacker = new TestBrowser();
    const before = tokenCalls.count;
    const res = await attacker.request(callback);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'BFF_CALLBACK_STATE_MISMATCH');
    assert.equal(attacker.cookie(bff.url, '__Host-bff-session'), undefined);
    assert.equal(tokenCalls.count, before, 'no token request after a failed binding check');
  });

  it('refuses a callback whose state matches no transaction', async () => {
    const browser = new TestBrowser();
    const callback = await loginUntilCallback(browser, bff.url, idp);
    callback.searchParams.set('state', `${callback.searchParams.get('state')}x`);
    const res = await browser.request(callback);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'BFF_CALLBACK_TRANSACTION_EXPIRED');
  });

  it('requires the RFC 9207 iss parameter', async () => {
    const browser = new TestBrowser();
    const callback = await loginUntilCallback(browser, bff.url, idp);
    callback.searchParams.delete('iss');
    const res = await browser.request(callback);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'BFF_CALLBACK_ISS_MISMATCH');
    assert.equal(browser.cookie(bff.url, '__Host-bff-session'), undefined);
  });

  it('refuses a wrong iss (mix-up), before acting on anything else', async () => {
    const browser = new TestBrowser();
    const callback = await loginUntilCallback(browser, bff.url, idp);
    callback.searchParams.set('iss', `${idp.issuer}/evil`);
    const before = tokenCalls.count;
    const res = await browser.request(callback);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'BFF_CALLBACK_ISS_MISMATCH');
    assert.equal(tokenCalls.count, before);
  });

  it('refuses a replayed callback (single-use transaction)', async () => {
    const browser = new TestBrowser();
    const callback = await loginUntilCallback(browser, bff.url, idp);
    const first = await browser.request(callback);
    assert.equal(first.status, 302);
    const replay = await browser.request(callback);
    assert.equal(replay.status, 400);
    assert.equal(await errorCode(replay), 'BFF_CALLBACK_TRANSACTION_EXPIRED');
  });

  it('refuses an expired login transaction', async () => {
    const browser = new TestBrowser();
    const callback = await loginUntilCallback(browser, bff.url, idp);
    now += (bff.config.session.loginTimeoutSec + 1) * 1000;
    try {
      const res = await browser.request(callback);
      assert.equal(res.status, 400);
      assert.equal(await errorCode(res), 'BFF_CALLBACK_TRANSACTION_EXPIRED');
    } finally {
      now = Date.now();
    }
  });

  for (const returnTo of [
    '//evil.example/x',
    'https://evil.example/',
    '/\\evil.example',
    'javascript:alert(1)',
    '/\r\nSet-Cookie:x=1',
    '/\t/evil.example',
    'relative',
  ]) {
    it(`refuses returnTo=${JSON.stringify(returnTo)} (no open redirect)`, async () => {
      const browser = new TestBrowser();
      const pushes = idp.provider.listenerCount('pushed_authorization_request.success');
      let pushed = 0;
      const onPush = () => {
        pushed++;
      };
      idp.provider.on('pushed_authorization_request.success', onPush);
      try {
        const res = await browser.request(`${bff.url}/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
        assert.equal(res.status, 400);
        assert.equal(await errorCode(res), 'BFF_LOGIN_INVALID_RETURN_TO');
        assert.equal(pushed, 0, 'no PAR request for a refused login');
      } finally {
        idp.provider.off('pushed_authorization_request.success', onPush);
        assert.equal(idp.provider.listenerCount('pushed_authorization_request.success'), pushes);
      }
    });
  }

  it('refuses a login started from a cross-site page (SP-C12)', async () => {
    const browser = new TestBrowser();
    const res = await browser.request(`${bff.url}/auth/login?returnTo=/`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(res.status, 403);
    assert.equal(await errorCode(res), 'BFF_CSRF_FAILED');
  });

  describe('with a session', () => {
    const browser = new TestBrowser();
    before(async () => {
      const res = await fullLogin(browser, bff.url, idp);
      assert.equal(res.status, 302);
    });

    it('refuses an API call without the CSRF header', async () => {
      upstream.requests.length = 0;
      const res = await browser.request(`${bff.url}/api/echo/x`, {
        headers: { 'sec-fetch-site': 'same-origin' },
      });
      assert.equal(res.status, 403);
      assert.equal(await errorCode(res), 'BFF_CSRF_FAILED');
      assert.equal(upstream.requests.length, 0);
    });

    it('refuses an API call with a wrong CSRF header value', async () => {
      const res = await apiCall(browser, bff.url, '/api/echo/x', { headers: { 'x-csrf': 'true' } });
      assert.equal(res.status, 403);
    });

    it('refuses a cross-site Origin even with the CSRF header', async () => {
      const res = await browser.request(`${bff.url}/api/echo/x`, {
        method: 'POST',
        headers: { 'x-csrf': '1', origin: 'https://evil.example' },
        body: '{}',
      });
      assert.equal(res.status, 403);
      assert.equal(await errorCode(res), 'BFF_CSRF_FAILED');
    });

    it('refuses Sec-Fetch-Site: cross-site and same-site', async () => {
      for (const site of ['cross-site', 'same-site']) {
        const res = await apiCall(browser, bff.url, '/api/echo/x', { headers: { 'sec-fetch-site': site } });
        assert.equal(res.status, 403, site);
      }
    });

    it('refuses POST /auth/logout without the CSRF header and keeps the session', async () => {
      const res = await browser.request(`${bff.url}/auth/logout`, {
        method: 'POST',
        headers: { 'sec-fetch-site': 'same-origin' },
      });
      assert.equal(res.status, 403);
      assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 200);
    });

    it('refuses GET /auth/logout with a wrong sid and keeps the session', async () => {
      const res = await browser.request(`${bff.url}/auth/logout?sid=wrong`);
      assert.equal(res.status, 403);
      assert.equal(await errorCode(res), 'BFF_LOGOUT_SID_MISMATCH');
      assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 200);
    });

    it('answers 401 (never a redirect) to tampered, unknown and malformed cookies, and the real session survives', async () => {
      const real = browser.cookie(bff.url, '__Host-bff-session')?.value ?? '';
      const [v, id, mac] = real.split('.');
      const flip = (s: string) => (s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`);
      const forged = [
        `${v}.${flip(id ?? '')}.${mac}`,
        `${v}.${id}.${flip(mac ?? '')}`,
        `v1.${'A'.repeat(43)}.${'A'.repeat(43)}`,
        'garbage',
        '',
        'v1..',
        `${'x'.repeat(5000)}`,
      ];
      for (const value of forged) {
        const other = new TestBrowser();
        other.setCookie(bff.url, '__Host-bff-session', value);
        const res = await apiCall(other, bff.url, '/api/echo/x');
        assert.equal(res.status, 401, `cookie ${value.slice(0, 20)}`);
        assert.equal(await errorCode(res), 'BFF_SESSION_REQUIRED');
      }
      assert.equal((await apiCall(browser, bff.url, '/api/echo/x')).status, 200);
    });

    it('refuses path traversal out of the route base', async () => {
      for (const path of ['/api/echo/../admin', '/api/echo/%2e%2e/admin', '/api/echo/a/%2F/b']) {
        const res = await apiCall(browser, bff.url, path);
        assert.ok(res.status === 400 || res.status === 404, `${path} → ${res.status}`);
      }
    });

    it('answers unknown routes with 404 problem+json', async () => {
      const res = await apiCall(browser, bff.url, '/api/nope/x');
      assert.equal(res.status, 404);
      assert.equal(await errorCode(res), 'BFF_ROUTE_NOT_FOUND');
      const other = await browser.request(`${bff.url}/no/such/thing`);
      assert.equal(other.status, 404);
      assert.match(other.headers.get('content-type') ?? '', /problem\+json/);
    });
  });
});
