/**
 * Interoperability with Glewlwyd 2.7, a second, independently written IdP: full logins through the
 * BFF with MS_BFF_IDP_PRESET=glewlwyd and the client's credentials only.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { apiCall } from '../helpers/flows.js';
import {
  type Glewlwyd,
  glewlwydClient,
  glewlwydUnavailable,
  loginUntilCallback,
  startGlewlwyd,
} from '../helpers/glewlwyd.js';
import { TestBrowser } from '../helpers/test-browser.js';

const skip = glewlwydUnavailable() ?? false;

async function login(glw: Glewlwyd, bff: RunningBff, clientId: string, browser = new TestBrowser()) {
  const cb = await loginUntilCallback(glw, browser, bff.url, clientId);
  const callback = await browser.request(cb.url, cb.pending ?? {});
  return { browser, callback };
}

describe('Glewlwyd: plain login with the preset', { skip }, () => {
  let glw: Glewlwyd;
  let bff: RunningBff;
  before(async () => {
    glw = await startGlewlwyd();
    const port = await freePort();
    const key = await makeClientKey('ES256');
    await glw.addClient(
      glewlwydClient('bffplain', `http://127.0.0.1:${port}`, { method: 'private_key_jwt' }),
    );
    bff = await startBff({
      port,
      issuer: glw.issuer,
      clientId: 'bffplain',
      key,
      env: { MS_BFF_IDP_PRESET: 'glewlwyd', OIDC_SCOPES: 'openid profile email offline_access' },
    });
  });
  after(async () => {
    await bff?.close();
    await glw?.close();
  });

  it('logs in with private_key_jwt', async () => {
    const { browser, callback } = await login(glw, bff, 'bffplain');
    assert.equal(callback.status, 302, await callback.text());
    const session = await apiCall(browser, bff.url, '/auth/session');
    assert.equal(session.status, 200, await session.text());
  });
});
