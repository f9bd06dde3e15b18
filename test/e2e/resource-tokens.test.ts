/**
 * RFC 8707 resource indicators for the USER's token, against oidc-provider: the login names every
 * resource of the routes that send the user's token (§2.1); a route with `resource` sends a separate
 * token for that resource, got with the refresh grant and `resource` (§2.2), kept in the session until
 * shortly before expiry; a route without `resource` sends the session's main token. The dev IdP
 * rotates refresh tokens (and revokes the grant when a spent one is replayed), so every later call
 * succeeding also proves that each rotated refresh token was stored.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, type JWTPayload, jwtVerify } from 'jose';
import type { DevIdp, DevIdpOptions } from '../../src/dev/idp.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { assertAcceptedWithProof, type DpopStack, startDpopStack } from '../helpers/dpop-upstream.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const MAIN = 'https://main.resource-tokens.test/';
const ORDERS = 'https://orders.resource-tokens.test/';
const BILLING = 'https://billing.resource-tokens.test/';
const CLIENT_ID = 'bff-resource-tokens';
const COOKIE = '__Host-bff-session';

interface Grant {
  type: string;
  resource: string | undefined;
}

/** Every resource as an audience at the IdP. */
const AUDIENCES = { resourceAudience: MAIN, moreResourceAudiences: [ORDERS, BILLING] };

/**
 * The IdP's options: AUDIENCES, and what each PAR request asked for (RFC 8707 §2.1) as
 * oidc-provider parsed it, into `pushed`.
 */
function recordingPushedResources(pushed: unknown[]): Omit<DevIdpOptions, 'clients'> {
  return {
    ...AUDIENCES,
    middleware: [
      async (ctx, next) => {
        await next();
        if (ctx.path.endsWith('/request') && ctx.method === 'POST')
          pushed.push((ctx.oidc as { params?: { resource?: unknown } } | undefined)?.params?.resource);
      },
    ],
  };
}

/** Every successful token endpoint grant, with its `resource` parameter (oidc-provider's events). */
function recordGrants(idp: DevIdp): Grant[] {
  const grants: Grant[] = [];
  idp.provider.on('grant.success', (ctx: { oidc: { params?: Record<string, unknown> } }) => {
    const resource = ctx.oidc.params?.resource;
    grants.push({
      type: String(ctx.oidc.params?.grant_type),
      resource: typeof resource === 'string' ? resource : undefined,
    });
  });
  return grants;
}

describe('per-resource user tokens (RFC 8707)', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let stack: Stack;
  let grants: Grant[];
  let skewMs = 0;
  let verify: (token: string, audience: string) => Promise<JWTPayload>;
  const browser = new TestBrowser();
  const pushed: unknown[] = [];

  /** The token of the upstream's last request, verified as the IdP's JWT for `audience`. */
  async function lastToken(audience: string): Promise<{ raw: string; claims: JWTPayload }> {
    const header = upstream.requests.at(-1)?.headers.authorization;
    assert.match(header ?? '', /^Bearer /);
    const raw = (header as string).slice('Bearer '.length);
    return { raw, claims: await verify(raw, audience) };
  }

  async function session() {
    const loaded = await bff.services.sessions.load(browser.cookie(bff.url, COOKIE)?.value);
    assert.ok(loaded, 'signed in');
    return loaded.data;
  }

  const resourceGrants = (resource: string) =>
    grants.filter((g) => g.type === 'refresh_token' && g.resource === resource).length;

  before(async () => {
    stack = await startStack({
      clientId: CLIENT_ID,
      idp: recordingPushedResources(pushed),
      clock: () => Date.now() + skewMs,
      routes: (url) => ({
        orders: { url, token: 'user', resource: ORDERS },
        billing: { url, token: 'user-or-none', resource: BILLING },
        plain: { url, token: 'user' },
      }),
    });
    ({ idp, bff, upstream } = stack);
    grants = recordGrants(idp);
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    verify = async (token, audience) =>
      (await jwtVerify(token, jwks, { issuer: idp.issuer, audience })).payload;
    await fullLogin(browser, bff.url, idp);
  });
  after(async () => {
    await stack?.close();
  });

  it('the authorization request names each resource of the user-token routes', () => {
    assert.deepEqual(pushed, [[ORDERS, BILLING]]);
  });

  it('each route with a resource gets its own token for that audience; a route without gets the main token', async () => {
    assert.equal((await apiCall(browser, bff.url, '/api/orders/x')).status, 200);
    const orders = await lastToken(ORDERS);
    assert.equal(orders.claims.sub, 'alice');
    assert.deepEqual(decodeJwt(orders.raw).aud, ORDERS);

    assert.equal((await apiCall(browser, bff.url, '/api/billing/x')).status, 200);
    const billing = await lastToken(BILLING);
    assert.equal(billing.claims.sub, 'alice');
    assert.deepEqual(decodeJwt(billing.raw).aud, BILLING);

    const before = grants.length;
    assert.equal((await apiCall(browser, bff.url, '/api/plain/x')).status, 200);
    const header = upstream.requests.at(-1)?.headers.authorization;
    const data = await session();
    assert.equal(header, `Bearer ${data.accessToken}`, 'the session’s main token');
    assert.notEqual(data.accessToken, orders.raw);
    assert.notEqual(data.accessToken, billing.raw);
    assert.equal(grants.length, before, 'no token endpoint call for the main token');
    assert.equal(data.resourceTokens?.[ORDERS]?.accessToken, orders.raw);
    assert.equal(data.resourceTokens?.[BILLING]?.accessToken, billing.raw);
  });

  it('a second call reuses the stored resource token (no token endpoint call)', async () => {
    const before = grants.length;
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      assert.equal((await apiCall(browser, bff.url, '/api/orders/again')).status, 200);
      seen.add(String(upstream.requests.at(-1)?.headers.authorization));
    }
    assert.equal(seen.size, 1);
    assert.equal(grants.length, before);
  });

  it('after expiry each resource token is renewed once, concurrent calls sharing it, rotated refresh tokens kept', async () => {
    const old = (await session()).resourceTokens?.[ORDERS]?.accessToken;
    const [ordersBefore, billingBefore] = [resourceGrants(ORDERS), resourceGrants(BILLING)];
    skewMs += 301_000;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        apiCall(browser, bff.url, `/api/${i % 2 === 0 ? 'orders' : 'billing'}/c${i}`),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array(6).fill(200),
    );
    assert.equal(resourceGrants(ORDERS) - ordersBefore, 1, 'one grant for orders');
    assert.equal(resourceGrants(BILLING) - billingBefore, 1, 'one grant for billing');
    const renewed = (await session()).resourceTokens?.[ORDERS]?.accessToken;
    assert.ok(renewed && renewed !== old);
    assert.deepEqual(decodeJwt(renewed).aud, ORDERS);
    // The main token is renewed with the refresh token the resource grants rotated last: a replay
    // of a spent one would revoke the grant at oidc-provider and this would fail.
    assert.equal((await apiCall(browser, bff.url, '/api/plain/after')).status, 200);
    assert.equal(upstream.requests.at(-1)?.headers.authorization, `Bearer ${(await session()).accessToken}`);
    assert.equal((await apiCall(browser, bff.url, '/api/orders/after')).status, 200);
    assert.equal(upstream.requests.at(-1)?.headers.authorization, `Bearer ${renewed}`);
  });

  it('a resource token the upstream refuses (401 invalid_token) is replaced once and the call retried with the new one', async () => {
    const rejected = (await session()).resourceTokens?.[ORDERS]?.accessToken;
    const before = resourceGrants(ORDERS);
    upstream.requests.length = 0;
    upstream.behave({
      kind: 'status',
      status: 401,
      headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
    });
    try {
      assert.equal((await apiCall(browser, bff.url, '/api/orders/refused')).status, 401);
    } finally {
      upstream.behave({ kind: 'ok' });
    }
    assert.equal(resourceGrants(ORDERS) - before, 1);
    assert.deepEqual(
      upstream.requests.map((r) => r.headers.authorization),
      [`Bearer ${rejected}`, `Bearer ${(await session()).resourceTokens?.[ORDERS]?.accessToken}`],
    );
    assert.notEqual((await session()).resourceTokens?.[ORDERS]?.accessToken, rejected);
    assert.deepEqual(decodeJwt(String(upstream.requests[1]?.headers.authorization).slice(7)).aud, ORDERS);
  });
});

