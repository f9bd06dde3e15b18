/**
 * The embedded development IdP (src/dev/idp.ts) on its own, driven by openid-client v6 the way the
 * BFF drives it: discovery, PAR + PKCE + nonce with private_key_jwt, refresh rotation, revocation,
 * RP-initiated and back-channel logout.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as client from 'openid-client';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { startDevIdpWithClient } from '../helpers/oidc-client.js';
import { confirmEndSession, loginAtDevIdp, parseForms, TestBrowser } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-dev-idp-test';
/** Never requested: every flow stops at the callback and hands the URL to openid-client. */
const REDIRECT_URI = 'http://127.0.0.1:9/auth/callback';
const POST_LOGOUT_URI = 'http://127.0.0.1:9/signed-out';
const SCOPE = 'openid profile email offline_access';

interface LoginResult {
  tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  browser: TestBrowser;
}

/** Where every flow stops: the authorization response at the client's redirect URI. */
const atCallback = (u: URL) => u.href.startsWith(REDIRECT_URI);

/**
 * A pushed authorization request (RFC 9126 §2, https://www.rfc-editor.org/rfc/rfc9126#section-2)
 * with PKCE S256 for `codeVerifier`; `params` over the basics.
 */
async function parAuthorizationUrl(
  config: client.Configuration,
  params: Record<string, string> = {},
  codeVerifier = client.randomPKCECodeVerifier(),
): Promise<URL> {
  return client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...params,
  });
}

