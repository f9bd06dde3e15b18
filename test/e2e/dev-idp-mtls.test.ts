/**
 * The development IdP (src/dev/idp.ts) over HTTPS with RFC 8705 mutual TLS, driven by openid-client
 * directly (no BFF): `tls_client_auth` and `self_signed_tls_client_auth` with
 * `use_mtls_endpoint_aliases` (FAPI 2.0 SP §5.2.2.1, §5.3.3; checklist MTLS-1..3, SP-N6, SP-C7), and
 * certificate-bound access tokens (RFC 8705 §3). This proves the test infrastructure the BFF's mTLS
 * tests stand on: the certificates (test/helpers/pki.ts), the IdP's aliases and the client-side
 * undici Agent.
 */
import { strict as assert } from 'node:assert';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import { type DevIdp, type DevIdpRequest, startDevIdp } from '../../src/dev/idp.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

const CA_CLIENT_ID = 'bff-mtls-tls-client-auth';
const SELF_SIGNED_CLIENT_ID = 'bff-mtls-self-signed';
/** Registered with another subject DN than the CA-signed client certificate has. */
const OTHER_SUBJECT_CLIENT_ID = 'bff-mtls-other-subject';
/** Never requested: every flow stops at the callback and hands the URL to openid-client. */
const REDIRECT_URI = 'https://127.0.0.1:9/auth/callback';
const SCOPE = 'openid profile offline_access';
const API_AUDIENCE = 'https://api.example.test/';

/** One request an openid-client Configuration sent, as its customFetch saw it. */
interface SentRequest {
  method: string;
  url: URL;
}

/** The endpoints a client calls directly (the aliased ones), by path. */
const CLIENT_ENDPOINT_PATHS = new Set([
  '/request',
  '/token',
  '/me',
  '/token/introspection',
  '/token/revocation',
]);

const thumbprint = (der: Buffer) => createHash('sha256').update(der).digest('base64url');

/**
 * The client side of mTLS with openid-client v6 on Node 20: undici's own `fetch` with an `Agent`
 * that trusts the test CA and presents `cert`/`key`. Node's global fetch cannot present a client
 * certificate, and `NODE_EXTRA_CA_CERTS` is read only at start (TEST-IDP-NOTES.md).
 */
function mtlsFetch(agent: Agent, sent: SentRequest[]): client.CustomFetch {
  return (url, options) => {
    sent.push({ method: options.method, url: new URL(url) });
    return undiciFetch(url, {
      ...options,
      dispatcher: agent,
    } as UndiciRequestInit) as unknown as Promise<Response>;
  };
}

/**
 * oidc-provider's reasons for refusing mTLS client authentication. The client only sees
 * `invalid_client` / "client authentication failed"; the reason is the error's `error_detail`, which
 * the `<route>.error` events carry.
 */
const NO_CERTIFICATE = 'client certificate was not provided';
const NOT_FROM_CA = 'client certificate was not verified';
const WRONG_SUBJECT = 'certificate subject value does not match the registered one';
const UNREGISTERED = 'unregistered client certificate provided';

function isInvalidClient(err: unknown): boolean {
  assert.ok(err instanceof client.ResponseBodyError, `expected a ResponseBodyError, got ${String(err)}`);
  assert.equal(err.error, 'invalid_client', err.error_description);
  return true;
}

async function startIdp(
  pki: TestPki,
  extra: { resourceAudience?: string; onRequest?: (r: DevIdpRequest) => void } = {},
): Promise<DevIdp> {
  const selfSigned = new X509Certificate(pki.selfSignedClientCert);
  const common = {
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: 'PS256',
    tls_client_certificate_bound_access_tokens: true,
  };
  return startDevIdp({
    tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
    mtls: { tlsClientAuth: true, selfSignedTlsClientAuth: true, certificateBoundAccessTokens: true },
    ...extra,
    clients: [
      // RFC 8705 §2.1: PKI method, the certificate's subject DN is registered.
      {
        ...common,
        client_id: CA_CLIENT_ID,
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: pki.clientSubjectDn,
      },
      {
        ...common,
        client_id: OTHER_SUBJECT_CLIENT_ID,
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: 'CN=someone-else,O=fapi-bff tests',
      },
      // RFC 8705 §2.2: self-signed method, the certificate itself is registered in jwks (x5c).
      {
        ...common,
        client_id: SELF_SIGNED_CLIENT_ID,
        token_endpoint_auth_method: 'self_signed_tls_client_auth',
        jwks: {
          keys: [{ ...selfSigned.publicKey.export({ format: 'jwk' }), use: 'sig', x5c: [pki.x5cClient] }],
        },
      },
    ],
  });
}

