/**
 * Step-up and silent checks at /auth/login against oidc-provider (OIDC Core §3.1.2.1, §3.1.2.6;
 * RFC 9470): acr_values, max_age and prompt pass through only from the allowlist, malformed values
 * are refused, an ID token whose acr is not one that was asked for creates no session, and a
 * prompt=none login without an IdP session ends on returnTo with the documented marker.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { DevIdp } from '../../src/dev/idp.js';
import { DEV_PASSWORD_ACR } from '../../src/dev/idp/configuration.js';
import { SILENT_LOGIN_MARKER } from '../../src/endpoints/callback.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { ALICE, apiCall, errorCode } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import type { RecordingUpstream } from '../helpers/upstream.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

describe('step-up and silent login parameters', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let strict: RunningBff;
  let upstream: RecordingUpstream;
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      clientId: 'bff-step-up',
      routes: (url) => ({ api: url }),
      others: { strict: { clientId: 'bff-no-params', env: { MS_BFF_LOGIN_PARAMS_ALLOWED: 'prompt' } } },
    });
    ({ idp, bff, upstream } = stack);
    strict = stack.others.strict!;
  });
  after(async () => {
    await stack?.close();
  });

  /** Start a login with extra query parameters; log in at the IdP when it asks; return the callback's answer. */
  async function login(browser: TestBrowser, base: string, query: string) {
    const idpOrigin = new URL(idp.issuer).origin;
    const start = await browser.navigate(`${base}/auth/login?returnTo=%2Fhome&${query}`, {
      stopWhen: (u) => u.origin === idpOrigin || u.href.startsWith(`${base}/auth/callback`),
    });
    if (!start.stopped) return start.response;
    let callback = start.url;
    if (callback.origin === idpOrigin) {
      const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
        u.href.startsWith(`${base}/auth/callback`),
      );
      callback = done.url;
    }
    return browser.request(callback);
  }

  it('refuses parameters the frontend does not allow, and malformed ones, before any PAR', async () => {
    const browser = new TestBrowser();
    for (const query of ['acr_values=urn:x', 'max_age=60']) {
      const res = await browser.request(`${strict.url}/auth/login?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(await errorCode(res), 'BFF_LOGIN_INVALID_PARAMETER');
    }
    for (const query of [
      'prompt=none%20login',
      'prompt=create',
      'max_age=-1',
      'max_age=1e3',
      'acr_values=%22quoted%22',
      'prompt=none&prompt=login',
    ]) {
      const res = await browser.request(`${bff.url}/auth/login?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(await errorCode(res), 'BFF_LOGIN_INVALID_PARAMETER', query);
    }
  });

  it('prompt=none without a session at the IdP ends on returnTo with the marker, not an error page', async () => {
    const browser = new TestBrowser();
    const res = await login(browser, bff.url, 'prompt=none');
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `/home?${SILENT_LOGIN_MARKER}=login_required`);
    assert.equal(browser.cookie(bff.url, '__Host-bff-session'), undefined);
  });

  it('acr_values the IdP satisfies, with max_age: signed in, and prompt=none then succeeds silently', async () => {
    const browser = new TestBrowser();
    const res = await login(
      browser,
      bff.url,
      `acr_values=${encodeURIComponent(DEV_PASSWORD_ACR)}&max_age=600`,
    );
    assert.equal(res.status, 302, await res.text());
    assert.equal(res.headers.get('location'), '/home');
    assert.ok(browser.cookie(bff.url, '__Host-bff-session'));
    // The IdP now has a session: a silent check signs in without any page.
    const silent = await login(browser, bff.url, 'prompt=none');
    assert.equal(silent.status, 302);
    assert.equal(silent.headers.get('location'), '/home');
  });

  it('an acr the IdP did not reach creates no session (a step-up that did not happen)', async () => {
    const browser = new TestBrowser();
    const res = await login(browser, bff.url, 'acr_values=urn%3Aexample%3Amfa');
    assert.equal(res.status, 403);
    assert.equal(await errorCode(res), 'BFF_AUTHENTICATION_INSUFFICIENT');
    assert.equal(browser.cookie(bff.url, '__Host-bff-session'), undefined);
  });

  it('an upstream asking for step-up (RFC 9470) becomes BFF_STEP_UP_REQUIRED with the login that asks for it', async () => {
    const browser = new TestBrowser();
    assert.equal((await login(browser, bff.url, 'max_age=600')).status, 302);
    upstream.behave({
      kind: 'status',
      status: 401,
      headers: {
        'www-authenticate': `Bearer error="insufficient_user_authentication", error_description="more", acr_values="${DEV_PASSWORD_ACR}", max_age=5`,
      },
    });
    const res = await apiCall(browser, bff.url, '/api/api/payments');
    assert.equal(res.status, 401);
    const problem = (await res.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'BFF_STEP_UP_REQUIRED');
    assert.equal(problem.acr_values, DEV_PASSWORD_ACR);
    assert.equal(problem.max_age, 5);
    const loginUrl = String(problem.login);
    assert.equal(loginUrl, `/auth/login?acr_values=${encodeURIComponent(DEV_PASSWORD_ACR)}&max_age=5`);
    // The login it names is accepted by /auth/login (the allowlist permits both parameters).
    const again = await login(browser, bff.url, loginUrl.split('?')[1] as string);
    assert.equal(again.status, 302, await again.text());
    assert.equal(again.headers.get('location'), '/home');

    // A plain 401 stays the upstream's own answer.
    upstream.behave({ kind: 'status', status: 401, headers: { 'www-authenticate': 'Bearer realm="x"' } });
    const plain = await apiCall(browser, bff.url, '/api/api/payments');
    assert.equal(plain.status, 401);
    assert.notEqual(await errorCode(plain), 'BFF_STEP_UP_REQUIRED');
  });
});