describe('per-resource user tokens with DPoP', () => {
  let stack: DpopStack;
  let grants: Grant[];

  before(async () => {
    // The resource server accepts only DPoP-bound tokens for ORDERS, with a valid proof.
    stack = await startDpopStack({
      clientId: CLIENT_ID,
      audience: ORDERS,
      idp: AUDIENCES,
      // billing first: the main token (oidc-provider's default among the two) is not for ORDERS.
      routes: (url) => ({
        billing: { url, token: 'user', resource: BILLING },
        orders: { url, token: 'user', resource: ORDERS },
      }),
    });
    grants = recordGrants(stack.idp);
  });
  after(async () => {
    await stack?.close();
  });

  it('the resource token is DPoP-bound to the session key and every call proves possession', async () => {
    const { idp, bff, upstream } = stack;
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    for (let i = 0; i < 2; i++) {
      const res = await apiCall(browser, bff.url, '/api/orders/x');
      assert.equal(res.status, 200, await res.text());
    }
    assertAcceptedWithProof(upstream, 2);
    assert.equal(grants.filter((g) => g.type === 'refresh_token' && g.resource === ORDERS).length, 1);
    const loaded = await bff.services.sessions.load(browser.cookie(bff.url, COOKIE)?.value);
    const token = loaded?.data.resourceTokens?.[ORDERS];
    assert.equal(token?.tokenType, 'dpop');
    const claims = decodeJwt(token?.accessToken ?? '');
    assert.equal(claims.aud, ORDERS);
    const jwk = loaded?.data.dpop?.jwk;
    assert.ok(jwk);
    assert.equal((claims.cnf as { jkt?: string } | undefined)?.jkt, await calculateJwkThumbprint(jwk));
    // The main token is for another audience: this upstream would refuse it.
    assert.notEqual(decodeJwt(loaded?.data.accessToken ?? '').aud, ORDERS);
  });
});

describe('per-resource user tokens with signed request objects (JAR)', () => {
  let stack: Stack;
  const pushed: unknown[] = [];

  before(async () => {
    stack = await startStack({
      clientId: CLIENT_ID,
      idp: recordingPushedResources(pushed),
      env: { MS_BFF_JAR_ENABLED: 'true' },
      routes: (url) => ({
        orders: { url, token: 'user', resource: ORDERS },
        billing: { url, token: 'user', resource: BILLING },
      }),
    });
  });
  after(async () => {
    await stack?.close();
  });

  it('the request object carries the resources as an array and each route gets its audience', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, stack.bff.url, stack.idp);
    assert.deepEqual(pushed, [[ORDERS, BILLING]]);
    for (const [route, audience] of [
      ['orders', ORDERS],
      ['billing', BILLING],
    ] as const) {
      assert.equal((await apiCall(browser, stack.bff.url, `/api/${route}/x`)).status, 200);
      const header = String(stack.upstream.requests.at(-1)?.headers.authorization);
      assert.equal(decodeJwt(header.slice('Bearer '.length)).aud, audience);
    }
  });
});
