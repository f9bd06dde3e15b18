/**
 * Interoperability with Glewlwyd 2.7 (https://github.com/babelouest/glewlwyd), a second,
 * independently written OAuth 2.0 / OpenID Connect server: full logins through the BFF configured
 * with MS_BFF_IDP_PRESET=glewlwyd and the client's credentials only, in a matrix of client
 * authentication (private_key_jwt with our jwks_uri, client_secret_basic), DPoP, JAR and JARM, then
 * refresh with rotation, RP-initiated logout with revocation and back-channel logout.
 * The JARM modes that need a real browser (form_post.jwt, fragment.jwt) are in glewlwyd-browser.test.ts.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import {
  type ClientKey,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, errorCode } from '../helpers/flows.js';
import {
  type Glewlwyd,
  glewlwydClient,
  glewlwydUnavailable,
  loginUntilCallback,
  startGlewlwyd,
} from '../helpers/glewlwyd.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';
import { TestBrowser } from '../helpers/test-browser.js';

const skip = glewlwydUnavailable() ?? false;
/** Glewlwyd's tokens live 3600 s; sessions in these tests must outlive a clock jump past that. */
const LONG_SESSIONS = { MS_BFF_SESSION_IDLE_TIMEOUT: '86400', MS_BFF_SESSION_ABSOLUTE_TIMEOUT: '172800' };

interface Bff {
  bff: RunningBff;
  clientId: string;
  /** Moves the BFF's clock (not the IdP's): makes access tokens stale without sleeping. */
  advance(seconds: number): void;
}

async function login(glw: Glewlwyd, bff: RunningBff, clientId: string, browser = new TestBrowser()) {
  const cb = await loginUntilCallback(glw, browser, bff.url, clientId);
  const callback = await browser.request(cb.url, cb.pending ?? {});
  assert.equal(callback.status, 302, `callback: ${callback.status} ${await callback.text()}`);
  assert.equal(callback.location?.pathname, '/after');
  const session = await apiCall(browser, bff.url, '/auth/session');
  assert.equal(session.status, 200, await session.text());
  return browser;
}

/** The user's refresh tokens for a client at Glewlwyd (OIDC.md "List refresh tokens"). */
async function refreshTokens(glw: Glewlwyd, browser: TestBrowser, clientId: string) {
  const res = await browser.request(`${glw.origin}/api/oidc/token?limit=100`);
  assert.equal(res.status, 200, await res.text());
  const all = await res.json<{ client_id: string; enabled: boolean }[]>();
  return all.filter((t) => t.client_id === clientId);
}

