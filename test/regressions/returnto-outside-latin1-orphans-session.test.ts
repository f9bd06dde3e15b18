/**
 * Attack: a `returnTo` that passes validation but cannot be sent in a `Location` header
 * (security review, finding 5).
 *
 * `returnTo=/€` (any character outside Latin-1) was accepted by /auth/login; the callback then
 * stored the session and only afterwards failed to send its redirect (Node's ERR_INVALID_CHAR): a
 * 500 with Fastify's default body instead of our error page, and a session holding a refresh token
 * that no cookie pointed to and nothing ever revoked.
 *
 * Fixed when: such a returnTo is kept percent-encoded, the callback redirects there with the session
 * cookie, and no session exists without the cookie that names it.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { errorCode, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('regression: returnTo outside Latin-1 left an orphan session', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let store: MemoryStore;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('bff-rt', `http://127.0.0.1:${port}`, key)] });
    store = new MemoryStore({ sweepIntervalMs: 0 });
    bff = await startBff({ port, issuer: idp.issuer, clientId: 'bff-rt', key, store });
  });
  after(async () => {
    await bff?.close();
    await store?.close();
    await idp?.close();
  });

  it('returnTo=/€ ends in a redirect to its encoded form, with the cookie of the one session created', async () => {
    const browser = new TestBrowser();
    const sessionsBefore = store.sizeOf('sessions');
    const callback = await fullLogin(browser, bff.url, idp, '/€/ü?q=ñ#§');
    assert.equal(callback.status, 302, await callback.text());
    assert.equal(callback.headers.get('location'), '/%E2%82%AC/%C3%BC?q=%C3%B1#%C2%A7');
    assert.ok(browser.cookie(bff.url, '__Host-bff-session'), 'the session cookie was set');
    const me = await browser.request(`${bff.url}/auth/session`);
    assert.equal(me.status, 200, 'the cookie names the session');
    // One session record plus its sid and sub indexes: nothing left behind without a cookie.
    assert.equal(store.sizeOf('sessions') - sessionsBefore, 3);
  });

  it('a returnTo that only becomes unsafe once normalised is refused at login', async () => {
    const res = await new TestBrowser().request(
      `${bff.url}/auth/login?returnTo=${encodeURIComponent('/a/..//evil.example/')}`,
      { headers: { 'sec-fetch-site': 'same-origin' } },
    );
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'BFF_LOGIN_INVALID_RETURN_TO');
  });
});