/** A PAR request as the client would push it (only the client authentication varies between tests). */
const pushAuthorizationRequest = async (config: client.Configuration) =>
  client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });

describe('development IdP over mutual TLS (RFC 8705)', () => {
  let pki: TestPki;
  let idp: DevIdp;
  /** Trusts the CA, presents the CA-signed client certificate. */
  let caClientAgent: Agent;
  /** Trusts the CA, presents the self-signed client certificate. */
  let selfSignedAgent: Agent;
  /** Trusts the CA, presents no certificate (the browser, and the "no certificate" client). */
  let noCertAgent: Agent;
  /** Every request the IdP received, on either port. */
  const seen: DevIdpRequest[] = [];
  /** The `error_detail` of every PAR and token error, in order. */
  const errorDetails: string[] = [];

  /** Expects `invalid_client` at the client, refused for `detail` at the IdP. */
  async function refused(call: Promise<unknown>, detail: string): Promise<void> {
    const before = errorDetails.length;
    await assert.rejects(call, isInvalidClient);
    assert.deepEqual(errorDetails.slice(before), [detail]);
  }

  before(async () => {
    pki = await makePki();
    caClientAgent = new Agent({ connect: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } });
    selfSignedAgent = new Agent({
      connect: { ca: pki.caCert, cert: pki.selfSignedClientCert, key: pki.selfSignedClientKey },
    });
    noCertAgent = new Agent({ connect: { ca: pki.caCert } });
    idp = await startIdp(pki, { onRequest: (r) => seen.push(r) });
    const recordDetail = (_ctx: unknown, err: { error_detail?: string; message: string }) =>
      errorDetails.push(err.error_detail ?? err.message);
    idp.provider.on('grant.error', recordDetail);
    idp.provider.on('pushed_authorization_request.error', recordDetail);
  });

  after(async () => {
    await idp?.close();
    await Promise.all([caClientAgent?.close(), selfSignedAgent?.close(), noCertAgent?.close()]);
    pki?.cleanup();
  });

  async function configFor(
    clientId: string,
    agent: Agent,
    opts: { aliases?: boolean } = {},
  ): Promise<{ config: client.Configuration; sent: SentRequest[] }> {
    const sent: SentRequest[] = [];
    const config = await client.discovery(
      new URL(idp.issuer),
      clientId,
      { use_mtls_endpoint_aliases: opts.aliases ?? true, id_token_signed_response_alg: 'PS256' },
      client.TlsClientAuth(),
      { [client.customFetch]: mtlsFetch(agent, sent), timeout: 5 },
    );
    return { config, sent };
  }

  /** PAR (through `config`), then the browser login; returns what the code exchange needs. */
  async function authorize(config: client.Configuration) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const expectedNonce = client.randomNonce();
    const expectedState = client.randomState();
    const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      nonce: expectedNonce,
      state: expectedState,
    });
    // The authorization endpoint is not aliased: the browser goes to the issuer's port.
    assert.equal(authorizationUrl.origin, idp.issuer);
    const browser = new TestBrowser({ dispatcher: noCertAgent });
    const { url } = await loginAtDevIdp(browser, authorizationUrl, 'alice', 'alice-password', (u) =>
      u.href.startsWith(REDIRECT_URI),
    );
    assert.equal(url.searchParams.get('iss'), idp.issuer);
    return {
      callbackUrl: url,
      checks: { pkceCodeVerifier, expectedNonce, expectedState, idTokenExpected: true },
    };
  }

  it('serves discovery over HTTPS and advertises mtls_endpoint_aliases on a second port', async () => {
    const { config } = await configFor(CA_CLIENT_ID, caClientAgent);
    const metadata = config.serverMetadata();
    assert.match(idp.issuer, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(metadata.issuer, idp.issuer);
    assert.ok(idp.mtlsOrigin);
    assert.notEqual(new URL(idp.mtlsOrigin).port, new URL(idp.issuer).port);
    assert.deepEqual(metadata.mtls_endpoint_aliases, {
      token_endpoint: `${idp.mtlsOrigin}/token`,
      pushed_authorization_request_endpoint: `${idp.mtlsOrigin}/request`,
      revocation_endpoint: `${idp.mtlsOrigin}/token/revocation`,
      introspection_endpoint: `${idp.mtlsOrigin}/token/introspection`,
      userinfo_endpoint: `${idp.mtlsOrigin}/me`,
    });
    assert.deepEqual(metadata.mtls_endpoint_aliases, idp.mtlsEndpointAliases);
    assert.equal(metadata.token_endpoint, `${idp.issuer}/token`);
    assert.equal(metadata.tls_client_certificate_bound_access_tokens, true);
    for (const method of ['tls_client_auth', 'self_signed_tls_client_auth', 'private_key_jwt']) {
      assert.ok(metadata.token_endpoint_auth_methods_supported?.includes(method), method);
    }
    // The alias port serves only the aliased endpoints.
    const discoveryOnAlias = await undiciFetch(`${idp.mtlsOrigin}/.well-known/openid-configuration`, {
      dispatcher: caClientAgent,
      signal: AbortSignal.timeout(5000),
    });
    await discoveryOnAlias.body?.cancel();
    assert.equal(discoveryOnAlias.status, 404);
  });

  it('tls_client_auth: PAR, token, userinfo, introspection and revocation go to the aliases; the access token is bound to the certificate', async () => {
    const { config, sent } = await configFor(CA_CLIENT_ID, caClientAgent);
    const seenFrom = seen.length;
    const { callbackUrl, checks } = await authorize(config);
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, checks);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.refresh_token);
    const sub = tokens.claims()?.sub;
    assert.equal(sub, 'alice');

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, 'alice');
    assert.equal(userinfo.name, 'Alice Example');

    // RFC 8705 §3.2: the binding, as introspection shows it.
    const introspection = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(introspection.active, true);
    assert.deepEqual(introspection.cnf, { 'x5t#S256': thumbprint(pki.clientCertDer) });

    await client.tokenRevocation(config, tokens.refresh_token);
    const revoked = await client.tokenIntrospection(config, tokens.refresh_token);
    assert.equal(revoked.active, false);

    // Every client call after discovery went to the alias origin, as the client sent it ...
    const calls = sent.filter((r) => !r.url.pathname.startsWith('/.well-known/'));
    assert.deepEqual(
      calls.map((r) => `${r.method} ${r.url.href}`),
      [
        `POST ${idp.mtlsOrigin}/request`,
        `POST ${idp.mtlsOrigin}/token`,
        `GET ${idp.mtlsOrigin}/me`,
        `POST ${idp.mtlsOrigin}/token/introspection`,
        `POST ${idp.mtlsOrigin}/token/revocation`,
        `POST ${idp.mtlsOrigin}/token/introspection`,
      ],
    );
    // ... and as the IdP received it: on the alias port, with the client certificate.
    const received = seen
      .slice(seenFrom)
      .filter((r) => CLIENT_ENDPOINT_PATHS.has(new URL(r.url, r.origin).pathname));
    assert.deepEqual(
      received.map((r) => `${r.method} ${r.origin}${r.url} alias=${r.mtlsAlias} cert=${r.clientCertificate}`),
      calls.map((r) => `${r.method} ${r.url.href} alias=true cert=true`),
    );
  });

  it('refuses a token request without a client certificate or with one not issued by the CA; the right one then redeems the code', async () => {
    const { config } = await configFor(CA_CLIENT_ID, caClientAgent);
    const { config: noCert } = await configFor(CA_CLIENT_ID, noCertAgent);
    const { config: wrongCert } = await configFor(CA_CLIENT_ID, selfSignedAgent);
    const { callbackUrl, checks } = await authorize(config);

    // RFC 8705 §2: no certificate, no client authentication.
    await refused(client.authorizationCodeGrant(noCert, callbackUrl, checks), NO_CERTIFICATE);
    // The self-signed certificate does not chain to the CA (it also has another subject).
    await refused(client.authorizationCodeGrant(wrongCert, callbackUrl, checks), NOT_FROM_CA);
    // Client authentication fails before the code is looked at, so it is still unused.
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, checks);
    const introspection = await client.tokenIntrospection(config, tokens.access_token);
    assert.deepEqual(introspection.cnf, { 'x5t#S256': thumbprint(pki.clientCertDer) });
    // PAR without a certificate is refused too.
    await refused(pushAuthorizationRequest(noCert), NO_CERTIFICATE);
  });

  it('refuses a CA-signed certificate whose subject DN is not the registered one', async () => {
    const { config } = await configFor(OTHER_SUBJECT_CLIENT_ID, caClientAgent);
    await refused(pushAuthorizationRequest(config), WRONG_SUBJECT);
  });

  it("refuses mTLS client authentication at the issuer's own endpoints: only the aliases see certificates", async () => {
    const { config, sent } = await configFor(CA_CLIENT_ID, caClientAgent, { aliases: false });
    await refused(
      pushAuthorizationRequest(config),
      // The certificate was presented on the issuer's port, where it does not count.
      NO_CERTIFICATE,
    );
    assert.equal(sent.at(-1)?.url.href, `${idp.issuer}/request`);
  });

  it('self_signed_tls_client_auth: the certificate registered in jwks x5c authenticates and binds the tokens; the CA-signed one does not', async () => {
    const { config, sent } = await configFor(SELF_SIGNED_CLIENT_ID, selfSignedAgent);
    const { config: otherCert } = await configFor(SELF_SIGNED_CLIENT_ID, caClientAgent);
    const { callbackUrl, checks } = await authorize(config);

    await refused(client.authorizationCodeGrant(otherCert, callbackUrl, checks), UNREGISTERED);
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, checks);
    const bound = { 'x5t#S256': thumbprint(Buffer.from(pki.x5cClient, 'base64')) };
    assert.deepEqual((await client.tokenIntrospection(config, tokens.access_token)).cnf, bound);

    // A refresh (rotating) keeps the binding.
    assert.ok(tokens.refresh_token);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.deepEqual((await client.tokenIntrospection(config, refreshed.access_token)).cnf, bound);
    assert.ok(
      sent
        .filter((r) => !r.url.pathname.startsWith('/.well-known/'))
        .every((r) => r.url.origin === idp.mtlsOrigin),
    );
  });

  it('refuses a certificate-bound access token at userinfo with another certificate or with none (RFC 8705 §3)', async () => {
    const { config } = await configFor(CA_CLIENT_ID, caClientAgent);
    const { config: otherCert } = await configFor(CA_CLIENT_ID, selfSignedAgent);
    const { config: noCert } = await configFor(CA_CLIENT_ID, noCertAgent);
    const { callbackUrl, checks } = await authorize(config);
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, checks);

    for (const wrong of [otherCert, noCert]) {
      await assert.rejects(client.fetchUserInfo(wrong, tokens.access_token, 'alice'), (err: unknown) => {
        assert.ok(err instanceof client.WWWAuthenticateChallengeError, String(err));
        assert.equal(err.status, 401);
        assert.equal(err.cause[0]?.parameters.error, 'invalid_token');
        return true;
      });
    }
    assert.equal((await client.fetchUserInfo(config, tokens.access_token, 'alice')).sub, 'alice');
  });
});

