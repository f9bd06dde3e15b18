/**
 * Prevents: a refresh that silently switches the session to another user.
 *
 * Failure it guards against: OIDC Core §12.2 (https://openid.net/specs/openid-connect-core-1_0.html#RefreshTokenResponse)
 * requires a refreshed ID token to keep the original iss, sub, aud, azp and auth_time. The check
 * existed but no test exercised it: a refresh whose ID token names another subject must be refused
 * (BFF_ID_TOKEN_INVALID), the session must keep its old tokens, and no upstream may see the new
 * access token. Against the hostile IdP, which signs the refreshed ID token for `impostor`.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import { apiCall, errorCode } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { startHostileIdpFor } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const CLIENT_ID = 'bff-refresh-identity';

describe('regression: the identity of a refreshed ID token is checked', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let skewMs = 0;

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startHostileIdpFor(CLIENT_ID, port, key, { alg: 'PS256' });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      key,
      routes: { api: upstream.url },
      clock: () => Date.now() + skewMs,
    });
  });
  after(async () => {
    await bff?.close();
    await upstream?.close();
    await idp?.close();
  });

  it('refuses a refreshed ID token for another subject and keeps the session as it was', async () => {
    const browser = new TestBrowser();
    const start = await browser.navigate(`${bff.url}/auth/login?returnTo=/`, {
      stopWhen: (u) => u.href.startsWith(`${bff.url}/auth/callback`),
    });
    assert.ok(start.stopped);
    assert.equal((await browser.request(start.url)).status, 302);
    const cookie = browser.cookie(bff.url, '__Host-bff-session')?.value;
    const before = await bff.services.sessions.load(cookie);
    assert.ok(before);

    // A control: with the right subject, a refresh goes through (the test can tell the difference).
    skewMs += 400_000;
    assert.equal((await apiCall(browser, bff.url, '/api/api/ok')).status, 200);
    const refreshed = await bff.services.sessions.load(cookie);
    assert.notEqual(refreshed?.data.accessToken, before.data.accessToken, 'the control refresh happened');

    idp.misbehave({ refreshIdTokenSub: 'impostor' });
    skewMs += 400_000;
    upstream.requests.length = 0;
    const res = await apiCall(browser, bff.url, '/api/api/x');
    assert.notEqual(res.status, 200);
    assert.equal(await errorCode(res), 'BFF_ID_TOKEN_INVALID');
    assert.equal(upstream.requests.length, 0, 'no upstream call with the refused tokens');
    const after = await bff.services.sessions.load(cookie);
    assert.equal(after?.data.sub, before.data.sub);
    assert.equal(after?.data.accessToken, refreshed?.data.accessToken, 'the refused tokens were not stored');
  });
});
