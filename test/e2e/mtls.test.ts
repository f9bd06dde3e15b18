/**
 * mTLS end to end (RFC 8705) against oidc-provider over HTTPS with a CA and client certificates
 * made by the test: tls_client_auth and self_signed_tls_client_auth at PAR, token and revocation
 * through the IdP's mtls_endpoint_aliases; certificate-bound access tokens sent as Bearer over mTLS
 * to an upstream that checks the binding; a stolen token without the certificate is refused there.
 */
import { strict as assert } from 'node:assert';
import { createHash, X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, exportJWK, importJWK, type JSONWebKeySet, jwtVerify, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { type DevIdp, type DevIdpRequest, startDevIdp } from '../../src/dev/idp.js';
import {
  type ClientKey,
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { ALICE, apiCall } from '../helpers/flows.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const AUDIENCE = 'https://api.test.example/';
const thumbprint = (der: Buffer) => createHash('sha256').update(der).digest('base64url');

/** An upstream API over mTLS that accepts a Bearer token only with the certificate it is bound to. */
async function startBoundUpstream(pki: TestPki, issuer: string) {
  const jwks = (await (
    await undiciFetch(`${issuer}/jwks`, { dispatcher: new Agent({ connect: { ca: pki.caCert } }) })
  ).json()) as JSONWebKeySet;
  const keys = createLocalJWKSet(jwks);
  const seen: { cert: boolean; status: number; why?: string }[] = [];
  const server: Server = createServer(
    {
      cert: pki.serverCert,
      key: pki.serverKey,
      ca: pki.caCert,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      const auth = req.headers.authorization ?? '';
      const done = (status: number, why?: string) => {
        seen.push({ cert: Boolean(peer), status, ...(why ? { why } : {}) });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ status, why }));
      };
      if (!auth.startsWith('Bearer ')) return done(401, 'scheme');
      jwtVerify(auth.slice(7), keys, { issuer, audience: AUDIENCE }).then(
        ({ payload }) => {
          const bound = (payload.cnf as Record<string, string> | undefined)?.['x5t#S256'];
          if (!peer) return done(401, 'no_certificate');
          if (bound !== thumbprint(peer.raw)) return done(401, 'wrong_certificate');
          done(200);
        },
        () => done(401, 'token'),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('mTLS client authentication and certificate-bound tokens (oidc-provider over HTTPS)', () => {
  let pki: TestPki;
  let idp: DevIdp;
  let upstream: Awaited<ReturnType<typeof startBoundUpstream>>;
  const bffs: RunningBff[] = [];
  const requests: DevIdpRequest[] = [];
  let ports: { ca: number; self: number };

  before(async () => {
    pki = await makePki();
    ports = { ca: await freePort(), self: await freePort() };
    const selfSigned = new X509Certificate(pki.selfSignedClientCert);
    const common = (port: number) => ({
      redirect_uris: [`http://127.0.0.1:${port}/auth/callback`],
      post_logout_redirect_uris: [`http://127.0.0.1:${port}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'PS256',
      tls_client_certificate_bound_access_tokens: true,
    });
    idp = await startDevIdp({
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
      mtls: { tlsClientAuth: true, selfSignedTlsClientAuth: true, certificateBoundAccessTokens: true },
      resourceAudience: AUDIENCE,
      onRequest: (r) => requests.push(r),
      clients: [
        {
          ...common(ports.ca),
          client_id: 'bff-mtls',
          token_endpoint_auth_method: 'tls_client_auth',
          tls_client_auth_subject_dn: pki.clientSubjectDn,
        },
        {
          ...common(ports.self),
          client_id: 'bff-mtls-self',
          token_endpoint_auth_method: 'self_signed_tls_client_auth',
          jwks: {
            keys: [{ ...selfSigned.publicKey.export({ format: 'jwk' }), use: 'sig', x5c: [pki.x5cClient] }],
          },
        },
      ],
    });
    upstream = await startBoundUpstream(pki, idp.issuer);
  });
  after(async () => {
    for (const b of bffs) await b.close();
    await upstream?.close();
    await idp?.close();
    pki?.cleanup();
  });

  async function bff(method: 'tls_client_auth' | 'self_signed_tls_client_auth'): Promise<RunningBff> {
    const self = method === 'self_signed_tls_client_auth';
    const b = await startBff({
      port: self ? ports.self : ports.ca,
      issuer: idp.issuer,
      clientId: self ? 'bff-mtls-self' : 'bff-mtls',
      routes: { api: { url: upstream.url, mtls: true } },
      env: {
        MS_BFF_TOKEN_AUTH_METHOD: method,
        MTLS_CERT: self ? pki.selfSignedClientCert : pki.clientCert,
        MTLS_KEY: self ? pki.selfSignedClientKey : pki.clientKey,
        MS_BFF_TLS_CA: pki.caCert,
      },
    });
    bffs.push(b);
    return b;
  }

  async function login(b: RunningBff): Promise<TestBrowser> {
    const browser = new TestBrowser({ dispatcher: new Agent({ connect: { ca: pki.caCert } }) });
    const start = await browser.navigate(`${b.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.origin === new URL(idp.issuer).origin,
    });
    const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(`${b.url}/auth/callback`),
    );
    const res = await browser.request(done.url);
    assert.equal(res.status, 302, await res.text());
    return browser;
  }

  for (const method of ['tls_client_auth', 'self_signed_tls_client_auth'] as const) {
    it(`${method}: PAR, token and revocation over the mTLS aliases; the API gets a certificate-bound token`, async () => {
      const b = await bff(method);
      requests.length = 0;
      const browser = await login(b);
      const par = requests.find((r) => r.url.startsWith('/request'));
      const token = requests.find((r) => r.url.startsWith('/token') && !r.url.includes('revocation'));
      assert.ok(par?.mtlsAlias && par.clientCertificate, 'PAR on the mTLS alias with the certificate');
      assert.ok(token?.mtlsAlias && token.clientCertificate, 'token on the mTLS alias with the certificate');

      upstream.seen.length = 0;
      const res = await apiCall(browser, b.url, '/api/api/items');
      assert.equal(res.status, 200, await res.text());
      assert.deepEqual(upstream.seen, [{ cert: true, status: 200 }]);

      const session = await b.services.sessions.load(browser.cookie(b.url, '__Host-bff-session')?.value);
      const stolen = session?.data.accessToken ?? '';
      const cert = method === 'self_signed_tls_client_auth' ? pki.selfSignedClientCert : pki.clientCert;
      const bound = thumbprint(new X509Certificate(cert).raw);
      const claims = JSON.parse(Buffer.from(stolen.split('.')[1] ?? '', 'base64url').toString()) as {
        cnf?: Record<string, string>;
      };
      assert.equal(claims.cnf?.['x5t#S256'], bound, 'bound to our certificate (RFC 8705 §3.1)');

      // The thief has the token but not the key of the certificate.
      const noCert = await undiciFetch(`${upstream.url}/items`, {
        headers: { authorization: `Bearer ${stolen}` },
        dispatcher: new Agent({ connect: { ca: pki.caCert } }),
      });
      assert.equal(noCert.status, 401);
      const otherCert = await undiciFetch(`${upstream.url}/items`, {
        headers: { authorization: `Bearer ${stolen}` },
        dispatcher: new Agent({
          connect:
            method === 'tls_client_auth'
              ? { ca: pki.caCert, cert: pki.selfSignedClientCert, key: pki.selfSignedClientKey }
              : { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
        }),
      });
      assert.equal(otherCert.status, 401);
      assert.deepEqual(
        upstream.seen.slice(1).map((s) => s.why),
        ['no_certificate', 'wrong_certificate'],
      );

      requests.length = 0;
      assert.equal((await apiCall(browser, b.url, '/auth/logout', { method: 'POST' })).status, 302);
      const revoke = requests.find((r) => r.url.startsWith('/token/revocation'));
      assert.ok(
        revoke?.mtlsAlias && revoke.clientCertificate,
        'revocation on the mTLS alias with the certificate',
      );
      const metrics = await (await browser.request(`${b.url}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(
          `bff_idp_requests_total\\{endpoint="token",auth_method="${method}",outcome="success"\\} 1`,
        ),
      );
    });
  }
});

describe('service callers with opaque DPoP-bound tokens, introspected over mTLS (oidc-provider)', () => {
  let pki: TestPki;
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  const requests: DevIdpRequest[] = [];
  const SERVICE_CB = 'https://svc.example/cb';

  before(async () => {
    pki = await makePki();
    const port = await freePort();
    const svcKey = await makeClientKey('ES256');
    serviceKey = svcKey;
    idp = await startDevIdp({
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
      mtls: { tlsClientAuth: true },
      introspectors: ['bff-introspect'],
      onRequest: (r) => requests.push(r),
      clients: [
        {
          client_id: 'bff-introspect',
          token_endpoint_auth_method: 'tls_client_auth',
          tls_client_auth_subject_dn: pki.clientSubjectDn,
          redirect_uris: [`http://127.0.0.1:${port}/auth/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          id_token_signed_response_alg: 'PS256',
        },
        {
          ...clientMetadata('svc-reporting', 'https://svc.example', svcKey),
          redirect_uris: [SERVICE_CB],
          dpop_bound_access_tokens: true,
        },
      ],
    });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-introspect',
      routes: {
        reports: { url: upstream.url, serviceAudience: 'svc-reporting', serviceTokens: 'introspection' },
      },
      env: {
        MS_BFF_TOKEN_AUTH_METHOD: 'tls_client_auth',
        MTLS_CERT: pki.clientCert,
        MTLS_KEY: pki.clientKey,
        MS_BFF_TLS_CA: pki.caCert,
      },
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
    pki?.cleanup();
  });

  let serviceKey: ClientKey;

  it('validates the proof, introspects the token through the mTLS alias, and forwards the caller', async () => {
    // The service logs a user in for itself with openid-client and DPoP: its access token is opaque.
    const agent = new Agent({ connect: { ca: pki.caCert } });
    const fetchWithCa: oidc.CustomFetch = (url, options) =>
      undiciFetch(url, { ...options, dispatcher: agent } as Parameters<
        typeof undiciFetch
      >[1]) as unknown as Promise<Response>;
    const svc = await oidc.discovery(
      new URL(idp.issuer),
      'svc-reporting',
      { id_token_signed_response_alg: 'PS256' },
      oidc.PrivateKeyJwt({
        key: (await importJWK(serviceKey.privateJwk, 'ES256')) as CryptoKey,
        kid: String(serviceKey.privateJwk.kid),
      }),
      { [oidc.customFetch]: fetchWithCa },
    );
    const dpopKeys = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(svc, dpopKeys);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(
      svc,
      {
        redirect_uri: SERVICE_CB,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      { DPoP },
    );
    const browser = new TestBrowser({ dispatcher: agent });
    const done = await loginAtDevIdp(browser, url, ALICE.username, ALICE.password, (u) =>
      u.href.startsWith(SERVICE_CB),
    );
    const tokens = await oidc.authorizationCodeGrant(
      svc,
      done.url,
      { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck },
      undefined,
      { DPoP },
    );
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    const token = tokens.access_token;
    assert.ok(!token.includes('.'), 'an opaque token: only introspection can check it');

    const htu = `${bff.url}/api/reports/daily`;
    const proof = async (nonce?: string, key = dpopKeys) =>
      new SignJWT({
        htm: 'GET',
        htu,
        jti: crypto.randomUUID(),
        ath: createHash('sha256').update(token).digest('base64url'),
        ...(nonce ? { nonce } : {}),
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
        .setIssuedAt()
        .sign(key.privateKey);
    requests.length = 0;
    upstream.requests.length = 0;
    const ok = await new TestBrowser().request(htu, {
      headers: { authorization: `DPoP ${token}`, dpop: await proof() },
    });
    assert.equal(ok.status, 200, await ok.text());
    assert.equal(upstream.requests[0]?.headers['x-bff-caller-client-id'], 'svc-reporting');
    const introspection = requests.find((r) => r.url.startsWith('/token/introspection'));
    assert.ok(
      introspection?.mtlsAlias && introspection.clientCertificate,
      'introspection on the mTLS alias with our certificate',
    );

    const thief = await oidc.randomDPoPKeyPair('ES256');
    const stolen = await new TestBrowser().request(htu, {
      headers: { authorization: `DPoP ${token}`, dpop: await proof(undefined, thief) },
    });
    assert.equal(stolen.status, 401, 'a stolen token with another key');
    const metrics = await (await new TestBrowser().request(`${bff.url}/metrics`)).text();
    assert.match(
      metrics,
      /bff_idp_requests_total\{endpoint="introspection",auth_method="tls_client_auth",outcome="success"\} [1-9]/,
    );
  });
});
