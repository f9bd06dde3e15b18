/**
 * OpenID Connect Back-Channel Logout 1.0: the real oidc-provider delivers a logout token to one of
 * two BFF instances sharing Redis, and the session ends on both. Then every rule of §2.6 against
 * logout tokens a correct IdP would never send (signed with the hostile IdP's own keys).
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { clientMetadata, freePort, makeClientKey, type RunningBff } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { type HostileStack, startBffPair, startHostileStack } from '../helpers/stack.js';
import { confirmEndSession, TestBrowser } from '../helpers/test-browser.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe('back-channel logout from oidc-provider across two instances on one Redis', () => {
  let idp: DevIdp;
  let a: RunningBff;
  let b: RunningBff;

  before(async () => {
    const portA = await freePort();
    const portB = await freePort();
    const key = await makeClientKey('ES256');
    const meta = {
      ...clientMetadata('bff-bcl', `http://127.0.0.1:${portA}`, key),
      backchannel_logout_uri: `http://127.0.0.1:${portA}/auth/backchannel-logout`,
      backchannel_logout_session_required: true,
    };
    idp = await startDevIdp({ clients: [meta] });
    [a, b] = await startBffPair({
      ports: [portA, portB],
      prefix: 'bff-bcl',
      issuer: idp.issuer,
      clientId: 'bff-bcl',
      key,
    });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await idp?.close();
  });

  it('ends the session on both instances when the IdP session ends', async () => {
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, a.url, idp)).status, 302);
    const cookie = browser.cookie(a.url, '__Host-bff-session')?.value ?? '';
    const onB = new TestBrowser();
    onB.setCookie(b.url, '__Host-bff-session', cookie);
    assert.equal(
      (await apiCall(onB, b.url, '/auth/session')).status,
      200,
      'the session is visible on instance B',
    );

    // The user signs out at the IdP directly (another application, say): no BFF request involved.
    const done = await confirmEndSession(browser, new URL(`${idp.issuer}/session/end`));
    assert.ok(done.response.status < 400);

    assert.equal((await apiCall(browser, a.url, '/auth/session')).status, 401, 'ended on A');
    assert.equal((await apiCall(onB, b.url, '/auth/session')).status, 401, 'ended on B');
    const metrics = await (await browser.request(`${a.url}/metrics`)).text();
    assert.match(metrics, /bff_backchannel_logouts_total\{outcome="success",frontend="default"\} 1/);
  });
});

describe('logout token rules (OIDC BCL 1.0 §2.6) against a hostile IdP', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let stack: HostileStack;
  const clientId = 'bff-bcl-hostile';

  before(async () => {
    stack = await startHostileStack({ clientId });
    ({ idp, bff } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  const now = () => Math.floor(Date.now() / 1000);
  const valid = () => ({
    iss: idp.issuer,
    aud: clientId,
    iat: now(),
    exp: now() + 120,
    jti: randomUUID(),
    sid: 'hostile-sid',
    events: { [EVENT]: {} },
  });

  async function post(token: string, extra = '') {
    const res = await new TestBrowser().request(`${bff.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `logout_token=${encodeURIComponent(token)}${extra}`,
    });
    return { status: res.status, cache: res.headers.get('cache-control'), body: await res.text() };
  }

  it('ends the session of a valid logout token (and answers 200, no-store)', async () => {
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.href === `${bff.url}/`,
    });
    assert.ok(start.stopped, 'the login went through the hostile IdP back to returnTo');
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 200);
    const res = await post(
      await idp.signJwt(
        { ...valid(), sid: undefined, sub: 'hostile-user' },
        { header: { typ: 'logout+jwt' } },
      ),
    );
    assert.equal(res.status, 200);
    assert.equal(res.cache, 'no-store');
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 401);
  });

  const cases: [string, () => Promise<string>, string][] = [
    [
      'alg none',
      async () =>
        `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(valid())).toString('base64url')}.`,
      '',
    ],
    ['alg RS256 (not the pinned alg)', () => idp.signJwt(valid(), { alg: 'RS256' }), ''],
    ['alg ES256 (not the pinned PS256)', () => idp.signJwt(valid(), { alg: 'ES256' }), ''],
    ['a signature by an unpublished key', () => idp.signJwt(valid(), { unpublishedKey: true }), ''],
    ['wrong iss', () => idp.signJwt({ ...valid(), iss: 'http://evil.example' }), 'iss'],
    ['wrong aud', () => idp.signJwt({ ...valid(), aud: 'someone-else' }), 'aud'],
    ['no events', () => idp.signJwt({ ...valid(), events: undefined }), 'events_missing'],
    [
      'the wrong event',
      () => idp.signJwt({ ...valid(), events: { 'http://example.com/other': {} } }),
      'events_wrong',
    ],
    ['a nonce (an ID token)', () => idp.signJwt({ ...valid(), nonce: 'n' }), 'nonce_present'],
    ['neither sid nor sub', () => idp.signJwt({ ...valid(), sid: undefined }), 'sid_and_sub_missing'],
    ['no jti', () => idp.signJwt({ ...valid(), jti: undefined }), ''],
    ['an iat a day old', () => idp.signJwt({ ...valid(), iat: now() - 86_400 }), 'iat_too_old'],
    ['expired', () => idp.signJwt({ ...valid(), iat: now() - 200, exp: now() - 100 }), ''],
    ['typ of another JWT kind', () => idp.signJwt(valid(), { header: { typ: 'at+jwt' } }), 'typ'],
    // An unknown `crit` cannot even be signed with jose; the shared policy's unit tests cover it.
    [
      'a jku header',
      () => idp.signJwt(valid(), { header: { jku: 'http://127.0.0.1:1/evil-jwks' } }),
      'untrusted_key_reference',
    ],
  ];
  for (const [name, make, reason] of cases) {
    it(`refuses a logout token with ${name} (400, no-store)`, async () => {
      const res = await post(await make());
      assert.equal(res.status, 400, res.body);
      assert.equal(res.cache, 'no-store');
      if (reason) assert.match(res.body, new RegExp(reason));
    });
  }

  it('refuses a replayed logout token', async () => {
    const token = await idp.signJwt(valid());
    assert.equal((await post(token)).status, 200);
    const again = await post(token);
    assert.equal(again.status, 400);
    assert.match(again.body, /replay/);
  });

  it('refuses a missing or duplicated logout_token parameter', async () => {
    const token = await idp.signJwt(valid());
    assert.equal((await post(token, `&logout_token=${encodeURIComponent(token)}`)).status, 400);
    const empty = await new TestBrowser().request(`${bff.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    assert.equal(empty.status, 400);
  });
});