describe('development IdP', () => {
  let idp: DevIdp;
  let config: client.Configuration;
  const logoutTokens: string[] = [];
  const backchannel = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      logoutTokens.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') ?? '');
      res.writeHead(200).end();
    });
  });

  before(async () => {
    backchannel.listen(0, '127.0.0.1');
    await once(backchannel, 'listening');
    const backchannelUri = `http://127.0.0.1:${(backchannel.address() as AddressInfo).port}/backchannel`;

    ({ idp, config } = await startDevIdpWithClient({
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      metadata: {
        post_logout_redirect_uris: [POST_LOGOUT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        id_token_signed_response_alg: 'PS256',
        backchannel_logout_uri: backchannelUri,
        backchannel_logout_session_required: true,
      },
    }));
  });

  after(async () => {
    await idp?.close();
    backchannel.closeAllConnections();
    backchannel.close();
  });

  async function login(): Promise<LoginResult> {
    const codeVerifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const authorizationUrl = await parAuthorizationUrl(config, { nonce, state }, codeVerifier);
    assert.match(
      authorizationUrl.searchParams.get('request_uri') ?? '',
      /^urn:ietf:params:oauth:request_uri:/,
    );
    const browser = new TestBrowser();
    const { url } = await loginAtDevIdp(browser, authorizationUrl, 'alice', 'alice-password', atCallback);
    // RFC 9207 §2: the authorization response names the issuer.
    assert.equal(url.searchParams.get('iss'), idp.issuer);
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: codeVerifier,
      expectedNonce: nonce,
      expectedState: state,
      idTokenExpected: true,
    });
    return { tokens, browser };
  }

  it('publishes FAPI 2.0 metadata', () => {
    const metadata = config.serverMetadata();
    assert.equal(metadata.issuer, idp.issuer);
    assert.equal(metadata.pushed_authorization_request_endpoint, `${idp.issuer}/request`);
    assert.equal(metadata.require_pushed_authorization_requests, true);
    assert.ok(metadata.code_challenge_methods_supported?.includes('S256'));
    assert.equal(metadata.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(metadata.response_types_supported, ['code']);
    assert.ok(metadata.token_endpoint_auth_methods_supported?.includes('private_key_jwt'));
    assert.ok(!metadata.token_endpoint_auth_methods_supported?.includes('none'));
    assert.deepEqual(metadata.id_token_signing_alg_values_supported, ['PS256', 'ES256']);
    assert.ok(metadata.end_session_endpoint);
    assert.ok(metadata.revocation_endpoint);
    assert.equal(metadata.backchannel_logout_supported, true);
  });

  it('logs in with PAR, PKCE, nonce and private_key_jwt; the ID token is PS256 with sid and claims', async () => {
    const { tokens } = await login();
    assert.equal(decodeProtectedHeader(tokens.id_token!).alg, 'PS256');
    const claims = tokens.claims()!;
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.email, 'alice@example.com');
    assert.equal(claims.name, 'Alice Example');
    assert.equal(typeof claims.sid, 'string');
    assert.ok(tokens.refresh_token, 'a refresh token for the authorization code grant');
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok((tokens.expires_in ?? 0) > 0 && (tokens.expires_in ?? 0) <= 300);
  });

  it('rotates refresh tokens and revokes the grant when a rotated one is reused', async () => {
    const { tokens } = await login();
    const first = tokens.refresh_token!;
    const refreshed = await client.refreshTokenGrant(config, first);
    assert.ok(refreshed.refresh_token);
    assert.notEqual(refreshed.refresh_token, first);
    await assert.rejects(client.refreshTokenGrant(config, first), { error: 'invalid_grant' });
    // RFC 9700 §4.14.2: reuse means theft, so the whole grant, including the new token, is gone.
    await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token!), {
      error: 'invalid_grant',
    });
  });

  it('revokes a refresh token (RFC 7009)', async () => {
    const { tokens } = await login();
    await client.tokenRevocation(config, tokens.refresh_token!);
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), { error: 'invalid_grant' });
  });

  it('refuses an authorization request that did not go through PAR', async () => {
    const plain = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: client.randomState(),
    });
    const result = await new TestBrowser().navigate(plain, { stopWhen: atCallback });
    const error = result.stopped
      ? result.url.searchParams.get('error')
      : (await result.response.text()).match(/invalid_request/)?.[0];
    assert.equal(error, 'invalid_request');
    assert.equal(result.url.searchParams.get('code'), null);
  });

  it('re-shows the login form after a wrong password, then accepts the right one', async () => {
    const authorizationUrl = await parAuthorizationUrl(config);
    const browser = new TestBrowser();
    const stopWhen = atCallback;
    const loginPage = await browser.navigate(authorizationUrl, { stopWhen });
    const html = await loginPage.response.text();
    assert.match(html, /fapi-bff development IdP/);
    assert.match(loginPage.response.headers.get('content-security-policy') ?? '', /default-src 'none'/);

    const wrong = await browser.submitForm(
      html,
      loginPage.url,
      { username: 'alice', password: 'not-her-password' },
      { stopWhen },
    );
    assert.equal(wrong.stopped, false);
    const wrongHtml = await wrong.response.text();
    assert.match(wrongHtml, /Invalid username or password/);
    assert.ok(parseForms(wrongHtml, wrong.url).some((f) => f.action.pathname.endsWith('/login')));

    const right = await browser.submitForm(
      wrongHtml,
      wrong.url,
      { username: 'alice', password: 'alice-password' },
      { stopWhen },
    );
    assert.equal(right.stopped, true);
    assert.ok(right.url.searchParams.get('code'));
  });

  it('ends the session with a confirmation form and notifies the client over back-channel logout', async () => {
    const { tokens, browser } = await login();
    const sid = tokens.claims()!.sid;
    const endSessionUrl = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: 'after-logout',
    });
    const before = logoutTokens.length;
    const result = await confirmEndSession(browser, endSessionUrl, {
      stopWhen: (u) => u.href.startsWith(POST_LOGOUT_URI),
    });
    assert.equal(result.stopped, true);
    assert.equal(result.url.searchParams.get('state'), 'after-logout');
    // The provider awaits back-channel delivery before redirecting, so the token is already here.
    assert.equal(logoutTokens.length, before + 1);
    const logoutToken = logoutTokens.at(-1)!;
    assert.equal(decodeProtectedHeader(logoutToken).typ, 'logout+jwt');
    assert.equal(decodeJwt(logoutToken).sid, sid);
    assert.equal(browser.cookie(idp.issuer, 'devidp_session'), undefined);
    // Logging out revoked the grant, so the refresh token is dead too.
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), { error: 'invalid_grant' });
  });

  it('fails fast at startup on invalid client metadata', async () => {
    await assert.rejects(
      startDevIdp({ clients: [{ client_id: 'broken', redirect_uris: ['not a url'] }] }),
      /invalid metadata for client "broken"/,
    );
  });
});

