/**
 * Attack: caching and origin-acting headers on authenticated proxied responses (security review,
 * finding 3; and issue 11's "upstream security headers overwritten").
 *
 * A response to a request that carried the user's token kept the upstream's
 * `Cache-Control: public, max-age=3600` (or had none and no `Vary: Cookie`), so a shared cache or
 * the next user of a browser could be served it; an upstream's `Clear-Site-Data`, `Refresh`,
 * `Access-Control-Allow-*` and `text/html` bodies were served on the BFF's origin, where they act
 * with the user's session; and three global headers overwrote the upstream's own security headers.
 *
 * Fixed when: user-token responses are `private, no-store` (or `private` + `Vary: Cookie` on a route
 * that opts in), only allowlisted headers pass (per route extensible, never the origin-acting ones),
 * a Location leaves only within the route, every proxied response is CSP-sandboxed, and the
 * upstream's own security headers are kept.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { DevIdp } from '../../src/dev/idp.js';
import type { RunningBff } from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import type { RecordingUpstream } from '../helpers/upstream.js';

const HOSTILE = {
  'Cache-Control': 'public, max-age=3600',
  'Clear-Site-Data': '"cookies", "storage"',
  Refresh: '0; url=https://evil.example/',
  'Access-Control-Allow-Origin': 'https://evil.example',
  'Access-Control-Allow-Credentials': 'true',
  'Set-Cookie': '__Host-bff-session=attacker; Path=/; Secure',
  'Strict-Transport-Security': 'max-age=0',
  'WWW-Authenticate': 'Basic realm="x"',
  'Alt-Svc': 'h2="evil.example:443"',
  'X-Total-Count': '42',
  'X-Upstream': 'yes',
  'Content-Type': 'text/html; charset=utf-8',
};

describe('regression: cacheable and origin-acting authenticated proxied responses', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let stack: Stack;
  const browser = new TestBrowser();

  before(async () => {
    stack = await startStack({
      clientId: 'bff-cache',
      routes: (url) => ({
        echo: `${url}/v1/`,
        cached: { url, cache: 'private', responseHeaders: ['X-Total-Count'] },
        public: { url, token: 'none' },
      }),
    });
    ({ idp, bff, upstream } = stack);
    const login = await fullLogin(browser, bff.url, idp);
    assert.equal(login.status, 302);
  });
  after(async () => {
    await stack?.close();
  });

  const html = '<!doctype html><script>fetch("/api/echo/me",{headers:{"x-csrf":"1"}})</script>';

  it('a user-token response is private, no-store, whatever the upstream said', async () => {
    upstream.behave({ kind: 'status', status: 200, body: html, headers: HOSTILE });
    const res = await apiCall(browser, bff.url, '/api/echo/page');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    upstream.behave({
      kind: 'status',
      status: 200,
      body: '{}',
      headers: { 'Content-Type': 'application/json' },
    });
    const bare = await apiCall(browser, bff.url, '/api/echo/data');
    assert.equal(bare.headers.get('cache-control'), 'private, no-store', 'also when the upstream sent none');
  });

  it('headers that act on our origin never pass; unlisted ones neither', async () => {
    upstream.behave({ kind: 'status', status: 200, body: html, headers: HOSTILE });
    const res = await apiCall(browser, bff.url, '/api/echo/page');
    for (const name of [
      'clear-site-data',
      'refresh',
      'access-control-allow-origin',
      'access-control-allow-credentials',
      'set-cookie',
      'strict-transport-security',
      'www-authenticate',
      'alt-svc',
      'x-total-count',
      'x-upstream',
    ])
      assert.equal(res.headers.get(name), null, `${name} is dropped`);
    assert.match(
      res.headers.get('content-security-policy') ?? '',
      /\bsandbox\b/,
      'upstream HTML is sandboxed',
    );
  });

  it('a route that opts in gets private caching with Vary: Cookie and its listed headers', async () => {
    upstream.behave({
      kind: 'status',
      status: 200,
      body: '[]',
      headers: { ...HOSTILE, 'Cache-Control': 'public, max-age=60, s-maxage=600', Vary: 'Accept' },
    });
    const res = await apiCall(browser, bff.url, '/api/cached/list');
    assert.equal(res.headers.get('cache-control'), 'private, max-age=60');
    assert.equal(res.headers.get('vary'), 'Accept, Cookie');
    assert.equal(res.headers.get('x-total-count'), '42');
    assert.equal(res.headers.get('clear-site-data'), null, 'listing cannot unlock an origin-acting header');
  });

  it("the upstream's own security headers are kept, ours fill in the rest", async () => {
    upstream.behave({
      kind: 'status',
      status: 200,
      body: '{}',
      headers: {
        'Content-Type': 'application/json',
        'X-Frame-Options': 'SAMEORIGIN',
        'Referrer-Policy': 'strict-origin',
        'Content-Security-Policy': "default-src 'self'",
      },
    });
    const res = await apiCall(browser, bff.url, '/api/echo/x');
    assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.equal(res.headers.get('referrer-policy'), 'strict-origin');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'ours where the upstream sent none');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /sandbox/);
  });

  it('a Location inside the route maps to our path; anywhere else it is dropped', async () => {
    upstream.behave({
      kind: 'status',
      status: 201,
      body: '{}',
      headers: { Location: `${upstream.url}/v1/items/7?v=2` },
    });
    const created = await apiCall(browser, bff.url, '/api/echo/items', { method: 'POST', body: '{}' });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), '/api/echo/items/7?v=2');
    upstream.behave({ kind: 'status', status: 302, headers: { Location: 'https://evil.example/phish' } });
    const away = await apiCall(browser, bff.url, '/api/echo/go');
    assert.equal(away.headers.get('location'), null);
    upstream.behave({ kind: 'status', status: 302, headers: { Location: `${upstream.url}/admin` } });
    const outside = await apiCall(browser, bff.url, '/api/echo/go');
    assert.equal(outside.headers.get('location'), null, 'outside the route base');
  });

  it('a route without a user token keeps the upstream cache policy', async () => {
    upstream.behave({
      kind: 'status',
      status: 200,
      body: '{}',
      headers: { 'Cache-Control': 'public, max-age=300' },
    });
    const res = await apiCall(new TestBrowser(), bff.url, '/api/public/x');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=300');
  });
});
