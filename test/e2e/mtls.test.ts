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
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { type DevIdp, type DevIdpRequest, startDevIdp } from '../../src/dev/idp.js';
import { freePort, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { ALICE, apiCall } from '../helpers/flows.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

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
