/**
 * The SPA served from a directory (MS_BFF_STATIC_DIR): a real BFF on loopback, real files in a
 * temporary directory. Caching per kind of file, the index.html fallback for client-side routes and
 * only for them, the BFF's own paths kept, and every way out of the directory refused: `..` in any
 * encoding, dotfiles, symlinks leading outside.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/raw-http.js';
import { type Stack, startStack } from '../helpers/stack.js';

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const INDEX = '<!doctype html><title>spa</title><script src="/assets/app.3f2a9c1d.js"></script>';
const SECRET = 'TOP-SECRET-OUTSIDE';

describe('SPA from a directory', () => {
  let root: string;
  let stack: Stack;
  let base: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'spa-static-'));
    const dist = join(root, 'dist');
    mkdirSync(join(dist, 'assets'), { recursive: true });
    mkdirSync(join(dist, 'docs'));
    mkdirSync(join(dist, '.git'));
    writeFileSync(join(dist, 'index.html'), INDEX);
    writeFileSync(join(dist, 'assets', 'app.3f2a9c1d.js'), 'console.log("app");');
    writeFileSync(join(dist, 'robots.txt'), 'User-agent: *');
    writeFileSync(join(dist, '.env'), SECRET);
    writeFileSync(join(dist, '.git', 'config'), SECRET);
    writeFileSync(join(root, 'secret.txt'), SECRET);
    symlinkSync(join(dist, 'assets', 'app.3f2a9c1d.js'), join(dist, 'inside-link.js'));
    symlinkSync(join(root, 'secret.txt'), join(dist, 'escape.txt'));
    symlinkSync(root, join(dist, 'escape-dir'));
    symlinkSync(join(dist, '.env'), join(dist, 'to-dotfile.txt'));
    stack = await startStack({
      clientId: 'spa-static',
      env: {
        MS_BFF_STATIC_DIR: dist,
        MS_BFF_SPA_HEADERS: JSON.stringify({ 'Permissions-Policy': 'camera=()' }),
      },
    });
    base = stack.bff.url;
  });
  after(async () => {
    await stack?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${base}${path}`, { method, headers, redirect: 'manual' });

  it('serves index.html at / and /index.html, never stored, with the CSP and security headers', async () => {
    for (const path of ['/', '/index.html']) {
      const res = await get(path, { accept: HTML });
      assert.equal(res.status, 200, path);
      assert.equal(await res.text(), INDEX);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('etag'), null, 'nothing to revalidate');
      assert.match(
        res.headers.get('content-security-policy') ?? '',
        /^default-src 'self'; script-src 'self';/,
      );
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(res.headers.get('permissions-policy'), 'camera=()', 'MS_BFF_SPA_HEADERS');
    }
  });

  it('answers a navigation to a client-side route with index.html (GET and HEAD)', async () => {
    for (const path of ['/orders/42', '/orders/42/', '/docs', '/deep/a/b/c?tab=1']) {
      const res = await get(path, { accept: HTML });
      assert.equal(res.status, 200, path);
      assert.equal(await res.text(), INDEX, path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
    }
    const head = await get('/orders/42', { accept: HTML }, 'HEAD');
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(await head.text(), '');
  });

  it('does not answer other requests with index.html', async () => {
    // Not a navigation (fetch, XHR), a missing asset (a script tag must never get HTML), not GET.
    for (const [path, headers, method] of [
      ['/orders/42', { accept: 'application/json' }, 'GET'],
      ['/orders/42', {}, 'GET'],
      ['/assets/missing.js', { accept: HTML }, 'GET'],
      ['/missing.css', { accept: HTML }, 'GET'],
      ['/orders/42', { accept: HTML }, 'POST'],
    ] as const) {
      const res = await get(path, headers, method);
      assert.equal(res.status, 404, `${method} ${path} ${JSON.stringify(headers)}`);
      assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
      assert.equal(((await res.json()) as { code: string }).code, 'BFF_ROUTE_NOT_FOUND');
    }
  });

  it('keeps the BFF’s own paths: their 404 is never the SPA', async () => {
    for (const path of ['/auth/nope', '/api/nope/x', '/api', '/.well-known/nope', '/healthz/x']) {
      const res = await get(path, { accept: HTML, 'x-csrf': '1' });
      assert.equal(res.status, 404, path);
      assert.notEqual(await res.text(), INDEX, path);
    }
    const health = await get('/healthz', { accept: HTML });
    assert.equal(health.status, 200);
    assert.match(health.headers.get('content-type') ?? '', /json/);
    const session = await get('/auth/session', { accept: 'application/json' });
    assert.equal(session.status, 401);
    assert.equal(session.headers.get('permissions-policy'), null, 'the SPA headers stay on the SPA');
  });

  it('caches a hashed asset for a year as immutable, and revalidates other files', async () => {
    const asset = await get('/assets/app.3f2a9c1d.js');
    assert.equal(asset.status, 200);
    assert.equal(await asset.text(), 'console.log("app");');
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(asset.headers.get('content-type') ?? '', /javascript/);
    assert.match(asset.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const etag = asset.headers.get('etag');
    assert.ok(etag);
    // Raw: fetch() marks a request with validators `Cache-Control: no-cache` (Fetch §4.5), a reload.
    const again = await rawRequest(base, '/assets/app.3f2a9c1d.js', { 'If-None-Match': etag });
    assert.equal(again.status, 304);

    const plain = await get('/robots.txt');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('cache-control'), 'no-cache');
    assert.ok(plain.headers.get('etag'));
  });

  it('refuses .. in every encoding', async () => {
    for (const target of [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/%2E%2E/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/..%5c..%5csecret.txt',
      '/%252e%252e/secret.txt',
      '/..;/secret.txt',
      '//secret.txt',
    ]) {
      const res = await rawRequest(base, target, { accept: HTML });
      assert.ok(res.status === 404 || res.status === 400, `${target}: ${res.status}`);
      assert.ok(!res.head.includes('text/html'), `${target} got a page`);
    }
  });

  it('refuses dotfiles', async () => {
    for (const path of ['/.env', '/.git/config', '/%2eenv', '/.git', '/assets/.env']) {
      const res = await get(path, { accept: HTML });
      assert.equal(res.status, 404, path);
      assert.ok(!(await res.text()).includes(SECRET), path);
    }
  });

  it('follows a symlink inside the directory, refuses one leading out or onto a dotfile', async () => {
    const inside = await get('/inside-link.js');
    assert.equal(inside.status, 200);
    assert.equal(await inside.text(), 'console.log("app");');
    for (const path of ['/escape.txt', '/escape-dir/secret.txt', '/to-dotfile.txt']) {
      const res = await get(path, { accept: HTML });
      assert.equal(res.status, 404, path);
      assert.ok(!(await res.text()).includes(SECRET), path);
    }
  });
});
