/**
 * The whole flow on replicated Redis topologies, once on Sentinel (master, replica, three sentinels)
 * and once on Cluster (three masters, three replicas), with two BFF instances sharing the store:
 * login on A → API call on B → refresh (forced by a clock skew) on B, seen by A without a second
 * refresh → the user ends the IdP session → back-channel logout ends the session on A and on B.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore, type RedisTopology } from '../../src/store/redis-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin } from '../helpers/flows.js';
import { haveRedisSentinel, haveRedisServer, startCluster, startSentinel } from '../helpers/redis-servers.js';
import { confirmEndSession, TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const skip = haveRedisServer && haveRedisSentinel ? false : 'redis-server / redis-sentinel not on PATH';

async function fullFlow(topology: RedisTopology): Promise<void> {
  const portA = await freePort();
  const portB = await freePort();
  const key = await makeClientKey('ES256');
  let idp: DevIdp | undefined;
  let upstream: RecordingUpstream | undefined;
  const bffs: RunningBff[] = [];
  let skew = 0;
  const refreshes: number[] = [];
  try {
    idp = await startDevIdp({
      clients: [
        {
          ...clientMetadata('bff-topology', `http://127.0.0.1:${portA}`, key),
          backchannel_logout_uri: `http://127.0.0.1:${portA}/auth/backchannel-logout`,
          backchannel_logout_session_required: true,
        },
      ],
    });
    idp.provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: unknown } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') refreshes.push(Date.now());
    });
    upstream = await startRecordingUpstream();
    const prefix = `flow:${randomBytes(4).toString('hex')}:`;
    const common = {
      issuer: idp.issuer,
      clientId: 'bff-topology',
      key,
      routes: { echo: upstream.url },
      clock: () => Date.now() + skew,
      env: {
        MS_BFF_SESSION_KEYS: randomBytes(32).toString('base64url'),
        MS_BFF_PUBLIC_URL: `http://127.0.0.1:${portA}`,
      },
    };
    for (const port of [portA, portB]) {
      const store = await createRedisStore({
        topology,
        keyPrefix: prefix,
        durableReplicas: 1,
        durableTimeoutMs: 2000,
      });
      bffs.push(await startBff({ ...common, port, store }));
    }
    const [a, b] = bffs as [RunningBff, RunningBff];

    const browser = new TestBrowser();
    assert.equal((await fullLogin(browser, a.url, idp)).status, 302, 'login on A');
    const onB = new TestBrowser();
    onB.setCookie(b.url, '__Host-bff-session', browser.cookie(a.url, '__Host-bff-session')?.value ?? '');
    assert.equal((await apiCall(onB, b.url, '/api/echo/one')).status, 200, 'API call on B');
    assert.equal((await apiCall(browser, a.url, '/api/echo/two')).status, 200, 'API call on A');

    skew += 3_600_000;
    const before = refreshes.length;
    assert.equal((await apiCall(onB, b.url, '/api/echo/after-expiry')).status, 200, 'refreshed through B');
    assert.equal(refreshes.length - before, 1, 'one refresh');
    assert.equal((await apiCall(browser, a.url, '/api/echo/on-a')).status, 200, 'A uses the rotated tokens');
    assert.equal(refreshes.length - before, 1, 'A did not refresh again');
    skew = 0;

    const done = await confirmEndSession(browser, new URL(`${idp.issuer}/session/end`));
    assert.ok(done.response.status < 400);
    assert.equal(
      (await apiCall(browser, a.url, '/auth/session')).status,
      401,
      'back-channel logout ended it on A',
    );
    assert.equal((await apiCall(onB, b.url, '/auth/session')).status, 401, 'and on B');
  } finally {
    for (const bff of bffs) {
      await bff.close();
      await bff.store.close();
    }
    await upstream?.close();
    await idp?.close();
  }
}

describe('login → API → refresh → back-channel logout on replicated Redis', { skip }, () => {
  it('Sentinel', async () => {
    const t = await startSentinel();
    try {
      await fullFlow({ kind: 'sentinel', sentinels: t.endpoints, masterName: t.masterName });
    } finally {
      await t.close();
    }
  });

  it('Cluster', async () => {
    const t = await startCluster();
    try {
      await fullFlow({ kind: 'cluster', nodes: t.endpoints });
    } finally {
      await t.close();
    }
  });
});
