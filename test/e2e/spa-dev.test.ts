/**
 * The development setup (`npm start`, no OIDC_ISSUER) serves the demo SPA like any SPA (src/spa/,
 * MS_BFF_STATIC_DIR set to demo/spa): client-side routes get its index.html, never stored, under the
 * default CSP. An MS_BFF_FRONTEND_URL in the environment (the developer's own Vite) takes its place.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/bff-harness.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';

const HTML = 'text/html,application/xhtml+xml,*/*;q=0.8';

describe('SPA of the development setup', { timeout: 120_000 }, () => {
  let origin: Server;
  let originUrl: string;
  const mains: MainProcess[] = [];

  before(async () => {
    origin = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>my own vite app</title>');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/`;
  });
  after(async () => {
    for (const main of mains) await main.stop();
    origin.closeAllConnections();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  });

  async function start(env: Record<string, string>): Promise<string> {
    const port = await freePort();
    const main = startMain({ PORT: String(port), ...env });
    mains.push(main);
    await main.waitFor('fapi-bff DEVELOPMENT SETUP');
    return `http://localhost:${port}`;
  }

  it('serves demo/spa, with the index.html fallback for client-side routes', async () => {
    const base = await start({});
    for (const path of ['/', '/some/client/route']) {
      const res = await fetch(`${base}${path}`, { headers: { accept: HTML } });
      assert.equal(res.status, 200, path);
      assert.match(await res.text(), /<title>fapi-bff demo SPA<\/title>/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    }
    const script = await fetch(`${base}/app.js`);
    assert.equal(script.status, 200);
    assert.equal(script.headers.get('cache-control'), 'no-cache', 'not hashed: revalidated');
    assert.equal((await fetch(`${base}/nothing.js`)).status, 404);
  });

  it('gives way to MS_BFF_FRONTEND_URL from the environment', async () => {
    const base = await start({ MS_BFF_FRONTEND_URL: originUrl });
    const res = await fetch(`${base}/some/client/route`, { headers: { accept: HTML } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /my own vite app/);
  });
});
