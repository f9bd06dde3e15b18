/**
 * DPoP end to end (RFC 9449): oidc-provider requiring DPoP nonces at PAR and token and issuing
 * DPoP-bound JWT access tokens; an upstream API enforcing DPoP with nonces. The BFF holds one key
 * per session; the browser never sees a key, a proof or a token.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { startDpopUpstream } from '../helpers/dpop-upstream.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { type HostileStack, startHostileStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';

const AUDIENCE = 'urn:test:dpop-api';

describe('DPoP with nonces at the AS and at the upstream (oidc-provider)', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: Awaited<ReturnType<typeof startDpopUpstream>>;
  let noNonce: Awaited<ReturnType<typeof startDpopUpstream>>;
  const grants: { type: string; dpop: boolean }[] = [];
  let skew = 0;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [
        { ...clientMetadata('bff-dpop', `http://127.0.0.1:${port}`, key), dpop_bound_access_tokens: true },
      ],
      resourceAudience: AUDIENCE,
      dpop: { requireNonce: true },
    });
    idp.provider.on(
      'grant.success',
      (ctx: { oidc: { params?: { grant_type?: unknown } }; get(h: string): string }) => {
        grants.push({ type: String(ctx.oidc.params?.grant_type), dpop: Boolean(ctx.get('dpop')) });
      },
    );
    upstream = await startDpopUpstream({
      issuer: idp.issuer,
      jwksUri: `${idp.issuer}/jwks`,
      audience: AUDIENCE,
    });
    noNonce = await startDpopUpstream({
      issuer: idp.issuer,
      jwksUri: `${idp.issuer}/jwks`,
      audience: AUDIENCE,
      requireNonce: false,
    });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-dpop',
      key,
      routes: { api: upstream.url, plain: noNonce.url },
      env: { MS_BFF_DPOP_ENABLED: 'true' },
      clock: () => Date.now() + skew,
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await noNonce?.close();
    await idp?.close();
  });

  it('works with a resource server that never asks for a nonce (one request per call)', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    for (let i = 0; i < 2; i++)
      assert.equal((await apiCall(browser, bff.url, `/api/plain/n${i}`)).status, 200);
    assert.deepEqual(
      noNonce.seen.map((s) => [s.status, s.scheme, s.hadProof]),
      [
        [200, 'DPoP', true],
        [200, 'DPoP', true],
      ],
    );
  });

  it('logs in with DPoP-bound tokens, and every upstream call carries a valid proof', async () => {
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, bff.url, idp)).status, 302);
    const code = grants.find((g) => g.type === 'authorization_code');
    assert.ok(code?.dpop, 'the token request carried a DPoP proof');
    const session = await bff.services.sessions.load(browser.cookie(bff.url, '__Host-bff-session')?.value);
    assert.ok(session?.data.dpop, 'the session holds its DPoP key server-side');
    assert.equal(session.data.tokenType, 'dpop');
    const at = decodeJwt(session.data.accessToken);
    assert.equal(
      (at.cnf as { jkt?: string } | undefined)?.jkt,
      session.data.dpop.jkt,
      'the token is bound to the session key',
    );
    assert.ok(
      !JSON.stringify(browser.cookies(bff.url)).includes(session.data.dpop.jkt),
      'no key material in cookies',
    );

    upstream.seen.length = 0;
    const first = await apiCall(browser, bff.url, '/api/api/items');
    assert.equal(first.status, 200, await first.text());
    // The upstream asked for a nonce once (401 use_dpop_nonce), the BFF retried with a new proof.
    assert.deepEqual(
      upstream.seen.map((s) => [s.status, s.reason ?? '']),
      [
        [401, 'nonce_required'],
        [200, ''],
      ],
    );
    upstream.seen.length = 0;
    for (let i = 0; i < 3; i++)
      assert.equal((await apiCall(browser, bff.url, `/api/api/items/${i}`)).status, 200);
    assert.deepEqual(
      upstream.seen.map((s) => s.status),
      [200, 200, 200],
      'the cached nonce avoids further round trips',
    );
    assert.ok(upstream.seen.every((s) => s.scheme === 'DPoP' && s.hadProof));
  });

  it('replays a request body after a nonce challenge', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    upstream.rotateNonces();
    upstream.seen.length = 0;
    const res = await apiCall(browser, bff.url, '/api/api/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"order":42}',
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { body: string }).body, '{"order":42}');
    assert.deepEqual(
      upstream.seen.map((s) => [s.status, s.body]),
      [
        [401, '{"order":42}'],
        [200, '{"order":42}'],
      ],
    );
  });

  it('does not retry a body it cannot replay, and says so in metrics', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    upstream.rotateNonces();
    upstream.seen.length = 0;
    const big = 'x'.repeat(100 * 1024);
    const res = await apiCall(browser, bff.url, '/api/api/upload', { method: 'PUT', body: big });
    assert.equal(res.status, 401, 'the challenge reaches the SPA unretried');
    assert.equal(upstream.seen.length, 1);
    assert.match(
      await (await browser.request(`${bff.url}/metrics`)).text(),
      /bff_dpop_nonce_retries_skipped_total [1-9]/,
    );
  });

  it('refuses a stolen access token at the upstream without the session key', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    const session = await bff.services.sessions.load(browser.cookie(bff.url, '__Host-bff-session')?.value);
    const stolen = session?.data.accessToken ?? '';
    assert.equal(
      (await fetch(`${upstream.url}/items`, { headers: { authorization: `Bearer ${stolen}` } })).status,
      401,
    );
    // The thief's own key: a valid proof, but not the key the token is bound to.
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const attempt = async (nonce?: string) => {
      const proof = await new SignJWT({
        htm: 'GET',
        htu: `${upstream.url}/items`,
        jti: crypto.randomUUID(),
        ath: createHash('sha256').update(stolen).digest('base64url'),
        ...(nonce ? { nonce } : {}),
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
        .setIssuedAt()
        .sign(privateKey);
      return fetch(`${upstream.url}/items`, { headers: { authorization: `DPoP ${stolen}`, dpop: proof } });
    };
    const challenged = await attempt();
    const nonce = challenged.headers.get('dpop-nonce') ?? undefined;
    const res = await attempt(nonce);
    assert.equal(res.status, 401);
    assert.equal(upstream.seen.at(-1)?.reason, 'jkt_mismatch');
  });

  it('refreshes with a DPoP proof, and keeps working on the refreshed token', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    const before = grants.length;
    skew += 301_000;
    try {
      assert.equal((await apiCall(browser, bff.url, '/api/api/after-refresh')).status, 200);
    } finally {
      skew = 0;
    }
    const refresh = grants.slice(before).find((g) => g.type === 'refresh_token');
    assert.ok(refresh?.dpop, 'the refresh_token grant carried a proof');
    const logout = await apiCall(browser, bff.url, '/auth/logout', { method: 'POST' });
    assert.equal(logout.status, 302);
    assert.match(
      await (await browser.request(`${bff.url}/metrics`)).text(),
      /bff_token_revocations_total\{outcome="success",frontend="default"\} [1-9]/,
    );
  });
});

describe('DPoP against a hostile IdP', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let stack: HostileStack;

  before(async () => {
    stack = await startHostileStack({ clientId: 'bff-dpop-hostile', env: { MS_BFF_DPOP_ENABLED: 'true' } });
    ({ idp, bff } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  it('sends dpop_jkt and a proof at PAR, and refuses a Bearer token issued for a DPoP request', async () => {
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.href.startsWith(`${bff.url}/auth/callback`),
    });
    assert.ok(start.stopped);
    const par = idp.requests.find((r) => r.path === '/par');
    const proof = String(par?.headers.dpop ?? '');
    assert.equal(decodeProtectedHeader(proof).typ, 'dpop+jwt');
    assert.equal(decodeJwt(proof).ath, undefined, 'no ath at PAR (RFC 9449 §4.2)');
    assert.ok(par?.form?.dpop_jkt, 'dpop_jkt at PAR');
    idp.misbehave({ tokenType: 'Bearer' });
    try {
      const res = await browser.request(start.url);
      assert.equal(res.status, 502);
      assert.match(await res.text(), /BFF_TOKEN_RESPONSE_INVALID/);
      assert.equal(browser.cookie(bff.url, '__Host-bff-session'), undefined);
    } finally {
      idp.misbehave({});
    }
  });

  it('sends a proof at revocation (logout)', async () => {
    const browser = new TestBrowser();
    const done = await browser.navigate(`${bff.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.href === `${bff.url}/`,
    });
    assert.ok(done.stopped);
    idp.requests.length = 0;
    const logout = await apiCall(browser, bff.url, '/auth/logout', { method: 'POST' });
    assert.equal(logout.status, 302);
    const revoke = idp.requests.find((r) => r.path === '/revoke');
    assert.ok(revoke, 'the refresh token was revoked');
    const proof = String(revoke.headers.dpop ?? '');
    const claims = decodeJwt(proof);
    assert.equal(decodeProtectedHeader(proof).typ, 'dpop+jwt');
    assert.equal(claims.htm, 'POST');
    assert.equal(claims.htu, `${idp.issuer}/revoke`);
  });
});