describe('development IdP over mutual TLS with JWT access tokens (RFC 9068)', () => {
  let pki: TestPki;
  let idp: DevIdp;
  let caClientAgent: Agent;
  let noCertAgent: Agent;

  before(async () => {
    pki = await makePki();
    caClientAgent = new Agent({ connect: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } });
    noCertAgent = new Agent({ connect: { ca: pki.caCert } });
    idp = await startIdp(pki, { resourceAudience: API_AUDIENCE });
  });

  after(async () => {
    await idp?.close();
    await Promise.all([caClientAgent?.close(), noCertAgent?.close()]);
    pki?.cleanup();
  });

  it("carries the binding in the access token's cnf claim (RFC 8705 §3.1)", async () => {
    const config = await client.discovery(
      new URL(idp.issuer),
      CA_CLIENT_ID,
      { use_mtls_endpoint_aliases: true, id_token_signed_response_alg: 'PS256' },
      client.TlsClientAuth(),
      { [client.customFetch]: mtlsFetch(caClientAgent, []), timeout: 5 },
    );
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
    });
    const { url } = await loginAtDevIdp(
      new TestBrowser({ dispatcher: noCertAgent }),
      authorizationUrl,
      'alice',
      'alice-password',
      (u) => u.href.startsWith(REDIRECT_URI),
    );
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier,
      idTokenExpected: true,
    });
    // oidc-provider puts no `cnf` in the token response itself; a JWT access token carries it.
    assert.equal((tokens as Record<string, unknown>).cnf, undefined);
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.aud, API_AUDIENCE);
    assert.deepEqual(claims.cnf, { 'x5t#S256': thumbprint(pki.clientCertDer) });
  });
});