/** The outcome of the first back-channel logout request the BFF received (bounded wait). */
async function backchannelOutcome(bff: RunningBff): Promise<string | undefined> {
  const metric = bff.metrics.registry.getSingleMetric('bff_backchannel_logouts_total');
  for (let i = 0; i < 100; i++) {
    const values = (await metric?.get())?.values ?? [];
    const seen = values.find((v) => v.value > 0);
    if (seen) return String(seen.labels.outcome);
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

describe('Glewlwyd 2.7 with MS_BFF_IDP_PRESET=glewlwyd', { skip }, () => {
  let glw: Glewlwyd;
  let upstream: RecordingUpstream;
  const running: RunningBff[] = [];

  /** Registers a client at Glewlwyd and starts a BFF for it with the preset and `env`. */
  async function bffFor(
    clientId: string,
    auth: 'private_key_jwt' | 'client_secret_basic',
    env: Record<string, string> = {},
    clientExtra: Record<string, unknown> = {},
    idpLogger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
  ): Promise<Bff> {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    // Letters and digits only: Glewlwyd does not URL-decode HTTP Basic credentials (docs/interop/glewlwyd.md).
    const secret = `s${clientId}secret0123456789`;
    const key: ClientKey | undefined = auth === 'private_key_jwt' ? await makeClientKey('ES256') : undefined;
    await glw.addClient(
      glewlwydClient(
        clientId,
        publicUrl,
        auth === 'private_key_jwt' ? { method: auth } : { method: auth, secret },
        clientExtra,
      ),
    );
    let skewMs = 0;
    const bff = await startBff({
      port,
      issuer: glw.issuer,
      clientId,
      ...(key ? { key } : {}),
      routes: { echo: upstream.url },
      clock: () => Date.now() + skewMs,
      ...(idpLogger ? { idpLogger } : {}),
      env: {
        MS_BFF_IDP_PRESET: 'glewlwyd',
        ...(auth === 'client_secret_basic'
          ? { MS_BFF_TOKEN_AUTH_METHOD: auth, OIDC_CLIENT_SECRET: secret }
          : {}),
        ...LONG_SESSIONS,
        ...env,
      },
    });
    running.push(bff);
    return {
      bff,
      clientId,
      advance: (seconds) => {
        skewMs += seconds * 1000;
      },
    };
  }

  before(async () => {
    glw = await startGlewlwyd();
    upstream = await startRecordingUpstream();
  });
  after(async () => {
    for (const bff of running) await bff.close();
    await upstream?.close();
    await glw?.close();
  });

  it('private_key_jwt (our jwks_uri): login, API call, refresh with rotation, RP-initiated logout with revocation', async () => {
    const { bff, clientId, advance } = await bffFor('bffpkj', 'private_key_jwt');
    const browser = await login(glw, bff, clientId);

    upstream.requests.length = 0;
    assert.equal((await apiCall(browser, bff.url, '/api/echo/one')).status, 200);
    const first = upstream.requests[0]?.headers.authorization;
    assert.match(String(first), /^Bearer /);
    assert.deepEqual(
      (await refreshTokens(glw, browser, clientId)).map((t) => t.enabled),
      [true],
      'one refresh token after login',
    );

    // Past the access token's 3600 s: the BFF refreshes; Glewlwyd rotates the refresh token.
    advance(3600);
    assert.equal((await apiCall(browser, bff.url, '/api/echo/two')).status, 200);
    const second = upstream.requests[1]?.headers.authorization;
    assert.notEqual(second, first, 'a new access token after the refresh');
    let tokens = await refreshTokens(glw, browser, clientId);
    assert.equal(tokens.length, 2, 'rotation issued a second refresh token');
    assert.equal(tokens.filter((t) => t.enabled).length, 1, 'and disabled the first');
    // The rotated token was stored: another refresh works with it.
    advance(3600);
    assert.equal((await apiCall(browser, bff.url, '/api/echo/three')).status, 200);
    tokens = await refreshTokens(glw, browser, clientId);
    assert.equal(tokens.length, 3);
    assert.equal(tokens.filter((t) => t.enabled).length, 1);

    // RP-initiated logout: the BFF revokes the refresh token (RFC 7009) and sends the browser to
    // Glewlwyd's end_session_endpoint with id_token_hint and our post_logout_redirect_uri.
    const logout = await apiCall(browser, bff.url, '/auth/logout', { method: 'POST' });
    assert.equal(logout.status, 302, await logout.text());
    const endSession = logout.location;
    assert.equal(endSession?.href.startsWith(`${glw.issuer}/end_session`), true, String(endSession));
    assert.ok(endSession?.searchParams.get('id_token_hint'));
    assert.equal(endSession?.searchParams.get('post_logout_redirect_uri'), `${bff.url}/`);
    assert.equal(
      (await refreshTokens(glw, browser, clientId)).filter((t) => t.enabled).length,
      0,
      'the revocation disabled the refresh token at Glewlwyd',
    );
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 401);
    // Glewlwyd shows its logout page; confirming it ends the IdP session and returns to the BFF.
    const page = await browser.navigate(endSession, { stopWhen: (u) => u.pathname.endsWith('/login.html') });
    assert.ok(page.stopped, `end_session went to ${page.url}`);
    const sid = page.url.searchParams.get('sid');
    assert.ok(sid, `no sid on ${page.url}`);
    // Our post_logout_redirect_uri was accepted: the page returns there once the user confirms.
    assert.equal(page.url.searchParams.get('callback_url'), `${bff.url}/`);
    const confirm = await browser.request(`${glw.issuer}/session/${sid}/`, { method: 'DELETE' });
    assert.equal(confirm.status, 200, await confirm.text());
  });

  it('client_secret_basic: login and refresh', async () => {
    const { bff, clientId, advance } = await bffFor('bffbasic', 'client_secret_basic');
    const browser = await login(glw, bff, clientId);
    advance(3600);
    assert.equal((await apiCall(browser, bff.url, '/api/echo/basic')).status, 200);
    assert.equal((await refreshTokens(glw, browser, clientId)).length, 2, 'refreshed');
  });

  it('DPoP: the code is bound at PAR, tokens are DPoP-bound, refresh keeps the binding', async () => {
    const { bff, clientId, advance } = await bffFor('bffdpop', 'private_key_jwt', {
      MS_BFF_DPOP_ENABLED: 'true',
    });
    const browser = await login(glw, bff, clientId);
    upstream.requests.length = 0;
    assert.equal((await apiCall(browser, bff.url, '/api/echo/dpop')).status, 200);
    assert.match(String(upstream.requests[0]?.headers.authorization), /^DPoP /);
    assert.ok(upstream.requests[0]?.headers.dpop, 'a proof for the upstream');
    advance(3600);
    assert.equal((await apiCall(browser, bff.url, '/api/echo/dpop2')).status, 200);
    assert.match(String(upstream.requests[1]?.headers.authorization), /^DPoP /);
    assert.notEqual(upstream.requests[1]?.headers.authorization, upstream.requests[0]?.headers.authorization);
  });

  it('JAR: a signed request object pushed through PAR', async () => {
    const { bff, clientId } = await bffFor('bffjar', 'private_key_jwt', { MS_BFF_JAR_ENABLED: 'true' });
    await login(glw, bff, clientId);
  });

  it('JARM (response_mode=jwt): the signed authorization response is verified, with its 3600 s lifetime tolerated', async () => {
    // Glewlwyd ignores response_mode pushed through PAR: the client's response_mode property decides.
    const { bff, clientId } = await bffFor(
      'bffjarm',
      'private_key_jwt',
      { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MODE: 'jwt' },
      { response_mode: 'query.jwt' },
    );
    const browser = new TestBrowser();
    const cb = await loginUntilCallback(glw, browser, bff.url, clientId);
    assert.ok(cb.url.searchParams.get('response'), 'a JARM response');
    assert.equal(cb.url.searchParams.get('code'), null, 'no plain code');
    const callback = await browser.request(cb.url);
    assert.equal(callback.status, 302, await callback.text());
  });

  it('JARM with response_mode only pushed through PAR: Glewlwyd answers in plain query mode, which is refused', async () => {
    const { bff, clientId } = await bffFor('bffjarmpar', 'private_key_jwt', {
      MS_BFF_JARM_ENABLED: 'true',
    });
    const browser = new TestBrowser();
    const cb = await loginUntilCallback(glw, browser, bff.url, clientId);
    assert.equal(cb.url.searchParams.get('response'), null, 'no JARM response');
    assert.ok(cb.url.searchParams.get('code'), 'a plain code instead');
    // Glewlwyd echoes the pushed parameters into the redirect, our client assertion included
    // (docs/interop/glewlwyd.md): single-use by jti and expired within 60 s, but still a fault.
    assert.ok(cb.url.searchParams.has('client_assertion'));
    const callback = await browser.request(cb.url);
    assert.equal(callback.status, 400);
    assert.equal(await errorCode(callback), 'BFF_CALLBACK_INVALID');
  });

  it('JARM without the lifetime tolerance: Glewlwyd’s 3600 s responses are refused', async () => {
    const { bff, clientId } = await bffFor(
      'bffjarmstrict',
      'private_key_jwt',
      { MS_BFF_JARM_ENABLED: 'true', MS_BFF_JARM_MAX_LIFETIME_SECONDS: '600' },
      { response_mode: 'query.jwt' },
    );
    const browser = new TestBrowser();
    const cb = await loginUntilCallback(glw, browser, bff.url, clientId);
    const callback = await browser.request(cb.url);
    assert.equal(await errorCode(callback), 'BFF_CALLBACK_INVALID');
    const failures = await bff.metrics.registry.getSingleMetric('jarm_validation_failures_total')?.get();
    assert.deepEqual(
      failures?.values.filter((v) => v.value > 0).map((v) => v.labels.reason),
      ['lifetime'],
      'refused for its lifetime only',
    );
  });

  for (const requireExp of [false, true]) {
    it(`back-channel logout ${requireExp ? 'refused without the tolerance (no exp)' : 'ends the session with the tolerance'}`, async () => {
      const { bff, clientId } = await bffFor(
        requireExp ? 'bffbclstrict' : 'bffbcl',
        'private_key_jwt',
        requireExp ? { MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP: 'true' } : {},
      );
      const browser = await login(glw, bff, clientId);
      // The user signs out at Glewlwyd itself: its logout page confirms with DELETE /session/<sid>/,
      // and Glewlwyd posts a logout token to our backchannel_logout_uri. The sid is the ID token's.
      const cookie = browser.cookie(bff.url, '__Host-bff-session')?.value;
      const idToken = (await bff.services.sessions.load(cookie))?.data.idToken;
      const sid = idToken ? decodeJwt(idToken).sid : undefined;
      assert.equal(typeof sid, 'string', 'Glewlwyd puts sid in ID tokens (session management on)');
      const confirm = await browser.request(`${glw.issuer}/session/${String(sid)}/`, { method: 'DELETE' });
      assert.equal(confirm.status, 200, await confirm.text());
      // Glewlwyd delivers the logout token from a thread after answering: wait for it (bounded).
      assert.equal(await backchannelOutcome(bff), requireExp ? 'invalid' : 'success');
      const session = await apiCall(browser, bff.url, '/auth/session');
      assert.equal(session.status, requireExp ? 200 : 401, await session.text());
    });
  }

  it('diagnostics: without the endpoint audience, PAR fails and the log names endpoint, status and hint', async () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const { bff } = await bffFor(
      'bffaud',
      'private_key_jwt',
      { MS_BFF_CLIENT_ASSERTION_AUD: 'issuer' },
      {},
      {
        warn: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }),
        info: () => undefined,
      },
    );
    const start = await new TestBrowser().request(`${bff.url}/auth/login?returnTo=%2F`);
    assert.equal(start.status, 502, await start.text());
    const failure = lines.find((l) => l.msg === 'IdP par request failed')?.obj.idp as
      Record<string, unknown> | undefined;
    assert.ok(failure, `no diagnostic line: ${JSON.stringify(lines)}`);
    assert.equal(failure.endpoint, 'par');
    assert.equal(failure.url, `${glw.issuer}/par`);
    assert.equal(failure.status, 401);
    assert.equal(failure.library_code, 'OAUTH_RESPONSE_IS_NOT_JSON');
    assert.match(String(failure.hint), /MS_BFF_CLIENT_ASSERTION_AUD/);
  });
});
