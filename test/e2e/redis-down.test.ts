/**
 * Redis unavailable: requests get a clean 503 with a stable code, the process survives, nothing is
 * lost, and service resumes when Redis answers again. A private redis-server is used so the shared
 * one on 6379 is never disturbed.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisStore } from '../../src/store/redis-store.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { type PrivateRedis, REDIS_SERVER_MISSING, startRedisServer } from '../helpers/redis-servers.js';
import { type Stack, startStack } from '../helpers/stack.js';
import { TestBrowser } from '../helpers/test-browser.js';

describe('Redis outage', { skip: REDIS_SERVER_MISSING }, () => {
  let redis: PrivateRedis;
  let stack: Stack;
  let bff: Stack['bff'];
  let idp: Stack['idp'];

  before(async () => {
    redis = await startRedisServer();
    const store = await createRedisStore({ url: redis.url, keyPrefix: 'down:' });
    stack = await startStack({ clientId: 'bff-redis-down', store });
    ({ bff, idp } = stack);
  });
  after(async () => {
    redis?.resume();
    await stack?.close();
    await stack?.bff.store.close();
    await redis?.close();
  });

  it('answers 503 BFF_STORE_UNAVAILABLE while Redis hangs, keeps the session, and recovers', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    assert.equal((await apiCall(browser, bff.url, '/api/echo/before')).status, 200);

    redis.pause();
    try {
      // The hot path serves a session from memory while the change feed is live; a frozen Redis
      // stops echoing this instance's heartbeat, so within about a second the feed is no longer
      // live, the memory is dropped and requests go to Redis, which fails them.
      const started = Date.now();
      let api = await apiCall(browser, bff.url, '/api/echo/during');
      for (let i = 0; i < 40 && api.status === 200 && Date.now() - started < 4000; i++) {
        await sleep(100);
        api = await apiCall(browser, bff.url, '/api/echo/during');
      }
      assert.equal(api.status, 503);
      assert.equal(((await api.json()) as { code: string }).code, 'BFF_STORE_UNAVAILABLE');
      assert.ok(Date.now() - started < 5000, 'fails fast, does not hang');
      assert.equal(bff.store.changes?.live, false, 'the change feed is not live while Redis hangs');

      const login = await browser.request(`${bff.url}/auth/login?returnTo=/`);
      assert.equal(login.status, 503);
      assert.match(await login.text(), /BFF_STORE_UNAVAILABLE/);

      const ready = await browser.request(`${bff.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { checks: { store: { ok: boolean } } }).checks.store.ok, false);
      assert.equal((await browser.request(`${bff.url}/healthz`)).status, 200, 'the process is alive');
    } finally {
      redis.resume();
    }

    let after = 0;
    for (let i = 0; i < 30 && after !== 200; i++) {
      after = (await apiCall(browser, bff.url, '/api/echo/after')).status;
      if (after !== 200) await sleep(200);
    }
    assert.equal(after, 200, 'the same session works again once Redis answers');
    assert.equal((await browser.request(`${bff.url}/readyz`)).status, 200);
  });

  it('survives Redis being killed and restarted (sessions in a non-persistent Redis are gone: 401, not a crash)', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    await redis.kill();
    const during = await apiCall(browser, bff.url, '/api/echo/x');
    assert.equal(during.status, 503);
    await redis.restart();
    let status = 0;
    for (let i = 0; i < 30 && status !== 401; i++) {
      status = (await apiCall(browser, bff.url, '/api/echo/x')).status;
      if (status !== 401) await sleep(200);
    }
    assert.equal(status, 401);
    const again = new TestBrowser();
    assert.equal((await fullLogin(again, bff.url, idp)).status, 302, 'new logins work after the restart');
  });
});
