/**
 * Two BFF instances behind one origin, sharing one Redis: a session created through one is used,
 * refreshed and logged out through the other; the upstream's DPoP nonce learned by one instance
 * saves the other the extra round trip (RFC 9449 §9).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { clientMetadata, freePort, makeClientKey, type RunningBff } from '../helpers/bff-harness.js';
import { startDpopUpstream } from '../helpers/dpop-upstream.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { startBffPair } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';

const AUDIENCE = 'urn:test:multi';

describe('two instances on one Redis', () => {
  let idp: DevIdp;
  let a: RunningBff;
  let b: RunningBff;
  let upstream: Awaited<ReturnType<typeof startDpopUpstream>>;
  let skew = 0;
  const refreshes: number[] = [];

  before(async () => {
    const portA = await freePort();
    const portB = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [
        { ...clientMetadata('bff-multi', `http://127.0.0.1:${portA}`, key), dpop_bound_access_tokens: true },
      ],
      resourceAudience: AUDIENCE,
      dpop: { requireNonce: true },
    });
    idp.provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: unknown } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') refreshes.push(Date.now());
    });
    upstream = await startDpopUpstream({
      issuer: idp.issuer,
      jwksUri: `${idp.issuer}/jwks`,
      audience: AUDIENCE,
    });
    [a, b] = await startBffPair({
      ports: [portA, portB],
      prefix: 'bff-multi',
      issuer: idp.issuer,
      clientId: 'bff-multi',
      key,
      routes: { api: upstream.url },
      clock: () => Date.now() + skew,
      env: {
        MS_BFF_DPOP_ENABLED: 'true',
        // One origin for both instances, as behind a load balancer.
        MS_BFF_PUBLIC_URL: `http://127.0.0.1:${portA}`,
      },
    });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await upstream?.close();
    await idp?.close();
  });

  it('uses, refreshes and logs out through B a session created through A; the nonce is shared', async () => {
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, a.url, idp)).status, 302);
    const cookie = browser.cookie(a.url, '__Host-bff-session')?.value ?? '';
    const viaB = new TestBrowser();
    viaB.setCookie(b.url, '__Host-bff-session', cookie);

    upstream.seen.length = 0;
    assert.equal((await apiCall(browser, a.url, '/api/api/one')).status, 200);
    assert.deepEqual(
      upstream.seen.map((x) => x.status),
      [401, 200],
      'A pays one round trip to learn the upstream nonce',
    );
    upstream.seen.length = 0;
    assert.equal((await apiCall(viaB, b.url, '/api/api/two')).status, 200);
    assert.deepEqual(
      upstream.seen.map((x) => x.status),
      [200],
      'B uses the nonce A stored: no extra round trip',
    );

    skew += 301_000;
    try {
      const before = refreshes.length;
      assert.equal((await apiCall(viaB, b.url, '/api/api/after-expiry')).status, 200, 'refreshed through B');
      assert.equal(refreshes.length - before, 1);
      assert.equal((await apiCall(browser, a.url, '/api/api/on-a')).status, 200, 'A sees the rotated tokens');
      assert.equal(refreshes.length - before, 1, 'A did not refresh again');
    } finally {
      skew = 0;
    }

    const logout = await apiCall(viaB, b.url, '/auth/logout', { method: 'POST' });
    assert.equal(logout.status, 302);
    assert.equal((await apiCall(browser, a.url, '/auth/session')).status, 401, 'logged out on A too');
    assert.equal((await apiCall(browser, a.url, '/api/api/x')).status, 401);
  });
});