describe('development IdP with a consent page', () => {
  let idp: DevIdp;
  let config: client.Configuration;

  before(async () => {
    ({ idp, config } = await startDevIdpWithClient({
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      idp: { consent: 'form' },
    }));
  });

  after(() => idp?.close());

  async function consentPage(browser: TestBrowser) {
    const login = await browser.navigate(await parAuthorizationUrl(config));
    const consent = await browser.submitForm(
      await login.response.text(),
      login.url,
      { username: 'alice', password: 'alice-password' },
      { action: /\/login$/ },
    );
    const html = await consent.response.text();
    assert.match(html, /Allow access\?/);
    return { html, url: consent.url };
  }

  it('denying consent returns access_denied to the client', async () => {
    const browser = new TestBrowser();
    const { html, url } = await consentPage(browser);
    const denied = await browser.submitForm(html, url, {}, { action: /\/abort$/, stopWhen: atCallback });
    assert.equal(denied.stopped, true);
    assert.equal(denied.url.searchParams.get('error'), 'access_denied');
    assert.equal(denied.url.searchParams.get('iss'), idp.issuer);
  });

  it('allowing consent returns a code; loginAtDevIdp answers the consent page too', async () => {
    const browser = new TestBrowser();
    const { html, url } = await consentPage(browser);
    const allowed = await browser.submitForm(html, url, {}, { action: /\/confirm$/, stopWhen: atCallback });
    assert.ok(allowed.url.searchParams.get('code'));

    const viaHelper = await loginAtDevIdp(
      new TestBrowser(),
      await parAuthorizationUrl(config),
      'alice',
      'alice-password',
      atCallback,
    );
    assert.ok(viaHelper.url.searchParams.get('code'));
  });
});

describe('TestBrowser cookie jar (test helper)', () => {
  const server = createServer((req, res) => {
    if (req.url === '/set') {
      res.setHeader('Set-Cookie', [
        'keep=1; Path=/; HttpOnly; Secure; SameSite=Strict',
        'scoped=2; Path=/sub',
        'gone=3; Path=/',
        'old=4; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
      ]);
    } else if (req.url === '/delete') {
      res.setHeader('Set-Cookie', ['gone=; Path=/; Max-Age=0']);
    } else if (req.url === '/redirect') {
      res.writeHead(303, { Location: '/echo' }).end();
      return;
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(
      JSON.stringify({ cookie: req.headers.cookie ?? null, site: req.headers['sec-fetch-site'] ?? null }),
    );
  });
  let origin: string;

  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('keeps attributes, honours Path, Max-Age and Expires, and sends Secure cookies over http', async () => {
    const browser = new TestBrowser();
    await browser.request(`${origin}/set`);
    assert.deepEqual(
      { ...browser.cookie(origin, 'keep'), expiresAt: undefined },
      {
        name: 'keep',
        value: '1',
        path: '/',
        domain: undefined,
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
        expiresAt: undefined,
        unparsed: [],
      },
    );
    assert.equal(browser.cookie(origin, 'old'), undefined);
    const root = await (await browser.request(`${origin}/echo`)).json<{ cookie: string }>();
    assert.equal(root.cookie, 'keep=1; gone=3');
    const sub = await (await browser.request(`${origin}/sub/x`)).json<{ cookie: string }>();
    assert.equal(sub.cookie, 'scoped=2; keep=1; gone=3');
    await browser.request(`${origin}/delete`);
    assert.equal(browser.cookie(origin, 'gone'), undefined);
    // Another port is another jar.
    assert.equal(browser.cookie('http://127.0.0.1:9', 'keep'), undefined);
    browser.setCookie(origin, 'planted', 'x');
    assert.match(
      (await (await browser.request(`${origin}/echo`)).json<{ cookie: string }>()).cookie,
      /planted=x/,
    );
    browser.clearCookies(origin);
    assert.equal(browser.cookies(origin).length, 0);
  });

  it('follows a 303 with GET and reports the hops', async () => {
    const browser = new TestBrowser();
    const result = await browser.navigate(`${origin}/redirect`);
    assert.deepEqual(
      result.hops.map((u) => u.pathname),
      ['/redirect', '/echo'],
    );
    assert.equal(result.url.pathname, '/echo');
    assert.equal((await result.response.json<{ site: string }>()).site, 'none');
    const stopped = await browser.navigate(`${origin}/redirect`, { stopWhen: (u) => u.pathname === '/echo' });
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.response.status, 303);
  });
});
