/**
 * Each frontend of the config file serves its own SPA (`static`, `frontendUrl` per frontend): the
 * app asks for the request's frontend's settings on every request. Two pathPrefix frontends on one
 * BFF, each with its own directory; a file of one is not served under the other.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Stack, startStack } from '../helpers/stack.js';

const HTML = 'text/html,application/xhtml+xml,*/*;q=0.8';

describe('SPA per frontend', () => {
  let root: string;
  let stack: Stack;
  let base: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'spa-frontends-'));
    for (const name of ['main', 'shop']) {
      mkdirSync(join(root, name, 'assets'), { recursive: true });
      writeFileSync(join(root, name, 'index.html'), `<!doctype html><title>${name}</title>`);
      writeFileSync(join(root, name, 'assets', `${name}.1a2b3c4d.js`), `// ${name}`);
    }
    const file = join(root, 'bff.json');
    writeFileSync(
      file,
      JSON.stringify({
        frontends: [
          { name: 'main', pathPrefix: '/', static: join(root, 'main') },
          {
            name: 'shop',
            pathPrefix: '/shop/',
            static: join(root, 'shop'),
            spaCsp: "default-src 'self'; script-src 'self' https://cdn.example.com",
            spaHeaders: '{"Permissions-Policy":"payment=(self)"}',
          },
        ],
      }),
    );
    stack = await startStack({ clientId: 'spa-frontends', env: { MS_BFF_CONFIG: file } });
    base = stack.bff.url;
  });
  after(async () => {
    await stack?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves each frontend’s index.html for its client-side routes, with its own headers', async () => {
    const main = await fetch(`${base}/orders/1`, { headers: { accept: HTML } });
    assert.equal(main.status, 200);
    assert.equal(await main.text(), '<!doctype html><title>main</title>');
    assert.match(main.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    assert.equal(main.headers.get('permissions-policy'), null);

    const shop = await fetch(`${base}/shop/cart`, { headers: { accept: HTML } });
    assert.equal(shop.status, 200);
    assert.equal(await shop.text(), '<!doctype html><title>shop</title>');
    assert.match(shop.headers.get('content-security-policy') ?? '', /script-src 'self' https:\/\/cdn/);
    assert.equal(shop.headers.get('permissions-policy'), 'payment=(self)');
  });

  it('serves a frontend’s files under its own prefix only', async () => {
    const shop = await fetch(`${base}/shop/assets/shop.1a2b3c4d.js`);
    assert.equal(shop.status, 200);
    assert.equal(await shop.text(), '// shop');
    assert.equal(shop.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal((await fetch(`${base}/assets/shop.1a2b3c4d.js`)).status, 404, 'not in main’s directory');
    assert.equal((await fetch(`${base}/shop/assets/main.1a2b3c4d.js`)).status, 404, 'not in shop’s');
    assert.equal(await (await fetch(`${base}/assets/main.1a2b3c4d.js`)).text(), '// main');
  });
});
