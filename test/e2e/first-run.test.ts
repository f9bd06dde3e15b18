/**
 * A newcomer's first `npm start` (the real entry point, development setup, no OIDC_ISSUER): the only
 * URL printed is the public URL; a browser on http://127.0.0.1:<port> is moved to the public URL
 * (http://localhost:<port>) before a login starts, and logs in from there; a callback that does not
 * belong to the browser says which URL to open; a taken port ends in one line naming PORT.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/bff-harness.js';
import { errorCode } from '../helpers/flows.js';
import { type MainProcess, startMain } from '../helpers/main-process.js';
import { loginAtDevIdp, TestBrowser } from '../helpers/test-browser.js';

describe('first run of the development setup', { timeout: 120_000 }, () => {
  let main: MainProcess;
  let port: number;
  let publicUrl: string;

  before(async () => {
    port = await freePort();
    publicUrl = `http://localhost:${port}/`;
    main = startMain({ PORT: String(port) });
    await main.waitFor('fapi-bff DEVELOPMENT SETUP');
    await main.waitFor('listening');
  });
  after(() => main?.stop());

  it('prints the public URL and no other URL', () => {
    const printed = `${main.stdout()}\n${main.stderr()}`;
    const urls = [...printed.matchAll(/https?:\/\/[^\s"'),]+/g)].map((m) => m[0]);
    assert.ok(urls.length > 0, printed);
    assert.deepEqual([...new Set(urls)], [publicUrl], printed);
  });

  it('redirects a request on 127.0.0.1 to the public URL, path and query kept', async () => {
    const browser = new TestBrowser();
    const res = await browser.request(`http://127.0.0.1:${port}/auth/login?returnTo=%2Fx`);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${publicUrl}auth/login?returnTo=%2Fx`);
    assert.equal(
      browser.cookie(`http://127.0.0.1:${port}`, '__Host-bff-login'),
      undefined,
      'no login started',
    );
    const root = await browser.request(`http://127.0.0.1:${port}/`);
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), publicUrl);
  });

  for (const start of ['public URL', '127.0.0.1'] as const) {
    it(`logs in when opened at the ${start}`, async () => {
      const browser = new TestBrowser();
      const origin = start === 'public URL' ? publicUrl : `http://127.0.0.1:${port}/`;
      const idpStop = (u: URL) => u.port !== String(port);
      const started = await browser.navigate(`${origin}auth/login?returnTo=%2F`, { stopWhen: idpStop });
      assert.ok(started.stopped, `login reached the IdP (${started.response.status})`);
      const done = await loginAtDevIdp(browser, started.url, 'alice', 'alice-password', (u) =>
        u.href.startsWith(`${publicUrl}auth/callback`),
      );
      const landed = await browser.navigate(done.url);
      assert.equal(landed.url.href, publicUrl);
      const session = await browser.request(`${publicUrl}auth/session`);
      assert.equal(session.status, 200);
      assert.equal((await session.json<{ claims: { sub: string } }>()).claims.sub, 'alice');
    });
  }

  it('says which URL to open when the callback does not belong to this browser', async () => {
    const starter = new TestBrowser();
    const started = await starter.navigate(`${publicUrl}auth/login?returnTo=%2F`, {
      stopWhen: (u) => u.port !== String(port),
    });
    const done = await loginAtDevIdp(starter, started.url, 'alice', 'alice-password', (u) =>
      u.href.startsWith(`${publicUrl}auth/callback`),
    );
    // Another browser (no login binding cookie) arrives with this callback.
    const res = await new TestBrowser().request(done.url);
    assert.equal(res.status, 400);
    const html = await res.text();
    assert.equal(await errorCode(res), 'BFF_CALLBACK_STATE_MISMATCH');
    assert.match(html, new RegExp(`Open ${publicUrl.replace(/[.]/g, '\\.')} and sign in from there`));
    assert.match(html, new RegExp(`href="${publicUrl}auth/login"[^>]*>Sign in again`));
  });

  it('ends in one line naming PORT when the port is taken', async () => {
    const second = startMain({ PORT: String(port) });
    const code = await second.exited(60_000);
    assert.equal(code, 1);
    const lines = second.stderr().trim().split('\n');
    assert.equal(lines.length, 1, second.stderr());
    assert.match(lines[0] ?? '', new RegExp(`port ${port} .* already in use; set PORT`));
    assert.doesNotMatch(second.stderr(), /\n\s+at /, 'no stack trace');
  });
});
