/**
 * Redis unavailable: requests get a clean 503 with a stable code, the process survives, nothing is
 * lost, and service resumes when Redis answers again. A private redis-server is used so the shared
 * one on 6379 is never disturbed.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 50; i++) {
    if (
      spawnSync('redis-cli', ['-p', String(port), 'ping'])
        .stdout?.toString()
        .includes('PONG')
    )
      return child;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

describe('Redis outage', { skip: hasRedis ? false : 'redis-server is not installed' }, () => {
  let idp: DevIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let redis: ChildProcess;
  let redisPort: number;

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startDevIdp({ clients: [clientMetadata('bff-redis-down', `http://127.0.0.1:${port}`, key)] });
    upstream = await startRecordingUpstream();
    const store = await createRedisStore({ url: `redis://127.0.0.1:${redisPort}`, keyPrefix: 'down:' });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-redis-down',
      key,
      store,
      routes: { echo: upstream.url },
    });
  });
  after(async () => {
    redis?.kill('SIGCONT');
    await bff?.close();
    await bff?.store.close();
    redis?.kill('SIGKILL');
    await upstream?.close();
    await idp?.close();
  });

  it('answers 503 BFF_STORE_UNAVAILABLE while Redis hangs, keeps the session, and recovers', async () => {
    const browser = new TestBrowser();
    await fullLogin(browser, bff.url, idp);
    assert.equal((await apiCall(browser, bff.url, '/api/echo/before')).status, 200);

    redis.kill('SIGSTOP');
    try {
      const started = Date.now();
      const api = await apiCall(browser, bff.url, '/api/echo/during');
      assert.equal(api.status, 503);
      assert.equal(((await api.json()) as { code: string }).code, 'BFF_STORE_UNAVAILABLE');
      assert.ok(Date.now() - started < 5000, 'fails fast, does not hang');

      const login = await browser.request(`${bff.url}/auth/login?returnTo=/`);
      assert.equal(login.status, 503);
      assert.match(await login.text(), /BFF_STORE_UNAVAILABLE/);

      const ready = await browser.request(`${bff.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { checks: { store: { ok: boolean } } }).checks.store.ok, false);
      assert.equal((await browser.request(`${bff.url}/healthz`)).status, 200, 'the process is alive');
    } finally {
      redis.kill('SIGCONT');
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
    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    const during = await apiCall(browser, bff.url, '/api/echo/x');
    assert.equal(during.status, 503);
    redis = await startRedis(redisPort);
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
