/**
 * The demo upstream API (src/dev/demo-api.ts) accepts only JWT access tokens (RFC 9068) from the dev
 * IdP for its audience, and answers everything else with a Bearer invalid_token challenge.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK } from 'jose';
import * as client from 'openid-client';
import { type DemoApi, startDemoApi } from '../../src/dev/demo-api.js';
import type { DevIdp } from '../../src/dev/idp.js';
import { startDevIdpWithClient } from '../helpers/oidc-client.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-demo-api-test';
const REDIRECT_URI = 'http://127.0.0.1:9/auth/callback';
const AUDIENCE = 'https://demo-api.fapi-bff.test';

/**
 * The dev IdP with one private_key_jwt client (signing with `alg`), the demo API for AUDIENCE, and
 * that client's openid-client configuration.
 */
async function startDemoApiStack(alg: 'PS256' | 'ES256', grantTypes: string[]) {
  const { idp, config } = await startDevIdpWithClient({
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    alg,
    metadata: { grant_types: grantTypes, response_types: ['code'], id_token_signed_response_alg: 'PS256' },
    idp: { resourceAudience: AUDIENCE },
  });
  const api = await startDemoApi({ issuer: idp.issuer, audience: AUDIENCE });
  return { idp, api, config };
}

/** PAR with PKCE, then alice's login at the dev IdP: the redirect back, and the PKCE verifier. */
async function authorizeAsAlice(
  config: client.Configuration,
  params: { scope: string; nonce?: string },
  DPoP?: client.DPoPHandle,
): Promise<{ url: URL; codeVerifier: string }> {
  const codeVerifier = client.randomPKCECodeVerifier();
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri: REDIRECT_URI,
      scope: params.scope,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      ...(params.nonce ? { nonce: params.nonce } : {}),
    },
    DPoP ? { DPoP } : undefined,
  );
  const { url } = await loginAtDevIdp(new TestBrowser(), authorizationUrl, 'alice', 'alice-password', (u) =>
    u.href.startsWith(REDIRECT_URI),
  );
  return { url, codeVerifier };
}

