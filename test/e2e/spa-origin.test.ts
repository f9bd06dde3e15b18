/**
 * The SPA streamed from a frontend origin (MS_BFF_FRONTEND_URL): a real node:http server on loopback
 * plays the CDN (or a Vite dev server) under a base path. Navigations get its index.html (never
 * stored), assets pass with their own caching, nothing of the browser's credentials reaches the
 * origin, nothing of the origin's cookies or policies reaches the browser, and its failures are the
 * BFF's stable errors.
 */
import { strict as assert } from 'node:assert';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/raw-http.js';
import { type Stack, startStack } from '../helpers/stack.js';

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const INDEX = '<!doctype html><title>from the origin</title>';
const ASSET = 'console.log("streamed");';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

describe('SPA from a frontend origin', () => {
  let origin: Server;
  let originUrl: string;
  const seen: Seen[] = [];
  let stack: Stack;
  let base: string;

  before(async () => {
    origin = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      const path = (req.url ?? '').split('?')[0];
      const hostile = {
        'set-cookie': 'cdn=1; Path=/',
        'content-security-policy': "script-src * 'unsafe-inline'",
        'access-control-allow-origin': '*',
        'x-origin-secret': 'internal',
      };
      if (path === '/app/index.html') {
        res.writeHead(200, { ...hostile, 'content-type': 'text/html; charset=utf-8', etag: '"i1"' });
        res.end(INDEX);
      } else if (path === '/app/assets/app.3f2a9c1d.js') {
        res.writeHead(200, {
          ...hostile,
          'content-type': 'text/javascript',
          'cache-control': 'public, max-age=31536000, immutable',
          etag: '"a1"',
        });
        res.end(req.method === 'HEAD' ? undefined : ASSET);
      } else if (path === '/app/broken') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('origin failure details');
      } else if (path === '/app/moved.js') {
        res.writeHead(301, { location: `${originUrl}/app/assets/app.3f2a9c1d.js?x=1` });
        res.end();
      } else if (path === '/app/hang.js') {
        // Never answers: the BFF's timeout (MS_BFF_UPSTREAM_TIMEOUT_MS) ends the wait.
        req.resume();
      } else if (path === '/app/double.js') {
        res.writeHead(302, { location: `${originUrl}/app//elsewhere.example/x.js` });
        res.end();
      } else if (path === '/app/away.js') {
        res.writeHead(302, { location: 'https://elsewhere.example/x.js' });
        res.end();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('origin 404 page');
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    stack = await startStack({
      clientId: 'spa-origin',
      env: { MS_BFF_FRONTEND_URL: `${originUrl}/app`, MS_BFF_UPSTREAM_TIMEOUT_MS: '1000' },
    });
    base = stack.bff.url;
  });
  after(async () => {
    await stack?.close();
    if (origin.listening) {
      origin.closeAllConnections();
      await new Promise<void>((resolve) => origin.close(() => resolve()));
    }
  });

  const last = () => seen.at(-1) as Seen;

  it('answers / and client-side routes with the origin’s index.html, never stored', async () => {
    for (const path of ['/', '/orders/42', '/orders/42/?tab=2']) {
      const res = await fetch(`${base}${path}`, {
        headers: { accept: HTML, 'if-none-match': '"i1"' },
      });
      assert.equal(res.status, 200, path);
      assert.equal(await res.text(), INDEX);
      assert.equal(last().url, '/app/index.html', `${path} fetched the index`);
      assert.equal(last().headers['if-none-match'], undefined, 'no revalidation of the index');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('etag'), null);
    }
  });

  it('streams an asset with its caching, under the BFF’s CSP and headers only', async () => {
    const res = await fetch(`${base}/assets/app.3f2a9c1d.js?v=2`, {
      headers: {
        cookie: '__Host-bff-session=v1.secret.mac; other=1',
        authorization: 'Bearer not-for-the-cdn',
        'x-csrf': '1',
        'x-forwarded-for': '10.0.0.1',
        'accept-language': 'de',
      },
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), ASSET);
    assert.equal(last().url, '/app/assets/app.3f2a9c1d.js?v=2');
    assert.equal(last().headers.cookie, undefined, 'no cookie reaches the origin');
    assert.equal(last().headers.authorization, undefined);
    assert.equal(last().headers['x-csrf'], undefined);
    assert.equal(last().headers['x-forwarded-for'], undefined);
    assert.equal(last().headers['accept-language'], 'de');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(res.headers.get('etag'), '"a1"');
    assert.equal(res.headers.get('set-cookie'), null, 'the origin sets no cookie on our origin');
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.equal(res.headers.get('x-origin-secret'), null);
    assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'self'; script-src 'self';/);
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');

    const head = await fetch(`${base}/assets/app.3f2a9c1d.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(last().method, 'HEAD');
  });

  it('is 404 for what the origin lacks, and never asks it for the BFF’s paths or ..', async () => {
    const missing = await fetch(`${base}/assets/missing.js`, { headers: { accept: HTML } });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'BFF_ROUTE_NOT_FOUND');
    assert.equal(last().url, '/app/assets/missing.js');
    // A first segment that looks like a scheme is a path below the frontend URL.
    const schemeLike = await fetch(`${base}/javascript:alert(1).js`);
    assert.equal(schemeLike.status, 404);
    assert.equal(last().url, '/app/javascript:alert(1).js');

    const before = seen.length;
    for (const target of [
      '/%2e%2e/secret',
      '/app/..%2f..%2fsecret',
      '/..;/x.js',
      '/auth/nope',
      '/metrics/x',
    ]) {
      const res = await rawRequest(base, target, { Accept: HTML });
      assert.ok(res.status === 404 || res.status === 400, `${target}: ${res.status}`);
    }
    assert.equal(seen.length, before, 'none of them reached the origin');
  });

  it('keeps a redirect within the frontend URL on our origin, refuses one elsewhere', async () => {
    const moved = await fetch(`${base}/moved.js`, { redirect: 'manual' });
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get('location'), '/assets/app.3f2a9c1d.js?x=1');
    for (const path of ['/away.js', '/double.js']) {
      const away = await fetch(`${base}${path}`, { redirect: 'manual' });
      assert.equal(away.status, 502, path);
      assert.equal(away.headers.get('location'), null, path);
      assert.equal(((await away.json()) as { code: string }).code, 'BFF_FRONTEND_UNAVAILABLE');
    }
  });

  it('turns an origin failure into 502 BFF_FRONTEND_UNAVAILABLE, counted, without its details', async () => {
    const res = await fetch(`${base}/broken`);
    assert.equal(res.status, 502);
    const body = await res.text();
    assert.match(body, /BFF_FRONTEND_UNAVAILABLE/);
    assert.doesNotMatch(body, /origin failure details/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /bff_errors_total\{code="BFF_FRONTEND_UNAVAILABLE"\} [1-9]/);
  });

  it('answers 504 when the origin does not answer in time', async () => {
    const res = await fetch(`${base}/hang.js`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as { code: string }).code, 'BFF_FRONTEND_UNAVAILABLE');
  });

  it('answers 502 when the origin is down', async () => {
    origin.closeAllConnections();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
    const res = await fetch(`${base}/orders/1`, { headers: { accept: HTML } });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { code: string }).code, 'BFF_FRONTEND_UNAVAILABLE');
  });
});
