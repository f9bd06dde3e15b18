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
import { apiCall, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('session timeouts and GET logout', () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let offset = 0;
  const clock = () => Date.now() + offset;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata('bff-timeouts', `http://127.0.0.1:${port}`, key)],
      accessTokenTtlSec: 86_400,
    });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-timeouts',
      key,
      store: new MemoryStore({ clock }),
      clock,
      env: { MS_BFF_SESSION_IDLE_TIMEOUT: '600', MS_BFF_SESSION_ABSOLUTE_TIMEOUT: '3600' },
    });
  });
  after(async () => {
    await bff?.close();
    await bff?.store.close();
    await idp?.close();
  });

  it('ends a session after the idle timeout, and activity extends it', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    for (let i = 0; i < 3; i++) {
      offset += 400_000; // 400 s of 600 s idle, three times: alive because each use renews it
      assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 200, `use ${i}`);
    }
    offset += 601_000;
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 401);
  });

  it('ends a session at the absolute timeout whatever the activity', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    for (let i = 0; i < 9; i++) {
      offset += 390_000;
      assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 200, `use ${i}`);
    }
    offset += 390_000; // 3900 s > 3600 s absolute
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 401);
  });

  it('logs out with GET /auth/logout?sid=<the session sid> and sends the browser to end_session', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    const me = (await (await apiCall(browser, bff.url, '/auth/session')).json()) as { logoutUrl: string };
    const res = await browser.request(`${bff.url}${me.logoutUrl}`);
    assert.equal(res.status, 302);
    assert.ok((res.headers.get('location') ?? '').startsWith(idp.issuer));
    assert.equal((await apiCall(browser, bff.url, '/auth/session')).status, 401);
    const again = await browser.request(`${bff.url}${me.logoutUrl}`);
    assert.equal(again.status, 302, 'a second logout with no session just goes home');
    assert.equal(again.headers.get('location'), `${bff.url}/`);
  });
});
