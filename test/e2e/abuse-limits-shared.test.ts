/**
 * Abuse limits held across instances: two BFFs of one deployment on the same Redis (same key
 * prefix) share the per-address counters and the global PAR budget (@fastify/rate-limit's Redis
 * store on the session store's connection). A 2,000-login flood split over both is held to the
 * budget at the IdP while /healthz of each stays within 100 ms (the bound). Also: the cap on
 * open login transactions per browser (it refuses, before any IdP call; a used transaction frees
 * its slot), and X-Forwarded-For, which picks the client only when a trusted proxy sent it.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis-store.js';
import {
  type ClientKey,
  clientMetadata,
  freePort,
  makeClientKey,
  REDIS_URL,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { fullLogin } from '../helpers/flows.js';
import { TestBrowser } from '../helpers/test-browser.js';

const CLIENT_ID = 'bff-shared-limits';
const FLOOD = 2000;
/** The flood stops here even if unfinished (the test then fails on the count). */
const FLOOD_DEADLINE_MS = 60_000;
/**
 * Requests in flight per instance. The flood's client, both instances and the IdP share this
 * process's event loop (and the machine's two cores with other tests): more in flight only
 * lengthens the queue /healthz waits in, without testing more of the limits.
 */
const PER_INSTANCE = 4;

interface Pair {
  a: RunningBff;
  b: RunningBff;
  stores: RedisStore[];
}

