/**
 * Refresh when the resource server says the token is bad (RFC 6750 §3.1): an upstream 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"` makes the BFF refresh once (single-flight, through
 * the refresh lock) and retry the request once with the new token, at most once per session per
 * MS_BFF_REFRESH_ON_401_MIN_INTERVAL_SECONDS. Against oidc-provider with rotating refresh tokens.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

/** A resource server that accepts a token only once `accept(distinctTokensSoFar)` says so. */
interface PickyApi {
  url: string;
  tokens: string[];
  bodies: string[];
  server: Server;
}

async function startPickyApi(accept: (tokenIndex: number) => boolean): Promise<PickyApi> {
  const api: PickyApi = { url: '', tokens: [], bodies: [], server: undefined as unknown as Server };
  api.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      api.bodies.push(Buffer.concat(chunks).toString());
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!api.tokens.includes(token)) api.tokens.push(token);
      if (accept(api.tokens.indexOf(token))) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ok: true }));
        return;
      }
      res.statusCode = 401;
      res.setHeader(
        'www-authenticate',
        'Bearer realm="api", error="invalid_token", error_description="revoked"',
      );
      res.end();
    });
  });
  await new Promise<void>((r) => api.server.listen(0, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  return api;
}

describe('refresh on upstream 401 invalid_token', { timeout: 60_000 }, () => {
  let idp: DevIdp;
  let twice: PickyApi;
  let never: PickyApi;
  let eager: RunningBff;
  let limited: RunningBff;
  const refreshGrants = new Map<string, number>();

  before(async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const [k1, k2] = [await makeClientKey(), await makeClientKey()];
    idp = await startDevIdp({
      clients: [
        clientMetadata('r401-eager', `http://127.0.0.1:${p1}`, k1),
        clientMetadata('r401-limited', `http://127.0.0.1:${p2}`, k2),
      ],
    });
    idp.provider.on(
      'grant.success',
      (ctx: { oidc: { params?: { grant_type?: unknown }; client?: { clientId: string } } }) => {
        if (ctx.oidc.params?.grant_type !== 'refresh_token') return;
        const id = ctx.oidc.client?.clientId ?? '?';
        refreshGrants.set(id, (refreshGrants.get(id) ?? 0) + 1);
      },
    );
    // Like the FAPI 2.0 conformance suite's refresh test: refuses until the client refreshed twice.
    twice = await startPickyApi((index) => index >= 2);
    never = await startPickyApi(() => false);
    eager = await startBff({
      port: p1,
      issuer: idp.issuer,
      clientId: 'r401-eager',
      key: k1,
      routes: { api: twice.url },
      env: { MS_BFF_REFRESH_ON_401_MIN_INTERVAL_SECONDS: '0' },
    });
    limited = await startBff({
      port: p2,
      issuer: idp.issuer,
      clientId: 'r401-limited',
      key: k2,
      routes: { api: never.url },
    });
  });
  after(async () => {
    await eager?.close();
    await limited?.close();
    for (const api of [twice, never]) {
      api?.server.closeAllConnections();
      await new Promise((r) => api?.server.close(r));
    }
    await idp?.close();
  });

  it('a resource server that refuses until two refreshes happened is served within three calls', async () => {
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, eager.url, idp)).status, 302);
    const statuses: number[] = [];
    for (let call = 0; call < 3 && statuses.at(-1) !== 200; call++) {
      const res = await apiCall(browser, eager.url, '/api/api/orders', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"order":1}',
      });
      statuses.push(res.status);
      await res.text();
    }
    assert.equal(statuses.at(-1), 200, `statuses: ${statuses.join(', ')}`);
    assert.equal(refreshGrants.get('r401-eager'), 2, 'exactly two refreshes');
    assert.equal(twice.tokens.length, 3, 'three distinct access tokens were presented');
    // The body went along on every retry.
    assert.ok(
      twice.bodies.every((b) => b === '{"order":1}'),
      JSON.stringify(twice.bodies),
    );
    const metrics = await eager.metrics.render();
    assert.match(metrics, /bff_upstream_invalid_token_total\{outcome="refreshed"\} 2/);
  });

  it('a resource server that always says invalid_token causes at most one refresh per interval', async () => {
    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, limited.url, idp)).status, 302);
    const before = refreshGrants.get('r401-limited') ?? 0;
    for (let call = 0; call < 5; call++) {
      const res = await apiCall(browser, limited.url, '/api/api/x');
      assert.equal(res.status, 401, 'the upstream answer is passed on');
      await res.text();
    }
    assert.equal((refreshGrants.get('r401-limited') ?? 0) - before, 1, 'one refresh in the 30 s interval');
    const metrics = await limited.metrics.render();
    assert.match(metrics, /bff_upstream_invalid_token_total\{outcome="refreshed"\} 1/);
    assert.match(metrics, /bff_upstream_invalid_token_total\{outcome="rate_limited"\} 4/);
  });
});
