/**
 * ID tokens and responses a correct IdP never produces, from a hostile IdP built with jose. Each
 * must end in a clean error page with a stable code and no session; each would end in a session
 * if the check it names were removed.
 */
import { strict as assert } from 'node:assert';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { RunningBff } from '../helpers/bff-harness.js';
import { type HostileIdp, type Misbehaviour } from '../helpers/hostile-idp.js';
import { type HostileStack, startHostileStack } from '../helpers/stack.js';
import { errorCode } from '../helpers/flows.js';
import { TestBrowser, type TestResponse } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-hostile';

describe('ID token and token endpoint misbehaviour (hostile IdP)', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let stack: HostileStack;

  before(async () => {
    stack = await startHostileStack({ clientId: CLIENT_ID, hostile: { alg: 'PS256' } });
    ({ idp, bff } = stack);
  });
  after(async () => {
    await stack?.close();
  });
  beforeEach(() => idp.misbehave({}));

  /** Run a login against the hostile IdP with a misbehaviour; return the callback's response. */
  async function loginWith(m: Misbehaviour): Promise<{ res: TestResponse; browser: TestBrowser }> {
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.href.startsWith(`${bff.url}/auth/callback`),
    });
    assert.ok(start.stopped, `login reached the callback (status ${start.response.status})`);
    idp.misbehave(m);
    return { res: await browser.request(start.url), browser };
  }

  it('completes a login when the IdP behaves (the baseline every case below changes by one thing)', async () => {
    const { res, browser } = await loginWith({});
    assert.equal(res.status, 302);
    assert.ok(browser.cookie(bff.url, '__Host-bff-session'));
  });

  const cases: [string, Misbehaviour, string][] = [
    ['wrong nonce', { idTokenNonce: 'not-the-nonce' }, 'BFF_ID_TOKEN_INVALID'],
    ['missing nonce', { idTokenNonce: null }, 'BFF_ID_TOKEN_INVALID'],
    ['wrong aud', { idTokenAud: 'someone-else' }, 'BFF_ID_TOKEN_INVALID'],
    ['extra aud without azp', { idTokenAud: [CLIENT_ID, 'someone-else'] }, 'BFF_ID_TOKEN_INVALID'],
    ['wrong azp', { idTokenAud: [CLIENT_ID, 'x'], idTokenAzp: 'x' }, 'BFF_ID_TOKEN_INVALID'],
    ['wrong iss', { idTokenIss: 'http://evil.example' }, 'BFF_ID_TOKEN_INVALID'],
    ['alg RS256 (not FAPI)', { idTokenAlg: 'RS256' }, 'BFF_ID_TOKEN_INVALID'],
    ['alg ES256 while PS256 is pinned', { idTokenAlg: 'ES256' }, 'BFF_ID_TOKEN_INVALID'],
    ['alg none', { idTokenAlg: 'none' }, 'BFF_ID_TOKEN_INVALID'],
    ['alg HS256 keyed with the client id', { idTokenAlg: 'HS256' }, 'BFF_ID_TOKEN_INVALID'],
    ['bad signature', { idTokenBadSignature: true }, 'BFF_ID_TOKEN_INVALID'],
    [
      'signed by an unpublished key with a known kid',
      { idTokenSignWithUnpublishedKey: true },
      'BFF_ID_TOKEN_INVALID',
    ],
    ['unknown kid', { idTokenKid: 'unknown-kid' }, 'BFF_ID_TOKEN_INVALID'],
    [
      'a jku header (untrusted key reference)',
      { idTokenHeader: { jku: 'http://127.0.0.1:9/jwks' } },
      'BFF_ID_TOKEN_INVALID',
    ],
    [
      'an x5u header (untrusted key reference)',
      { idTokenHeader: { x5u: 'http://127.0.0.1:9/cert' } },
      'BFF_ID_TOKEN_INVALID',
    ],
    ['the typ of a logout token', { idTokenHeader: { typ: 'logout+jwt' } }, 'BFF_ID_TOKEN_INVALID'],
    ['expired', { idTokenExp: Math.floor(Date.now() / 1000) - 600 }, 'BFF_ID_TOKEN_INVALID'],
    ['issued a week ago', { idTokenIat: Math.floor(Date.now() / 1000) - 7 * 86400 }, 'BFF_ID_TOKEN_INVALID'],
    ['issued in the future', { idTokenIat: Math.floor(Date.now() / 1000) + 300 }, 'BFF_ID_TOKEN_INVALID'],
    ['unknown token_type', { tokenType: 'mac' }, 'BFF_TOKEN_RESPONSE_INVALID'],
    ['token endpoint error', { tokenStatus: 400, tokenError: 'invalid_grant' }, 'BFF_IDP_ERROR'],
    ['token endpoint 500', { tokenStatus: 500, tokenError: 'server_error' }, 'BFF_IDP_ERROR'],
  ];
  for (const [name, m, code] of cases) {
    it(`refuses an ID token / token response with ${name}`, async () => {
      const { res, browser } = await loginWith(m);
      assert.ok(res.status >= 400, `status ${res.status}`);
      assert.equal(await errorCode(res), code);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      assert.equal(browser.cookie(bff.url, '__Host-bff-session'), undefined, 'no session');
    });
  }

  it('treats an authorization error with a foreign iss as a mix-up, not a denial (RFC 9207 §2.4)', async () => {
    const browser = new TestBrowser();
    idp.misbehave({ authzError: { error: 'access_denied' }, authzIss: 'http://evil.example' });
    const res = await browser.navigate(`${bff.url}/auth/login?returnTo=/`);
    assert.equal(res.response.status, 400);
    assert.equal(await errorCode(res.response), 'BFF_CALLBACK_ISS_MISMATCH');
  });

  it('shows a clear page for an authorization error from the right IdP', async () => {
    const browser = new TestBrowser();
    idp.misbehave({
      authzError: { error: 'unauthorized_client', error_description: '<script>alert(1)</script>' },
    });
    const res = await browser.navigate(`${bff.url}/auth/login?returnTo=/`);
    assert.equal(res.response.status, 403);
    const html = await res.response.text();
    assert.match(html, /BFF_CALLBACK_ACCESS_DENIED/);
    assert.match(html, /unauthorized_client/);
    assert.match(html, /Something went wrong/);
    assert.ok(!html.includes('<script>'), 'IdP-controlled text is never reflected unescaped');
  });

  it("reads a user's cancel at the IdP (access_denied) as cancelled, with a way to sign in again", async () => {
    const browser = new TestBrowser();
    idp.misbehave({
      authzError: { error: 'access_denied', error_description: 'End-User aborted interaction' },
    });
    const res = await browser.navigate(`${bff.url}/auth/login?returnTo=/`);
    assert.equal(res.response.status, 400);
    assert.equal(await errorCode(res.response), 'BFF_LOGIN_CANCELLED');
    const html = await res.response.text();
    assert.match(html, /<h1>Sign-in cancelled<\/h1>/);
    assert.match(html, /Nothing went wrong/);
    assert.match(html, /href="[^"]*\/auth\/login"[^>]*>Sign in again/);
    assert.doesNotMatch(html, /BFF_CALLBACK_ACCESS_DENIED|refused/);
  });

  it('answers a PAR failure with a clean 502 page', async () => {
    idp.misbehave({ parStatus: 400 });
    const res = await new TestBrowser().request(`${bff.url}/auth/login?returnTo=/`);
    assert.equal(res.status, 502);
    assert.equal(await errorCode(res), 'BFF_IDP_ERROR');
  });

  it('answers an IdP that is down at login with a clean 503 page, and recovers', async () => {
    idp.misbehave({ down: true });
    const res = await new TestBrowser().request(`${bff.url}/auth/login?returnTo=/`);
    assert.equal(res.status, 503);
    assert.equal(await errorCode(res), 'BFF_IDP_UNAVAILABLE');
    idp.misbehave({});
    const ok = await new TestBrowser().request(`${bff.url}/auth/login?returnTo=/`);
    assert.equal(ok.status, 302);
  });

  it('counts refusals by stable code in /metrics', async () => {
    const metrics = await (await new TestBrowser().request(`${bff.url}/metrics`)).text();
    assert.match(metrics, /bff_errors_total\{code="BFF_ID_TOKEN_INVALID"\} [1-9]/);
    assert.match(
      metrics,
      /bff_callbacks_total\{outcome="failure",code="BFF_ID_TOKEN_INVALID",frontend="default"\} [1-9]/,
    );
    assert.match(metrics, /par_requests_total\{outcome="success"\} [1-9]/);
    assert.match(metrics, /par_requests_total\{outcome="failure"\} [1-9]/);
  });
});
