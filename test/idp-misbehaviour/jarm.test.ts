/**
 * JARM responses a correct IdP never sends, delivered to the real callback (seed 002 Appendix A and
 * §11). Each case starts a real login (PAR + signed JAR to the hostile IdP), takes the code and
 * state the IdP issued, and wraps them in a JARM JWT broken in exactly one way. The baseline case,
 * unbroken, completes the login, so each refusal is caused by the one thing changed.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { RunningBff } from '../helpers/bff-harness.js';
import { authorizeUntilCallback, errorCode } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { type HostileStack, JARM_ENV, JARM_IDP_METADATA, startHostileStack } from '../helpers/stack.js';
import { TestBrowser, type TestResponse } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-jarm-hostile';

describe('JARM misbehaviour through the callback (hostile IdP)', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let stack: HostileStack;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    stack = await startHostileStack({ clientId: CLIENT_ID, metadata: JARM_IDP_METADATA, env: JARM_ENV });
    ({ idp, bff } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  /** A real login up to the IdP's answer: the code and state it issued for this browser. */
  const authorize = (browser: TestBrowser) => authorizeUntilCallback(browser, bff.url);

  function claims(
    r: { code: string; state: string },
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return {
      iss: idp.issuer,
      aud: CLIENT_ID,
      exp: now() + 60,
      iat: now(),
      state: r.state,
      code: r.code,
      ...extra,
    };
  }

  async function deliver(browser: TestBrowser, response: string, outerIss?: string): Promise<TestResponse> {
    const url = new URL(`${bff.url}/auth/callback`);
    url.searchParams.set('response', response);
    if (outerIss) url.searchParams.set('iss', outerIss);
    return browser.request(url);
  }

  async function refusalReason(): Promise<string[]> {
    const text = await (await new TestBrowser().request(`${bff.url}/metrics`)).text();
    return [...text.matchAll(/jarm_validation_failures_total\{reason="([a-z_]+)"\} ([0-9]+)/g)].map(
      (m) => `${m[1]}=${m[2]}`,
    );
  }

  it('completes a login with a well-formed JARM response (baseline)', async () => {
    const browser = new TestBrowser();
    idp.requests.length = 0;
    const r = await authorize(browser);
    // FAPI 2.0 Message Signing §5.3.2-1 / checklist PAR-3: the PAR body is client authentication,
    // client_id and the signed request object; no parameter is duplicated outside it.
    const par = idp.requests.find((q) => q.path === '/par');
    assert.deepEqual(Object.keys(par?.form ?? {}).sort(), [
      'client_assertion',
      'client_assertion_type',
      'client_id',
      'request',
    ]);
    const res = await deliver(
      browser,
      await idp.signJwt(claims(r), { header: { typ: 'oauth-authz-resp+jwt' } }),
      idp.issuer,
    );
    assert.equal(res.status, 302, await res.text());
    assert.equal(res.headers.get('location'), '/ok');
  });

  const unsigned = (payload: Record<string, unknown>) =>
    `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;

  const cases: [string, (r: { code: string; state: string }) => Promise<string>, string][] = [
    [
      'a bad signature (key not in the JWKS)',
      (r) => idp.signJwt(claims(r), { unpublishedKey: true }),
      'signature',
    ],
    ['alg none', async (r) => unsigned(claims(r)), 'alg_none'],
    ['alg RS256', (r) => idp.signJwt(claims(r), { alg: 'RS256' }), 'alg'],
    ['an unknown kid', (r) => idp.signJwt(claims(r), { header: { kid: 'unknown-kid' } }), 'kid_unknown'],
    ['no kid', (r) => idp.signJwt(claims(r), { header: { kid: undefined } }), 'kid_missing'],
    [
      'a jku header pointing at an attacker key',
      (r) => idp.signJwt(claims(r), { header: { jku: 'http://127.0.0.1:9/jwks' } }),
      'untrusted_key_reference',
    ],
    [
      'an x5u header',
      (r) => idp.signJwt(claims(r), { header: { x5u: 'http://127.0.0.1:9/cert' } }),
      'untrusted_key_reference',
    ],
    ['a wrong iss', (r) => idp.signJwt(claims(r, { iss: 'http://evil.example' })), 'iss'],
    ['a wrong aud', (r) => idp.signJwt(claims(r, { aud: 'someone-else' })), 'aud'],
    ['no aud', (r) => idp.signJwt(claims(r, { aud: undefined })), 'aud'],
    ['no exp', (r) => idp.signJwt(claims(r, { exp: undefined })), 'exp_missing'],
    ['an exp in the past', (r) => idp.signJwt(claims(r, { iat: now() - 400, exp: now() - 360 })), 'expired'],
    [
      'an iat in the future',
      (r) => idp.signJwt(claims(r, { iat: now() + 300, exp: now() + 400 })),
      'iat_future',
    ],
    ['an iat too old', (r) => idp.signJwt(claims(r, { iat: now() - 300 })), 'iat_too_old'],
    ['a lifetime too long', (r) => idp.signJwt(claims(r, { exp: now() + 3600 })), 'lifetime'],
    ['the typ of another JWT kind', (r) => idp.signJwt(claims(r), { header: { typ: 'logout+jwt' } }), 'typ'],
  ];
  for (const [name, make, reason] of cases) {
    it(`refuses a JARM response with ${name} (${reason})`, async () => {
      const browser = new TestBrowser();
      const r = await authorize(browser);
      const before = idp.requests.filter((q) => q.path === '/token').length;
      const res = await deliver(browser, await make(r));
      assert.equal(res.status, 400);
      assert.equal(await errorCode(res), 'BFF_CALLBACK_INVALID');
      assert.ok(
        (await refusalReason()).some((x) => x.startsWith(`${reason}=`)),
        `counted as ${reason}`,
      );
      assert.equal(
        idp.requests.filter((q) => q.path === '/token').length,
        before,
        'no code was exchanged (JARM-8)',
      );
      assert.equal(browser.cookie(bff.url, '__Host-bff-session'), undefined);
    });
  }

  it('refuses an outer iss that differs from ours, and an outer iss that differs from the signed one', async () => {
    const browser = new TestBrowser();
    const r = await authorize(browser);
    const good = await idp.signJwt(claims(r));
    const outer = await deliver(browser, good, 'http://evil.example');
    assert.equal(outer.status, 400);
    assert.equal(await errorCode(outer), 'BFF_CALLBACK_ISS_MISMATCH');

    const browser2 = new TestBrowser();
    const r2 = await authorize(browser2);
    const inner = await deliver(
      browser2,
      await idp.signJwt(claims(r2, { iss: 'http://evil.example' })),
      idp.issuer,
    );
    assert.equal(inner.status, 400);
    assert.equal(await errorCode(inner), 'BFF_CALLBACK_INVALID');
  });

  it("refuses another browser's state, an unknown state, and a replayed response", async () => {
    const victim = new TestBrowser();
    const rv = await authorize(victim);
    const attacker = new TestBrowser();
    const stolen = await deliver(attacker, await idp.signJwt(claims(rv)));
    assert.equal(stolen.status, 400);
    assert.equal(await errorCode(stolen), 'BFF_CALLBACK_STATE_MISMATCH');

    const browser = new TestBrowser();
    const r = await authorize(browser);
    const unknown = await deliver(browser, await idp.signJwt(claims(r, { state: `${r.state}x` })));
    assert.equal(await errorCode(unknown), 'BFF_CALLBACK_TRANSACTION_EXPIRED');

    const browser3 = new TestBrowser();
    const r3 = await authorize(browser3);
    const once = await idp.signJwt(claims(r3, { jti: randomUUID() }));
    assert.equal((await deliver(browser3, once)).status, 302);
    const replay = await deliver(browser3, once);
    assert.equal(replay.status, 400);
  });

  it('refuses a plain response while JARM is required, and surfaces an error carried inside a valid JARM', async () => {
    const browser = new TestBrowser();
    const r = await authorize(browser);
    const plain = await browser.request(
      `${bff.url}/auth/callback?code=${r.code}&state=${r.state}&iss=${encodeURIComponent(idp.issuer)}`,
    );
    assert.equal(plain.status, 400);

    const browser2 = new TestBrowser();
    const r2 = await authorize(browser2);
    const denied = await deliver(
      browser2,
      await idp.signJwt({ ...claims(r2), code: undefined, error: 'access_denied' }),
    );
    // access_denied is the user cancelling (or declining) at the IdP: a calm page, not a failure.
    assert.equal(denied.status, 400);
    const html = await denied.text();
    assert.match(html, /BFF_LOGIN_CANCELLED/);
    assert.match(html, /Sign-in cancelled/);
  });
});

describe('a signed response for a login that did not ask for JARM (hostile IdP)', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let stack: HostileStack;
  const clientId = 'bff-jarm-off-hostile';

  before(async () => {
    // JARM is off for this BFF: its logins ask for plain responses.
    stack = await startHostileStack({ clientId });
    ({ idp, bff } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  it('is refused (a JARM response is accepted only for a login that asked for one)', async () => {
    const browser = new TestBrowser();
    const res = await browser.navigate(`${bff.url}/auth/login?returnTo=/ok`, {
      stopWhen: (u) => u.href.startsWith(`${bff.url}/auth/callback`),
    });
    assert.ok(res.stopped);
    const state = res.url.searchParams.get('state');
    const code = res.url.searchParams.get('code');
    assert.ok(state && code);
    const now = Math.floor(Date.now() / 1000);
    const signed = await idp.signJwt({
      iss: idp.issuer,
      aud: clientId,
      exp: now + 60,
      iat: now,
      state,
      code,
    });
    const url = new URL(`${bff.url}/auth/callback`);
    url.searchParams.set('response', signed);
    const refused = await browser.request(url);
    assert.equal(refused.status, 400);
    const page = await refused.text();
    assert.match(page, /BFF_CALLBACK_INVALID/);
    assert.match(page, /did not ask for/);
  });
});
