import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { request as undiciRequest } from 'undici';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { freePort } from '../helpers/ports.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('API proxy', () => {
  let stack: Stack;
  let bff: Stack['bff'];
  let upstream: Stack['upstream'];
  let deadPort: number;
  const browser = new TestBrowser();
  let cookie = '';

  before(async () => {
    deadPort = await freePort();
    stack = await startStack({
      clientId: 'bff-proxy',
      routes: (upstreamUrl) => ({
        echo: upstreamUrl,
        based: `${upstreamUrl}/v1/base/`,
        public: { url: upstreamUrl, token: 'none' },
        slow: { url: upstreamUrl, timeoutMs: 300 },
        dead: `http://127.0.0.1:${deadPort}`,
      }),
    });
    ({ bff, upstream } = stack);
    await fullLogin(browser, bff.url, stack.idp);
    cookie = `__Host-bff-session=${browser.cookie(bff.url, '__Host-bff-session')?.value}`;
  });
  after(async () => {
    await stack?.close();
  });
  beforeEach(() => {
    upstream.behave({ kind: 'ok' });
    upstream.requests.length = 0;
  });

  it('joins the route base path and keeps the query untouched', async () => {
    const res = await apiCall(browser, bff.url, '/api/based/a%20b/c?q=1&q=2&x=%2F');
    assert.equal(res.status, 200);
    assert.equal(upstream.requests[0]?.url, '/v1/base/a%20b/c?q=1&q=2&x=%2F');
  });

  it('forwards token policy "none" routes without a session and without a token', async () => {
    const anonymous = new TestBrowser();
    const res = await apiCall(anonymous, bff.url, '/api/public/feed');
    assert.equal(res.status, 200);
    assert.equal(upstream.requests[0]?.headers.authorization, undefined);
  });

  it('streams large request and response bodies (not limited by the 1 MiB parser limit)', async () => {
    upstream.behave({ kind: 'echo-body' });
    const body = randomBytes(8 * 1024 * 1024);
    const res = await undiciRequest(`${bff.url}/api/echo/upload`, {
      method: 'PUT',
      headers: { cookie, 'x-csrf': '1', 'content-type': 'application/octet-stream' },
      body,
    });
    assert.equal(res.statusCode, 200);
    const back = Buffer.from(await res.body.arrayBuffer());
    assert.equal(
      createHash('sha256').update(back).digest('hex'),
      createHash('sha256').update(body).digest('hex'),
    );
  });

  it('passes upstream error statuses through unchanged', async () => {
    upstream.behave({
      kind: 'status',
      status: 418,
      body: '{"teapot":true}',
      headers: { 'content-type': 'application/json' },
    });
    const res = await apiCall(browser, bff.url, '/api/echo/x');
    assert.equal(res.status, 418);
    assert.deepEqual(await res.json(), { teapot: true });
  });

  it('answers 504 BFF_UPSTREAM_TIMEOUT for an upstream that hangs, and keeps the session', async () => {
    upstream.behave({ kind: 'hang' });
    const res = await apiCall(browser, bff.url, '/api/slow/x');
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as { code: string }).code, 'BFF_UPSTREAM_TIMEOUT');
    upstream.behave({ kind: 'ok' });
    assert.equal((await apiCall(browser, bff.url, '/api/echo/x')).status, 200);
  });

  it('answers 502 BFF_UPSTREAM_UNAVAILABLE for a refused connection and a destroyed socket', async () => {
    const refused = await apiCall(browser, bff.url, '/api/dead/x');
    assert.equal(refused.status, 502);
    assert.equal(((await refused.json()) as { code: string }).code, 'BFF_UPSTREAM_UNAVAILABLE');
    upstream.behave({ kind: 'destroy' });
    const destroyed = await apiCall(browser, bff.url, '/api/echo/x');
    assert.equal(destroyed.status, 502);
  });

  it('counts proxied requests by route and status class', async () => {
    await apiCall(browser, bff.url, '/api/echo/metrics');
    const text = await (await browser.request(`${bff.url}/metrics`)).text();
    assert.match(text, /bff_proxy_requests_total\{route="echo",status_class="2xx"\} [1-9]/);
    assert.match(text, /bff_proxy_requests_total\{route="slow",status_class="5xx"\} [1-9]/);
    assert.match(text, /bff_errors_total\{code="BFF_UPSTREAM_TIMEOUT"\} [1-9]/);
  });
});