describe('demo API', () => {
  let idp: DevIdp;
  let api: DemoApi;
  let config: client.Configuration;
  let accessToken: string;
  let idToken: string;

  before(async () => {
    ({ idp, api, config } = await startDemoApiStack('PS256', ['authorization_code', 'refresh_token']));
    const nonce = client.randomNonce();
    const { url, codeVerifier } = await authorizeAsAlice(config, {
      scope: 'openid profile email offline_access api:read',
      nonce,
    });
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: codeVerifier,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    accessToken = tokens.access_token;
    idToken = tokens.id_token!;
  });

  after(async () => {
    await api?.close();
    await idp?.close();
  });

  const whoami = (authorization?: string) =>
    fetch(`${api.url}/whoami`, {
      headers: authorization ? { authorization } : {},
      signal: AbortSignal.timeout(5_000),
    });

  it('the dev IdP issues RFC 9068 access tokens for the configured audience', () => {
    const header = decodeProtectedHeader(accessToken);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'PS256');
    const payload = decodeJwt(accessToken);
    assert.equal(payload.aud, AUDIENCE);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.scope, 'api:read');
    // With the access token bound to the API, user claims must come from the ID token.
    assert.equal(decodeJwt(idToken).email, 'alice@example.com');
  });

  it('answers a valid access token with who the caller is, never the token', async () => {
    const response = await whoami(`Bearer ${accessToken}`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.ok(!text.includes(accessToken));
    const body = JSON.parse(text) as Record<string, unknown>;
    assert.equal(body.sub, 'alice');
    assert.equal(body.client_id, CLIENT_ID);
    assert.equal(body.aud, AUDIENCE);
    assert.equal(body.scope, 'api:read');
    assert.equal(typeof body.exp, 'number');
    assert.ok(!Number.isNaN(Date.parse(String(body.receivedAt))));
  });

  it('accepts the access token from a refresh too', async () => {
    const { url, codeVerifier } = await authorizeAsAlice(config, { scope: 'openid offline_access api:read' });
    const tokens = await client.authorizationCodeGrant(config, url, { pkceCodeVerifier: codeVerifier });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    const response = await whoami(`Bearer ${refreshed.access_token}`);
    assert.equal(response.status, 200);
  });

  for (const [label, authorization] of [
    ['no Authorization header', undefined],
    ['a garbage token', 'Bearer not-a-jwt'],
    ['a non-Bearer scheme', 'Basic YWxpY2U6cGFzc3dvcmQ='],
  ] as const) {
    it(`answers ${label} with 401 and a Bearer invalid_token challenge`, async () => {
      const response = await whoami(authorization);
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_token');
    });
  }

  it('refuses an ID token presented as an access token (typ is not at+jwt)', async () => {
    const response = await whoami(`Bearer ${idToken}`);
    assert.equal(response.status, 401);
  });

  it('refuses an access token for another audience', async () => {
    const other = await startDemoApi({ issuer: idp.issuer, audience: 'https://other-api.fapi-bff.test' });
    try {
      const response = await fetch(`${other.url}/whoami`, {
        headers: { authorization: `Bearer ${accessToken}` },
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(response.status, 401);
    } finally {
      await other.close();
    }
  });
});

describe('demo API with DPoP-bound access tokens (RFC 9449)', () => {
  let idp: DevIdp;
  let api: DemoApi;
  let config: client.Configuration;
  let accessToken: string;
  let key: CryptoKeyPair;
  let jkt: string;

  before(async () => {
    ({ idp, api, config } = await startDemoApiStack('ES256', ['authorization_code']));
    key = await client.randomDPoPKeyPair('ES256');
    jkt = await calculateJwkThumbprint(await exportJWK(key.publicKey));
    const DPoP = client.getDPoPHandle(config, key);
    const { url, codeVerifier } = await authorizeAsAlice(config, { scope: 'openid api:read' }, DPoP);
    const tokens = await client.authorizationCodeGrant(
      config,
      url,
      { pkceCodeVerifier: codeVerifier },
      undefined,
      { DPoP },
    );
    assert.equal(tokens.token_type, 'dpop');
    accessToken = tokens.access_token;
  });

  after(async () => {
    await api?.close();
    await idp?.close();
  });

  /** A call with a proof from `proofKey` (openid-client builds the proof: htm, htu, ath, iat, jti). */
  async function call(proofKey: CryptoKeyPair) {
    const response = await client.fetchProtectedResource(
      config,
      accessToken,
      new URL(`${api.url}/whoami`),
      'GET',
      undefined,
      undefined,
      { DPoP: client.getDPoPHandle(config, proofKey) },
    );
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("describes the binding: DPoP, proof verified, cnf.jkt = the proof key's thumbprint", async () => {
    const { status, body } = await call(key);
    assert.equal(status, 200);
    assert.equal(body.tokenType, 'DPoP');
    assert.match(String(body.binding), /^DPoP: proof verified/);
    assert.deepEqual(body.cnf, { jkt });
    assert.ok(!JSON.stringify(body).includes(accessToken), 'never the token');
  });

  it('refuses a proof signed by another key (the token is bound to its cnf.jkt)', async () => {
    // openid-client surfaces the API's 401 and its WWW-Authenticate challenge as an error.
    await assert.rejects(
      call(await client.randomDPoPKeyPair('ES256')),
      (err: { name?: string; status?: number }) =>
        err.name === 'WWWAuthenticateChallengeError' && err.status === 401,
    );
  });

  it('refuses the DPoP-bound token presented as Bearer (RFC 9449 §7.2)', async () => {
    const response = await fetch(`${api.url}/whoami`, {
      headers: { authorization: `Bearer ${accessToken}` },
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(response.status, 401);
  });

  it('refuses the DPoP scheme without a proof', async () => {
    const response = await fetch(`${api.url}/whoami`, {
      headers: { authorization: `DPoP ${accessToken}` },
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(response.status, 401);
  });
});
