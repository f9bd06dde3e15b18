/**
 * Token types per route (Duende BFF's RequiredTokenType) against oidc-provider: `user`, `client`
 * (the BFF's own client-credentials token, RFC 6749 §4.4, asked for the route's RFC 8707 resource),
 * `user-or-client`, `user-or-none` and `none`. The upstream verifies every JWT it receives against
 * the IdP's JWKS, so "the right token" means: signed by the IdP, for that audience, for that subject.
 */
import { strict as assert } from 'node:assert';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { DevIdp } from '../../src/dev/idp.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { assertAcceptedWithProof, type DpopStack, startDpopStack } from '../helpers/dpop-upstream.js';
import { apiCall, errorCode, fullLogin } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const RESOURCE = 'https://api.token-types.test/';
const CLIENT_ID = 'bff-token-types';

async function metricValue(bff: RunningBff, name: string, labels: string): Promise<number> {
  const text = await bff.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('token types per route', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  const user = new TestBrowser();
  const anonymous = new TestBrowser();
  let verify: (token: string) => Promise<JWTPayload>;
  let stack: Stack;

  /** The token the upstream received for its only request, verified as the IdP's JWT. */
  async function receivedToken(): Promise<JWTPayload | undefined> {
    assert.equal(upstream.requests.length, 1);
    const header = upstream.requests[0]?.headers.authorization;
    if (header === undefined) return undefined;
    assert.match(header, /^Bearer /);
    return verify(header.slice('Bearer '.length));
  }

  before(async () => {
    stack = await startStack({
      clientId: CLIENT_ID,
      client: { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
      idp: { resourceAudience: RESOURCE },
      routes: (url) => ({
        user: { url, token: 'user' },
        client: { url, token: 'client', resource: RESOURCE, clientScope: 'api:read' },
        either: { url, token: 'user-or-client', resource: RESOURCE },
        optional: { url, token: 'user-or-none' },
        none: { url, token: 'none' },
      }),
    });
    ({ idp, bff, upstream } = stack);
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    verify = async (token) =>
      (await jwtVerify(token, jwks, { issuer: idp.issuer, audience: RESOURCE })).payload;
    await fullLogin(user, bff.url, idp);
  });
  after(async () => {
    await stack?.close();
  });
  beforeEach(() => {
    upstream.behave({ kind: 'ok' });
    upstream.requests.length = 0;
  });

  it('user: the signed-in user’s token; without a session 401 and nothing forwarded', async () => {
    assert.equal((await apiCall(user, bff.url, '/api/user/x')).status, 200);
    assert.equal((await receivedToken())?.sub, 'alice');
    upstream.requests.length = 0;
    const res = await apiCall(anonymous, bff.url, '/api/user/x');
    assert.equal(res.status, 401);
    assert.equal(await errorCode(res), 'BFF_SESSION_REQUIRED');
    assert.equal(upstream.requests.length, 0);
  });

  it('client: the BFF’s own token for the route’s resource and scope, with or without a session', async () => {
    for (const browser of [anonymous, user]) {
      upstream.requests.length = 0;
      assert.equal((await apiCall(browser, bff.url, '/api/client/x')).status, 200);
      const claims = await receivedToken();
      assert.equal(claims?.client_id, CLIENT_ID);
      // A client-credentials token speaks for the client, never for alice.
      assert.notEqual(claims?.sub, 'alice');
      assert.equal(claims?.scope, 'api:read');
    }
  });

  it('client: one token serves many calls (cached until shortly before expiry)', async () => {
    const issuedBefore = await metricValue(bff, 'bff_client_tokens_total', 'outcome="issued"');
    for (let i = 0; i < 5; i++) {
      upstream.requests.length = 0;
      assert.equal((await apiCall(anonymous, bff.url, '/api/client/x')).status, 200);
    }
    assert.equal(await metricValue(bff, 'bff_client_tokens_total', 'outcome="issued"'), issuedBefore);
    assert.ok((await metricValue(bff, 'bff_client_tokens_total', 'outcome="cached"')) >= 5);
  });

  it('user-or-client: the user’s token when signed in, otherwise the client’s', async () => {
    assert.equal((await apiCall(user, bff.url, '/api/either/x')).status, 200);
    assert.equal((await receivedToken())?.sub, 'alice');
    upstream.requests.length = 0;
    assert.equal((await apiCall(anonymous, bff.url, '/api/either/x')).status, 200);
    const claims = await receivedToken();
    assert.equal(claims?.client_id, CLIENT_ID);
    assert.notEqual(claims?.sub, 'alice');
  });

  it('user-or-none: the user’s token when signed in, otherwise no Authorization at all', async () => {
    assert.equal((await apiCall(user, bff.url, '/api/optional/x')).status, 200);
    assert.equal((await receivedToken())?.sub, 'alice');
    upstream.requests.length = 0;
    assert.equal((await apiCall(anonymous, bff.url, '/api/optional/x')).status, 200);
    assert.equal(await receivedToken(), undefined);
    assert.equal(upstream.requests[0]?.headers.dpop, undefined);
  });

  it('none: never a token, even for a signed-in user', async () => {
    assert.equal((await apiCall(user, bff.url, '/api/none/x')).status, 200);
    assert.equal(await receivedToken(), undefined);
  });

  it('every policy still requires the CSRF header (the cookie is ambient even when no token is sent)', async () => {
    for (const route of ['user', 'client', 'either', 'optional', 'none']) {
      const res = await anonymous.request(`${bff.url}/api/${route}/x`);
      assert.equal(res.status, 403, route);
      assert.equal(await errorCode(res), 'BFF_CSRF_FAILED');
    }
    assert.equal(upstream.requests.length, 0);
  });
});

describe('token type "client" with DPoP', () => {
  let stack: DpopStack;

  before(async () => {
    stack = await startDpopStack({
      clientId: CLIENT_ID,
      audience: RESOURCE,
      client: { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
      idp: { resourceAudience: RESOURCE },
      routes: (url) => ({ fx: { url, token: 'client', resource: RESOURCE } }),
    });
  });
  after(async () => {
    await stack?.close();
  });

  it('gets a DPoP-bound client token and proves possession on every call, nonce challenge included', async () => {
    const { bff, upstream } = stack;
    const anonymous = new TestBrowser();
    for (let i = 0; i < 3; i++) {
      const res = await apiCall(anonymous, bff.url, '/api/fx/rates');
      assert.equal(res.status, 200, await res.text());
    }
    assertAcceptedWithProof(upstream, 3);
  });
});
