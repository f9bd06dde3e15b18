/**
 * The JARM replay cache itself refuses a replayed response, on the instance that saw it and on
 * another instance sharing the store. A replay normally dies earlier, at the single-use login
 * transaction; so these tests bring the transaction back (as a Redis failover that lost the DEL of
 * the consumed transaction would), and the replay must then be refused by the replay cache
 * (`jarm_replay_denied_total`), not by the transaction. Hostile IdP: it signs what the test asks.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { freePort, makeClientKey, type RunningBff } from '../helpers/bff-harness.js';
import { authorizeUntilCallback, errorCode } from '../helpers/flows.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { JARM_ENV, JARM_IDP_METADATA, startBffPair, startHostileIdpFor } from '../helpers/stack.js';
import { TestBrowser, type TestResponse } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-jarm-replay';

describe('JARM replay cache (shared store, two instances)', { timeout: 60_000 }, () => {
  let idp: HostileIdp;
  let a: RunningBff;
  let b: RunningBff;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const key = await makeClientKey('ES256');
    idp = await startHostileIdpFor(CLIENT_ID, portA, key);
    idp.misbehave({ overrideMetadata: JARM_IDP_METADATA });
    [a, b] = await startBffPair({
      ports: [portA, portB],
      prefix: 'bff-jarm-replay',
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      key,
      // One public URL, as behind a load balancer.
      env: { ...JARM_ENV, MS_BFF_PUBLIC_URL: `http://127.0.0.1:${portA}` },
    });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await idp?.close();
  });

  const authorize = (browser: TestBrowser) => authorizeUntilCallback(browser, a.url);

  async function deliver(bff: RunningBff, browser: TestBrowser, response: string): Promise<TestResponse> {
    const url = new URL(`${bff.url}/auth/callback`);
    url.searchParams.set('response', response);
    return browser.request(url);
  }

  /** The stored login transaction (sealed), by the key the BFF files it under. */
  const txKey = (state: string) => `t:${createHash('sha256').update(state).digest('base64url')}`;

  async function replayDenied(bff: RunningBff): Promise<number> {
    const text = await bff.metrics.render();
    return Number(/^jarm_replay_denied_total (\d+)/m.exec(text)?.[1] ?? '0');
  }

  for (const target of ['the same instance', 'another instance'] as const) {
    it(`refuses a replayed response through the replay cache (${target})`, async () => {
      const browser = new TestBrowser();
      const r = await authorize(browser);
      const sealed = await a.store.get(txKey(r.state));
      assert.ok(sealed, 'the login transaction is stored under its state');
      const response = await idp.signJwt({
        iss: idp.issuer,
        aud: CLIENT_ID,
        exp: now() + 60,
        iat: now(),
        jti: randomUUID(),
        state: r.state,
        code: r.code,
      });
      assert.equal((await deliver(a, browser, response)).status, 302, 'the first delivery logs in');
      assert.equal(await a.store.get(txKey(r.state)), undefined, 'the transaction was consumed');

      // The transaction comes back (a failover to a replica that missed the DEL).
      await a.store.set(txKey(r.state), sealed, 60_000);
      const bff = target === 'the same instance' ? a : b;
      const binding = browser.cookie(a.url, '__Host-bff-login');
      assert.ok(binding);
      if (bff === b) browser.setCookie(b.url, '__Host-bff-login', binding.value);
      const before = await replayDenied(bff);
      const replay = await deliver(bff, browser, response);
      assert.equal(replay.status, 400);
      assert.equal(await errorCode(replay), 'BFF_CALLBACK_INVALID');
      assert.equal(await replayDenied(bff), before + 1, 'refused by the replay cache');
    });
  }
});
