/**
 * The hot path reads sessions from process memory, and stays correct across instances: two BFF
 * instances on one private redis-server (this file kills and disconnects it). A logout on A is seen
 * by B within a bound (measured and printed), an API call on a warm instance costs no Redis read,
 * and a gap in the change feed (subscriber disconnected, Redis killed) never lets memory serve a
 * session the store no longer holds.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis-store.js';
import { SessionSealer } from '../../src/session/sealing.js';
import { SessionManager } from '../../src/session/session-manager.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, errorCode, fullLogin } from '../helpers/flows.js';
import {
  haveRedisServer,
  type Standalone,
  startStandalone,
  waitFor,
  withAdmin,
} from '../helpers/redis-servers.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

/** Generous: the target on loopback is ≤ 100 ms; a loaded 2-core machine gets slack. */
const PROPAGATION_BOUND_MS = 2000;

describe(
  'per-process session cache across instances',
  { skip: haveRedisServer ? false : 'no redis-server' },
  () => {
    let redis: Standalone;
    let idp: DevIdp;
    let upstream: RecordingUpstream;
    let a: RunningBff;
    let b: RunningBff;
    const prefix = `cache:${randomBytes(4).toString('hex')}:`;

    before(async () => {
      redis = await startStandalone();
      const portA = await freePort();
      const portB = await freePort();
      const key = await makeClientKey('ES256');
      idp = await startDevIdp({ clients: [clientMetadata('bff-cache', `http://127.0.0.1:${portA}`, key)] });
      upstream = await startRecordingUpstream();
      const common = {
        issuer: idp.issuer,
        clientId: 'bff-cache',
        key,
        routes: { echo: upstream.url },
        env: {
          MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
          MS_BFF_PUBLIC_URL: `http://127.0.0.1:${portA}`,
        },
      };
      a = await startBff({
        ...common,
        port: portA,
        store: await createRedisStore({ url: redis.url, keyPrefix: prefix }),
      });
      b = await startBff({
        ...common,
        port: portB,
        store: await createRedisStore({ url: redis.url, keyPrefix: prefix }),
      });
      await waitFor(async () => {
        if (!(a.store as RedisStore).changes.live || !(b.store as RedisStore).changes.live)
          throw new Error('feeds not live');
      }, 5000);
    });

    after(async () => {
      for (const bff of [a, b]) {
        await bff?.close();
        await bff?.store.close();
      }
      await upstream?.close();
      await idp?.close();
      await redis?.close();
    });

    /** A logged-in browser on A and the same cookie on B, both warm (the session is in each process's memory). */
    async function twoBrowsers(): Promise<{ onA: TestBrowser; onB: TestBrowser; sessionKey: string }> {
      const onA = new TestBrowser();
      assert.equal((await fullLogin(onA, a.url, idp)).status, 302);
      const onB = new TestBrowser();
      onB.setCookie(b.url, '__Host-bff-session', onA.cookie(a.url, '__Host-bff-session')?.value ?? '');
      assert.equal((await apiCall(onA, a.url, '/api/echo/warm')).status, 200);
      assert.equal((await apiCall(onB, b.url, '/api/echo/warm')).status, 200);
      // The store key of a session is a hash of the id in the cookie ticket `v1.<id>.<mac>`.
      const id = (onA.cookie(a.url, '__Host-bff-session')?.value ?? '').split('.')[1] ?? '';
      const sessionKey = `${prefix}v:s:${createHash('sha256').update(id).digest('base64url')}`;
      assert.equal(
        await withAdmin(redis.server.port, (r) => r.exists(sessionKey)),
        1,
        'the session is in Redis',
      );
      return { onA, onB, sessionKey };
    }

    async function getCalls(): Promise<number> {
      const stats = await withAdmin(redis.server.port, (r) => r.info('commandstats'));
      return Number(/cmdstat_get:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    }

    it('a session at hand without waiting (the API hot path) is one that needs no touch and is within its lifetime', async () => {
      // SessionManager.cached serves the API proxy without a promise: it must hand out exactly what
      // `load` would return without awaiting anything, never a session whose idle TTL is due for renewal.
      const store = await createRedisStore({ url: redis.url, keyPrefix: `${prefix}cached:` });
      try {
        await waitFor(async () => {
          if (!store.changes.live) throw new Error('feed not live');
        }, 5000);
        let now = Date.now();
        const sessions = new SessionManager(
          store,
          new SessionSealer([randomBytes(32)]),
          { idleTimeoutSec: 600, absoluteTimeoutSec: 3600 },
          () => now,
        );
        const { cookieValue, session } = await sessions.create({
          sub: 'alice',
          sid: 'sid-1',
          claims: {},
          identity: {},
          idToken: undefined,
          accessToken: 'at',
          tokenType: 'bearer',
          accessTokenExpiresAt: now + 3_600_000,
          refreshToken: undefined,
          scope: undefined,
        });
        assert.equal(sessions.cached(cookieValue), undefined, 'not opened in this process yet');
        assert.equal((await sessions.load(cookieValue))?.key, session.key);
        assert.equal(sessions.cached(cookieValue)?.key, session.key, 'opened, feed live, no touch due');
        assert.equal(sessions.cached(`${cookieValue}x`), undefined, 'another cookie value');
        now += 31_000; // more than idle/20: the next use renews the idle TTL in Redis
        assert.equal(sessions.cached(cookieValue), undefined, 'a touch is due: load must run');
        // Shorten the TTL in Redis: only a touch (the renewal `load` makes) can bring it back to ~600 s.
        const redisKey = `${prefix}cached:v:${session.key}`;
        await withAdmin(redis.server.port, (r) => r.pexpire(redisKey, 10_000));
        assert.equal((await sessions.load(cookieValue))?.key, session.key);
        const ttl = await withAdmin(redis.server.port, (r) => r.pttl(redisKey));
        assert.ok(ttl > 500_000, `load touched the session (TTL ${ttl} ms)`);
        assert.equal(sessions.cached(cookieValue)?.key, session.key, 'touched: at hand again');
        await sessions.destroy(session.key);
        assert.equal(sessions.cached(cookieValue), undefined, 'ended');
      } finally {
        await store.close();
      }
    });

    it('a warm instance serves API calls without reading the session from Redis', async () => {
      const { onB } = await twoBrowsers();
      const before = await getCalls();
      for (let i = 0; i < 20; i++)
        assert.equal((await apiCall(onB, b.url, `/api/echo/hot/${i}`)).status, 200);
      const reads = (await getCalls()) - before;
      assert.equal(reads, 0, `20 API calls on a warm instance read Redis ${reads} times`);
    });

    it('a logout on A is seen by B within the bound (time printed)', async () => {
      const samples: number[] = [];
      for (let round = 0; round < 3; round++) {
        const { onA, onB } = await twoBrowsers();
        const logout = await apiCall(onA, a.url, '/auth/logout', { method: 'POST' });
        assert.equal(logout.status, 302);
        const loggedOutAt = performance.now();
        let status = 200;
        for (
          let i = 0;
          i < 1000 && status === 200 && performance.now() - loggedOutAt < PROPAGATION_BOUND_MS;
          i++
        ) {
          status = (await apiCall(onB, b.url, '/api/echo/after-logout')).status;
        }
        const elapsed = performance.now() - loggedOutAt;
        assert.equal(
          status,
          401,
          `B still served the session ${elapsed.toFixed(1)} ms after the logout on A`,
        );
        samples.push(elapsed);
      }
      process.stdout.write(
        `# cross-instance logout propagation (logout response on A → first 401 on B): ${samples.map((s) => `${s.toFixed(1)} ms`).join(', ')}\n`,
      );
    });

    it('a session deleted while the feed was down is never served from memory afterwards', async () => {
      const { onB, sessionKey } = await twoBrowsers();
      const feed = (b.store as RedisStore).changes;
      const epoch = feed.epoch;
      // Cut every subscriber; the deletion below publishes nothing, like a notice lost in the gap.
      await withAdmin(redis.server.port, (r) => r.client('KILL', 'TYPE', 'pubsub'));
      await withAdmin(redis.server.port, (r) => r.del(sessionKey));
      await waitFor(async () => {
        if (!feed.live || feed.epoch === epoch) throw new Error('feed not back yet');
      }, 5000);
      const res = await apiCall(onB, b.url, '/api/echo/after-gap');
      assert.equal(res.status, 401, 'B re-read the store instead of trusting memory from before the gap');
    });

    it('Redis killed: a warm instance answers 503 with a code, never the cached session; the process stays up', async () => {
      const { onB } = await twoBrowsers();
      await redis.server.kill('SIGKILL');
      const started = Date.now();
      let res = await apiCall(onB, b.url, '/api/echo/redis-gone');
      for (let i = 0; i < 40 && res.status === 200 && Date.now() - started < 2000; i++) {
        await sleep(50);
        res = await apiCall(onB, b.url, '/api/echo/redis-gone');
      }
      assert.equal(res.status, 503);
      assert.equal(await errorCode(res), 'BFF_STORE_UNAVAILABLE');
      process.stdout.write(
        `# Redis killed → first 503 on a warm instance after ${Date.now() - started} ms\n`,
      );
      assert.equal((await apiCall(onB, b.url, '/readyz')).status, 503);
    });
  },
);