describe('abuse limits shared by two instances through Redis', { timeout: 180_000 }, () => {
  let idp: DevIdp;
  let key: ClientKey;
  let publicPort: number;
  let parRequests = 0;
  const pairs: Pair[] = [];

  before(async () => {
    publicPort = await freePort();
    key = await makeClientKey('ES256');
    idp = await startDevIdp({
      clients: [clientMetadata(CLIENT_ID, `http://127.0.0.1:${publicPort}`, key)],
      onRequest: (r) => {
        if (r.method === 'POST' && r.url.split('?')[0]?.endsWith('/request')) parRequests++;
      },
    });
  });
  // Each test has its own pair (fresh counters); A always listens on the registered port.
  afterEach(async () => {
    for (const p of pairs.splice(0)) {
      await p.a.close();
      await p.b.close();
      for (const s of p.stores) await s.close();
    }
  });
  after(async () => {
    await idp?.close();
  });

  /**
   * Two instances of one deployment: same client, public URL (instance A's port, the one registered
   * at the IdP), session keys and Redis key prefix; each with its own store connection.
   */
  async function startPair(env: Record<string, string>): Promise<Pair> {
    const prefix = `bff-test:shared-limits:${randomBytes(6).toString('hex')}:`;
    const sessionKey = randomBytes(32).toString('base64url');
    const stores = [
      await createRedisStore({ url: REDIS_URL, keyPrefix: prefix }),
      await createRedisStore({ url: REDIS_URL, keyPrefix: prefix }),
    ];
    const common = { issuer: idp.issuer, clientId: CLIENT_ID, key, sessionKey };
    const publicUrl = `http://127.0.0.1:${publicPort}`;
    const aPort = publicPort;
    const a = await startBff({
      ...common,
      port: aPort,
      store: stores[0],
      env: { ...env, MS_BFF_PUBLIC_URL: publicUrl },
    });
    const b = await startBff({
      ...common,
      port: await freePort(),
      store: stores[1],
      env: { ...env, MS_BFF_PUBLIC_URL: publicUrl },
    });
    // startBff's url is the public URL; B listens elsewhere.
    const pair = { a, b: { ...b, url: listening(b) }, stores };
    pairs.push(pair);
    return pair;
  }

  function listening(bff: RunningBff): string {
    const address = bff.app.server.address();
    assert.ok(address && typeof address === 'object');
    return `http://127.0.0.1:${address.port}`;
  }

  async function login(base: string, headers: Record<string, string> = {}): Promise<number> {
    const res = await fetch(`${base}/auth/login?returnTo=/`, {
      redirect: 'manual',
      headers: { 'sec-fetch-site': 'none', ...headers },
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    return res.status;
  }

  it('shares the per-address login limit: what one instance counted, the other refuses', async () => {
    const { a, b } = await startPair({ MS_BFF_LOGIN_RATE_LIMIT: '4', MS_BFF_PAR_BUDGET: '0' });
    for (let i = 0; i < 4; i++) assert.equal(await login(a.url), 302, `login ${i + 1} at A`);
    // B has served nobody yet: the counter it reads is A's.
    const refused = await fetch(`${b.url}/auth/login?returnTo=/`, {
      redirect: 'manual',
      headers: { 'sec-fetch-site': 'none' },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    assert.match(await refused.text(), /BFF_RATE_LIMITED/);
    assert.match(await b.metrics.render(), /bff_rate_limited_total\{limit="login"\} 1\b/);
    assert.equal(await login(a.url), 429, 'and A still refuses');
  });

  it('answers 429 problem+json with Retry-After on the back-channel endpoint, across instances', async () => {
    const { a, b } = await startPair({ MS_BFF_BACKCHANNEL_RATE_LIMIT: '3' });
    const post = (base: string) =>
      fetch(`${base}/auth/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'logout_token=not-a-jwt',
        signal: AbortSignal.timeout(10_000),
      });
    for (const base of [a.url, b.url, a.url]) {
      const res = await post(base);
      await res.arrayBuffer();
      assert.equal(res.status, 400, 'a bad logout token, counted');
    }
    const refused = await post(b.url);
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    const problem = (await refused.json()) as { status: number; code: string };
    assert.equal(problem.status, 429);
    assert.equal(problem.code, 'BFF_RATE_LIMITED');
  });

  it('holds a 2,000-login flood over both instances to the PAR budget at the IdP; /healthz stays within 100 ms', async (t) => {
    const BUDGET = 40;
    const { a, b } = await startPair({
      MS_BFF_LOGIN_RATE_LIMIT: '1000000',
      MS_BFF_PAR_BUDGET: String(BUDGET),
    });
    const pools = [
      new Pool(a.url, { connections: PER_INSTANCE }),
      new Pool(b.url, { connections: PER_INSTANCE }),
    ];
    const health = [new Pool(a.url, { connections: 1 }), new Pool(b.url, { connections: 1 })];
    try {
      parRequests = 0;
      const started = performance.now();
      const statuses: number[] = [];
      let sent = 0;
      const worker = async (pool: Pool) => {
        while (sent < FLOOD && performance.now() - started < FLOOD_DEADLINE_MS) {
          sent++;
          const res = await pool.request({
            method: 'GET',
            path: '/auth/login?returnTo=/',
            headers: { 'sec-fetch-site': 'none' },
          });
          await res.body.dump();
          statuses.push(res.statusCode);
        }
      };
      const latencies: number[] = [];
      let flooding = true;
      const sampler = (async () => {
        while (flooding) {
          for (const pool of health) {
            const t0 = performance.now();
            const res = await pool.request({ method: 'GET', path: '/healthz' });
            await res.body.dump();
            assert.equal(res.statusCode, 200);
            latencies.push(performance.now() - t0);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await Promise.all(pools.flatMap((pool) => Array.from({ length: PER_INSTANCE }, () => worker(pool))));
      flooding = false;
      await sampler;
      const elapsed = performance.now() - started;

      assert.equal(statuses.length, FLOOD, `the flood finished within ${FLOOD_DEADLINE_MS} ms`);
      assert.equal(statuses.filter((s) => s === 302).length, BUDGET, 'exactly the budget got a login');
      assert.equal(statuses.filter((s) => s === 429).length, FLOOD - BUDGET, 'the rest was refused');
      assert.equal(parRequests, BUDGET, `the IdP saw ${parRequests} PAR requests (budget ${BUDGET})`);
      const refusedBy = await Promise.all(
        [a, b].map(async (bff) =>
          Number(/bff_rate_limited_total\{limit="par_budget"\} (\d+)/.exec(await bff.metrics.render())?.[1]),
        ),
      );
      assert.ok(
        refusedBy.every((n) => n > 0),
        `both instances refused part of the flood: ${refusedBy.join(', ')}`,
      );
      const max = Math.max(...latencies);
      t.diagnostic(
        `flood of ${FLOOD} over 2 instances in ${elapsed.toFixed(0)} ms; /healthz ${latencies.length} samples, max ${max.toFixed(1)} ms`,
      );
      assert.ok(latencies.length >= 4, 'sampled throughout the flood');
      assert.ok(max < 100, `/healthz answered within 100 ms throughout (max ${max.toFixed(1)} ms)`);
    } finally {
      for (const p of [...pools, ...health]) await p.close();
    }
  });

  it('caps open login transactions per browser: the next one is refused before the IdP, a finished one frees its slot', async () => {
    const CAP = 3;
    const { a, b } = await startPair({
      MS_BFF_LOGIN_RATE_LIMIT: '1000',
      MS_BFF_LOGIN_TRANSACTIONS_PER_BROWSER: String(CAP),
    });
    const browser = new TestBrowser();
    const start = (base: string) =>
      browser.request(`${base}/auth/login?returnTo=/`, { headers: { 'sec-fetch-site': 'none' } });
    parRequests = 0;
    assert.equal((await start(a.url)).status, 302);
    // Behind one load balancer both instances are one origin: the test browser keeps a jar per
    // port, so B's gets the binding cookie A set.
    const binding = browser.cookie(a.url, '__Host-bff-login');
    assert.ok(binding);
    browser.setCookie(b.url, binding.name, binding.value);
    assert.equal((await start(b.url)).status, 302, 'the binding cookie is the deployment’s, not A’s');
    // The third login is completed (its transaction used): it no longer counts.
    const done = await fullLogin(browser, a.url, idp);
    assert.equal(done.status, 302, await done.text());
    assert.equal((await start(b.url)).status, 302, 'third open transaction');
    const pars = parRequests;
    const refused = await start(a.url);
    assert.equal(refused.status, 429, 'the fourth open one is refused (no eviction of older ones)');
    assert.equal(refused.headers.get('retry-after'), String(a.config.session.loginTimeoutSec));
    assert.match(await refused.text(), /BFF_RATE_LIMITED/);
    assert.equal(parRequests, pars, 'refused before any PAR request');
    assert.equal((await start(b.url)).status, 429, 'by the other instance too (the index is in Redis)');
    // Another browser is not affected.
    assert.equal(
      (await new TestBrowser().request(`${b.url}/auth/login`, { headers: { 'sec-fetch-site': 'none' } }))
        .status,
      302,
    );
  });

  it('counts per socket address when X-Forwarded-For comes from an untrusted peer', async () => {
    const { a, b } = await startPair({ MS_BFF_LOGIN_RATE_LIMIT: '3', MS_BFF_PAR_BUDGET: '0' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push(await login(i % 2 ? b.url : a.url, { 'x-forwarded-for': `203.0.113.${i + 1}` }));
    assert.deepEqual(statuses, [302, 302, 302, 429, 429], 'a new X-Forwarded-For per request gains nothing');
  });

  it('counts per forwarded client address when a trusted proxy sends X-Forwarded-For', async () => {
    const { a, b } = await startPair({
      MS_BFF_LOGIN_RATE_LIMIT: '3',
      MS_BFF_PAR_BUDGET: '0',
      MS_BFF_TRUSTED_PROXIES: 'loopback',
    });
    const client1 = { 'x-forwarded-for': '203.0.113.10' };
    for (let i = 0; i < 3; i++) assert.equal(await login(i % 2 ? b.url : a.url, client1), 302);
    assert.equal(await login(b.url, client1), 429, 'that client has used its limit');
    assert.equal(
      await login(a.url, { 'x-forwarded-for': '203.0.113.11' }),
      302,
      'another client has its own',
    );
    // A client that prepends an address of its choice: the proxy appends the real one, the rightmost
    // untrusted address is the client (RFC 7239 §5.2 chains; proxy-addr picks the nearest untrusted hop).
    assert.equal(
      await login(a.url, { 'x-forwarded-for': '198.51.100.99, 203.0.113.10' }),
      429,
      'a spoofed left-most address does not escape the limit',
    );
  });
});
