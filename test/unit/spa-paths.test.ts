/** The SPA's request classification (src/spa/paths.ts): traversal, client routes, hashed names. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  acceptsHtml,
  cacheControlFor,
  isClientRoute,
  isHashedName,
  isReservedPath,
  splitRequestPath,
} from '../../src/spa/paths.js';

describe('SPA request paths', () => {
  it('splits a path into raw and decoded segments and keeps the query', () => {
    assert.deepEqual(splitRequestPath('/a/b%20c.js?v=1', { dotfiles: false }), {
      raw: ['a', 'b%20c.js'],
      decoded: ['a', 'b c.js'],
      query: 'v=1',
    });
    assert.deepEqual(splitRequestPath('/', { dotfiles: false })?.decoded, ['']);
    assert.deepEqual(splitRequestPath('/docs/', { dotfiles: false })?.decoded, ['docs', '']);
  });

  it('refuses every form of traversal and ambiguous segments', () => {
    for (const target of [
      '/../secret',
      '/a/../../secret',
      '/./a',
      '/%2e%2e/secret',
      '/%2E%2e/secret',
      '/%252e%252e/secret',
      '/..;x/secret',
      '/a%2f..%2f..%2fsecret',
      '/a%5c..%5csecret',
      '/a\\..\\secret',
      '/a//b',
      '/a%00.js',
      '/a%23b',
      '/%zz',
      'relative',
    ])
      assert.equal(splitRequestPath(target, { dotfiles: true }), undefined, target);
  });

  it('refuses dotfiles for a directory, not for an origin', () => {
    for (const target of ['/.env', '/.git/config', '/assets/.hidden.js', '/%2egit/HEAD']) {
      assert.equal(splitRequestPath(target, { dotfiles: false }), undefined, target);
      assert.ok(splitRequestPath(target, { dotfiles: true }), target);
    }
  });

  it('keeps the BFF’s own paths out of the SPA', () => {
    const reserved = ['/auth', '/api', '/metrics'];
    for (const path of ['/auth', '/auth/x', '/api/echo/a.js', '/metrics'])
      assert.equal(
        isReservedPath(splitRequestPath(path, { dotfiles: false })!.decoded, reserved),
        true,
        path,
      );
    for (const path of ['/', '/authors', '/apis/x', '/app/auth'])
      assert.equal(
        isReservedPath(splitRequestPath(path, { dotfiles: false })!.decoded, reserved),
        false,
        path,
      );
  });

  it('treats a navigation to a path without extension as a client-side route', () => {
    const html = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    assert.equal(isClientRoute(['orders', '42'], html), true);
    assert.equal(isClientRoute(['orders', ''], html), true);
    assert.equal(isClientRoute(['app.js'], html), false);
    assert.equal(isClientRoute(['orders', '42'], '*/*'), false);
    assert.equal(isClientRoute(['orders', '42'], 'application/json'), false);
    assert.equal(isClientRoute(['orders', '42'], undefined), false);
    assert.equal(acceptsHtml('text/html;q=0'), false);
    assert.equal(acceptsHtml('Text/HTML; q=0.5'), true);
  });

  it('recognises content-hashed names (hex, 8 or more, digits and letters)', () => {
    for (const name of [
      'app.3f2a9c1d.js',
      'main-9b1e0c7fa2d4.css',
      'chunk.3f2a9c1d.chunk.js',
      'logo.0a1b2c3d.svg',
    ])
      assert.equal(isHashedName(name), true, name);
    for (const name of [
      'app.js',
      'index.html',
      'app.3f2a9c1.js',
      'vendors-12345678.js',
      'deadbeefcafe.js',
      'app.deadbeef.js',
      'my-component.js',
      'index-DiwrgTda.js',
      '3f2a9c1d',
    ])
      assert.equal(isHashedName(name), false, name);
  });

  it('caches hashed files for a year, revalidates others, never stores index.html', () => {
    assert.equal(cacheControlFor(['assets', 'app.3f2a9c1d.js']), 'public, max-age=31536000, immutable');
    assert.equal(cacheControlFor(['app.js']), 'no-cache');
    assert.equal(cacheControlFor(['index.html']), 'no-store');
    assert.equal(cacheControlFor(['docs', 'index.html']), 'no-store');
  });
});
