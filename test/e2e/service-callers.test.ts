/**
 * Service callers with their own DPoP-bound access token instead of a session cookie (seed 001
 * "DPoPValidationMiddleware", RFC 9449 §7): the BFF validates token and proof, challenges for a
 * nonce, refuses replays and stolen tokens, and tells the upstream who called in headers it asserts.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { apiCall } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { startHostileIdpFor } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const AUDIENCE = 'urn:test:orders';

describe('service callers presenting DPoP-bound access tokens', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startHostileIdpFor('bff-svc', port, key);
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-svc',
      key,
      routes: { orders: { url: upstream.url, serviceAudience: AUDIENCE }, plain: upstream.url },
      env: { MS_BFF_DPOP_NONCE_SECRET: randomBytes(32).toString('base64url') },
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
  });

  /** A service: its own key pair and an access token bound to it, issued (signed) by the IdP. */
  async function service(opts: { audience?: string } = {}) {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const jkt = await calculateJwkThumbprint(jwk);
    const now = Math.floor(Date.now() / 1000);
    const token = await idp.signJwt(
      {
        iss: idp.issuer,
        aud: opts.audience ?? AUDIENCE,
        sub: 'svc-reporting',
        client_id: 'reporting',
        scope: 'orders:read',
        iat: now,
        exp: now + 300,
        jti: randomUUID(),
        cnf: { jkt },
      },
      { header: { typ: 'at+jwt' } },
    );
    const proof = (htu: string, nonce?: string, key = privateKey, pub = jwk) =>
      new SignJWT({
        htm: 'GET',
        htu,
        jti: randomUUID(),
        ath: createHash('sha256').update(token).digest('base64url'),
        ...(nonce ? { nonce } : {}),
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: pub })
        .setIssuedAt()
        .sign(key);
    return { token, proof };
  }

  const call = (path: string, token: string, proof: string, extra: Record<string, string> = {}) =>
    new TestBrowser().request(`${bff.url}${path}`, {
      headers: { authorization: `DPoP ${token}`, dpop: proof, ...extra },
    });

  it('challenges for a nonce, then forwards with the verified caller identity (and nothing else)', async () => {
    const svc = await service();
    const htu = `${bff.url}/api/orders/list`;
    const first = await call('/api/orders/list', svc.token, await svc.proof(htu));
    assert.equal(first.status, 401);
    assert.match(first.headers.get('www-authenticate') ?? '', /DPoP .*error="use_dpop_nonce"/);
    const nonce = first.headers.get('dpop-nonce') ?? undefined;
    assert.ok(nonce);
    upstream.requests.length = 0;
    const ok = await call('/api/orders/list', svc.token, await svc.proof(htu, nonce), {
      'x-bff-caller-sub': 'admin',
    });
    assert.equal(ok.status, 200, await ok.text());
    const seen = upstream.requests[0];
    assert.equal(
      seen?.headers['x-bff-caller-sub'],
      'svc-reporting',
      'the asserted identity, not the spoofed one',
    );
    assert.equal(seen?.headers['x-bff-caller-client-id'], 'reporting');
    assert.ok(seen?.headers['x-bff-caller-jkt']);
    assert.equal(seen?.headers.authorization, undefined, "the caller's token does not travel on");
    assert.equal(seen?.headers.dpop, undefined);
  });

  it('refuses a replayed proof, a stolen token with another key, a wrong audience, and counts each reason', async () => {
    const svc = await service();
    const htu = `${bff.url}/api/orders/list`;
    const nonce =
      (await call('/api/orders/list', svc.token, await svc.proof(htu))).headers.get('dpop-nonce') ??
      undefined;
    const proof = await svc.proof(htu, nonce);
    assert.equal((await call('/api/orders/list', svc.token, proof)).status, 200);
    assert.equal((await call('/api/orders/list', svc.token, proof)).status, 401, 'replayed proof');

    const thief = await generateKeyPair('ES256');
    const stolen = await svc.proof(htu, nonce, thief.privateKey, await exportJWK(thief.publicKey));
    assert.equal((await call('/api/orders/list', svc.token, stolen)).status, 401, 'stolen token');

    const other = await service({ audience: 'urn:test:other-api' });
    assert.equal(
      (await call('/api/orders/list', other.token, await other.proof(htu, nonce))).status,
      401,
      'wrong audience',
    );

    const wrongPath = await svc.proof(`${bff.url}/api/orders/other`, nonce);
    assert.equal((await call('/api/orders/list', svc.token, wrongPath)).status, 401, 'htu mismatch');

    const metrics = await (await new TestBrowser().request(`${bff.url}/metrics`)).text();
    for (const reason of ['nonce_required', 'replay', 'jkt_mismatch', 'token_invalid', 'htu']) {
      assert.match(
        metrics,
        new RegExp(`dpop_validation_failures_total\\{reason="${reason}"\\} [1-9]`),
        reason,
      );
    }
  });

  it('does not accept service callers on routes without serviceAudience, nor Bearer tokens', async () => {
    const svc = await service();
    const plain = await call('/api/plain/x', svc.token, await svc.proof(`${bff.url}/api/plain/x`));
    assert.equal(plain.status, 403, 'treated as a browser call: CSRF refused');
    const bearer = await new TestBrowser().request(`${bff.url}/api/orders/list`, {
      headers: { authorization: `Bearer ${svc.token}` },
    });
    assert.equal(bearer.status, 403);
    const browser = new TestBrowser();
    browser.setCookie(bff.url, '__Host-bff-session', 'v1.x.y');
    const withCookie = await apiCall(browser, bff.url, '/api/orders/list', {
      headers: { authorization: `DPoP ${svc.token}`, dpop: await svc.proof(`${bff.url}/api/orders/list`) },
    });
    assert.equal(withCookie.status, 401, 'a request with a session cookie is a browser call');
  });
});
