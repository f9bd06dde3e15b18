// Proves the hostile IdP is itself sane, using openid-client v6 directly (no BFF code): a well-behaved FAPI 2.0
// login succeeds against it, and each knob really changes what a strict client sees. Without this, a BFF
// negative test could "pass" only because the helper was broken in some other way.
import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  calculateJwkThumbprint,
  type CryptoKey,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
} from 'jose';
import * as client from 'openid-client';
import { fetch } from 'undici';
import { type HostileIdp, type Misbehaviour, startHostileIdp } from '../helpers/hostile-idp.js';

const CLIENT_ID = 'hostile-selftest';
const CLIENT_SECRET = 'selftest-secret-with-enough-entropy-0123456789';
// Never fetched: the test reads the Location header instead of following it.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const HTTP_TIMEOUT_MS = 5_000;

interface ClientKey {
  key: CryptoKey;
  kid: string;
  publicJwk: object;
}

async function clientKey(): Promise<ClientKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { key: privateKey, kid, publicJwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } };
}

function discover(
  idp: HostileIdp,
  auth: client.ClientAuth,
  metadata: Partial<client.ClientMetadata> = {},
): Promise<client.Configuration> {
  return client.discovery(new URL(idp.issuer), CLIENT_ID, metadata, auth, {
    // http on loopback needs allowInsecureRequests; non-repudiation makes openid-client verify ID token
    // signatures, which it otherwise skips for token-endpoint responses (it trusts TLS).
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: HTTP_TIMEOUT_MS / 1000,
  });
}

interface Authorized {
  callback: URL;
  checks: client.AuthorizationCodeGrantChecks;
}

// PAR + PKCE + nonce + state, then the front-channel hop done with a manual redirect.
async function authorize(config: client.Configuration): Promise<Authorized> {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  await res.body?.cancel();
  assert.equal(res.status, 302, 'the authorization endpoint redirects straight back');
  const location = res.headers.get('location');
  assert.ok(location, 'redirect has a Location');
  return {
    callback: new URL(location),
    checks: { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true },
  };
}

async function login(config: client.Configuration) {
  const { callback, checks } = await authorize(config);
  return client.authorizationCodeGrant(config, callback, checks);
}

// Asserts a rejection and that its message or code mentions what we broke, so an unrelated failure
// (say, a network error) cannot satisfy a negative test.
async function rejects(promise: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof Error, 'rejects with an Error');
    // openid-client spreads the detail over message, code, error, status and cause (a body, a list of
    // WWW-Authenticate challenges, or the raw Response for non-conforming status codes).
    const e = err as Error & { code?: unknown; error?: unknown; status?: unknown; cause?: unknown };
    const cause = e.cause instanceof Response ? `HTTP ${e.cause.status}` : safeJson(e.cause);
    const text = [e.message, e.code, e.error, e.status, cause].join(' | ');
    assert.match(text, pattern);
    return true;
  });
}

function safeJson(value: unknown): string {
  try {
    return value instanceof Error ? value.message : (JSON.stringify(value) ?? '');
  } catch {
    return String(value);
  }
}

const tokenRequests = (idp: HostileIdp) => idp.requests.filter((r) => r.path === '/token');

describe('hostile IdP, private_key_jwt client', () => {
  let idp: HostileIdp;
  let key: ClientKey;
  let auth: client.ClientAuth;
  let config: client.Configuration;

  before(async () => {
    key = await clientKey();
    idp = await startHostileIdp({
      clientId: CLIENT_ID,
      clientJwks: { keys: [key.publicJwk] },
      redirectUris: [REDIRECT_URI],
    });
    auth = client.PrivateKeyJwt({ key: key.key, kid: key.kid });
    config = await discover(idp, auth);
  });
  after(() => idp.close());
  beforeEach(() => {
    idp.misbehave({});
    idp.requests.length = 0;
  });

  test('a well-behaved login completes with PAR, PKCE, nonce and non-repudiation checks', async () => {
    const tokens = await login(config);
    const claims = tokens.claims();
    assert.ok(claims);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.sub, 'hostile-user');
    assert.equal(claims.aud, CLIENT_ID);
    assert.equal(typeof claims.sid, 'string');
    assert.equal(typeof claims.auth_time, 'number');
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.expires_in, 300);
    assert.equal(tokens.scope, 'openid offline_access');
    assert.ok(tokens.access_token && tokens.refresh_token);
    assert.equal(decodeProtectedHeader(tokens.id_token ?? '').alg, 'PS256');

    const par = idp.requests.find((r) => r.path === '/par');
    assert.equal(par?.form?.client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.ok(par?.form?.code_challenge);
    assert.equal(idp.issuedCodes.length > 0, true);
    assert.ok(tokenRequests(idp)[0]?.form?.code_verifier);
  });

  test('refresh tokens rotate: the old one is then invalid_grant', async () => {
    const first = await login(config);
    const second = await client.refreshTokenGrant(config, first.refresh_token ?? '');
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal(second.claims()?.sub, 'hostile-user');
    assert.equal(second.claims()?.nonce, undefined, 'no nonce on refresh (OIDC Core 12.2)');
    await rejects(client.refreshTokenGrant(config, first.refresh_token ?? ''), /invalid_grant/);
    await client.refreshTokenGrant(config, second.refresh_token ?? '');
  });

  test('codes and request_uris are single-use', async () => {
    const { callback, checks } = await authorize(config);
    await client.authorizationCodeGrant(config, callback, checks);
    await rejects(client.authorizationCodeGrant(config, callback, checks), /invalid_grant/);

    const url = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const first = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await first.body?.cancel();
    assert.equal(first.status, 302);
    const again = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await again.body?.cancel();
    assert.equal(again.status, 400);
  });

  test('client authentication and PKCE are really checked', async () => {
    const stranger = await clientKey();
    const wrongKey = await discover(idp, client.PrivateKeyJwt({ key: stranger.key, kid: key.kid }));
    await rejects(authorize(wrongKey), /invalid_client/);

    const { callback, checks } = await authorize(config);
    await rejects(
      client.authorizationCodeGrant(config, callback, {
        ...checks,
        pkceCodeVerifier: client.randomPKCECodeVerifier(),
      }),
      /invalid_grant/,
    );
  });

  test('accessTokenTtlSec and idTokenAlg ES256 change the response but stay valid', async () => {
    idp.misbehave({ accessTokenTtlSec: 7, idTokenAlg: 'ES256' });
    const tokens = await login(config);
    assert.equal(tokens.expires_in, 7);
    assert.equal(decodeProtectedHeader(tokens.id_token ?? '').alg, 'ES256');
  });

  test('idTokenSub, idTokenIat and refreshIdTokenSub are carried into the ID token', async () => {
    // openid-client does not judge these (sub continuity on refresh is the relying party's job), so this only
    // proves the knobs take effect.
    idp.misbehave({ idTokenSub: 'someone-else', idTokenIat: 1_000 });
    const tokens = await login(config);
    assert.equal(tokens.claims()?.sub, 'someone-else');
    assert.equal(tokens.claims()?.iat, 1_000);

    idp.misbehave({ refreshIdTokenSub: 'impostor' });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? '');
    assert.equal(refreshed.claims()?.sub, 'impostor');
  });

  // Each row breaks exactly one thing in the token response; openid-client must refuse the result.
  const idTokenCases: [string, Misbehaviour, RegExp][] = [
    ['wrong nonce', { idTokenNonce: 'wrong' }, /nonce/],
    ['missing nonce', { idTokenNonce: null }, /nonce/],
    ['bad signature', { idTokenBadSignature: true }, /signature/i],
    [
      'signature by an unpublished key with a published kid',
      { idTokenSignWithUnpublishedKey: true },
      /signature/i,
    ],
    ['unknown kid', { idTokenKid: 'no-such-kid' }, /key|kid/i],
    ['alg none', { idTokenAlg: 'none' }, /alg/],
    ['alg HS256 keyed with the client_id', { idTokenAlg: 'HS256' }, /alg/],
    ['alg RS256 (not advertised)', { idTokenAlg: 'RS256' }, /alg/],
    ['wrong aud', { idTokenAud: 'someone-else' }, /aud/],
    ['wrong azp', { idTokenAud: [CLIENT_ID, 'other'], idTokenAzp: 'other' }, /azp/],
    ['wrong iss', { idTokenIss: 'http://evil.example' }, /iss/],
    ['expired', { idTokenExp: Math.floor(Date.now() / 1000) - 3600 }, /exp/],
    ['unknown token_type', { tokenType: 'mac' }, /token_type/],
    ['token endpoint 500', { tokenStatus: 500, tokenError: 'server_error' }, /HTTP 500/],
    ['token endpoint invalid_grant', { tokenError: 'invalid_grant' }, /invalid_grant/],
  ];
  for (const [name, m, pattern] of idTokenCases) {
    test(`token response rejected: ${name}`, async () => {
      idp.misbehave(m);
      const { callback, checks } = await authorize(config);
      await rejects(client.authorizationCodeGrant(config, callback, checks), pattern);
    });
  }

  const authzCases: [string, Misbehaviour, RegExp][] = [
    ['iss from another issuer (RFC 9207)', { authzIss: 'http://evil.example' }, /iss/],
    ['iss omitted though advertised', { authzIss: null }, /iss/],
    ['state replaced', { authzState: 'forged' }, /state/],
    [
      'error instead of code',
      { authzError: { error: 'access_denied', error_description: 'no' } },
      /access_denied/,
    ],
  ];
  for (const [name, m, pattern] of authzCases) {
    test(`authorization response rejected before any token request: ${name}`, async () => {
      idp.misbehave(m);
      const { callback, checks } = await authorize(config);
      await rejects(client.authorizationCodeGrant(config, callback, checks), pattern);
      assert.equal(tokenRequests(idp).length, 0, 'no token request was made');
    });
  }

  test('parStatus makes the pushed authorization request fail', async () => {
    idp.misbehave({ parStatus: 503 });
    await rejects(authorize(config), /HTTP 503/);
    idp.misbehave({ parStatus: 400 });
    await rejects(authorize(config), /invalid_request/);
  });

  test('omitMetadata removes the PAR endpoint from discovery', async () => {
    idp.misbehave({ omitMetadata: ['pushed_authorization_request_endpoint'] });
    const noPar = await discover(idp, auth);
    assert.equal(noPar.serverMetadata().pushed_authorization_request_endpoint, undefined);
    await rejects(authorize(noPar), /pushed_authorization_request_endpoint/);
  });

  test('overrideMetadata replaces metadata values', async () => {
    idp.misbehave({ overrideMetadata: { id_token_signing_alg_values_supported: ['RS256'] } });
    const overridden = await discover(idp, auth);
    assert.deepEqual(overridden.serverMetadata().id_token_signing_alg_values_supported, ['RS256']);
  });

  test('metadataIssuer mismatch fails discovery', async () => {
    idp.misbehave({ metadataIssuer: 'http://evil.example' });
    await rejects(discover(idp, auth), /issuer/);
  });

  test('down makes discovery fail promptly', async () => {
    idp.misbehave({ down: true });
    const started = Date.now();
    await rejects(discover(idp, auth), /fetch failed|socket|ECONNRESET|other side closed/i);
    assert.ok(Date.now() - started < 2_000, 'fails fast instead of waiting for a timeout');
    assert.ok(idp.requests.some((r) => r.path === '/.well-known/openid-configuration'));
  });

  test('garbage input gets errors, never a crash', async () => {
    const post = (path: string, body: string, type = 'application/x-www-form-urlencoded') =>
      fetch(`${idp.issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': type },
        body,
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
    const statuses: number[] = [];
    for (const res of [
      await post('/token', '{"grant_type":"authorization_code"}', 'application/json'),
      await post('/token', 'grant_type=authorization_code&grant_type=refresh_token'),
      await post('/par', 'client_assertion_type=x&client_assertion=not.a.jwt'),
      await post('/par', 'x='.padEnd(100_000, 'a')),
      await post('/revoke', '%%%'),
      await fetch(`${idp.issuer}/authorize?request_uri=nope&client_id=${CLIENT_ID}`, {
        redirect: 'manual',
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      }),
      await fetch(`${idp.issuer}/nowhere`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) }),
    ]) {
      await res.body?.cancel();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [400, 400, 401, 413, 401, 400, 404]);

    // Malformed HTTP on a raw socket: the server drops the connection and carries on.
    const port = Number(new URL(idp.issuer).port);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      socket.setTimeout(HTTP_TIMEOUT_MS, () => reject(new Error('socket was not closed')));
      socket.on('error', () => {}); // a reset is an acceptable way to be dropped
      socket.on('close', () => resolve());
      socket.resume();
    });
    await login(config);
  });
});

describe('hostile IdP, client_secret_basic client with ES256 ID tokens', () => {
  let idp: HostileIdp;
  before(async () => {
    idp = await startHostileIdp({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [REDIRECT_URI],
      alg: 'ES256',
      accessTokenTtlSec: 60,
    });
  });
  after(() => idp.close());

  test('a well-behaved login completes, and a wrong secret is invalid_client', async () => {
    const config = await discover(idp, client.ClientSecretBasic(CLIENT_SECRET), {
      client_secret: CLIENT_SECRET,
    });
    const tokens = await login(config);
    assert.equal(decodeProtectedHeader(tokens.id_token ?? '').alg, 'ES256');
    assert.equal(tokens.expires_in, 60);
    const par = idp.requests.find((r) => r.path === '/par');
    assert.match(String(par?.headers.authorization), /^Basic /);

    const wrong = await discover(idp, client.ClientSecretBasic('not-the-secret'), { client_secret: 'x' });
    await rejects(authorize(wrong), /invalid_client/);
  });

  test('DPoP: a proof at PAR and token binds the grant and yields token_type DPoP', async () => {
    const config = await discover(idp, client.ClientSecretBasic(CLIENT_SECRET), {
      client_secret: CLIENT_SECRET,
    });
    const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithPAR(
      config,
      {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        nonce,
      },
      { DPoP: dpop },
    );
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await res.body?.cancel();
    const callback = new URL(res.headers.get('location') ?? '');

    // The grant is bound to the PAR proof key, so redeeming without a proof must fail…
    const otherDpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    await rejects(
      client.authorizationCodeGrant(
        config,
        callback,
        { pkceCodeVerifier: verifier, expectedNonce: nonce },
        undefined,
        {
          DPoP: otherDpop,
        },
      ),
      /invalid_grant/,
    );
    // …and the failed attempt spent the code, so start over with the right key.
    const again = await client.buildAuthorizationUrlWithPAR(
      config,
      {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        nonce,
      },
      { DPoP: dpop },
    );
    const res2 = await fetch(again, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    await res2.body?.cancel();
    const tokens = await client.authorizationCodeGrant(
      config,
      new URL(res2.headers.get('location') ?? ''),
      { pkceCodeVerifier: verifier, expectedNonce: nonce },
      undefined,
      { DPoP: dpop },
    );
    assert.equal(tokens.token_type, 'dpop');
  });
});
