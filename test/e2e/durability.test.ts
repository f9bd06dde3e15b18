/**
 * Session-write durability on a real Sentinel topology (one master, one replica, three sentinels):
 * a login's session write waits for the replica (`MS_BFF_REDIS_DURABLE_REPLICAS`, Redis WAIT) before
 * the browser gets its cookie.
 *
 * The proof does not depend on timing: before the callback request the replica is stopped (SIGSTOP)
 * and its link to the master cut (CLIENT KILL TYPE replica), so new writes exist on the master only.
 * If the login answered while the replica was stopped (the write not yet replicated), the master is
 * killed at once, before the replica resumes: that session can only be lost. Otherwise the replica is
 * resumed, reconnects, catches up, the login answers, and the master is killed right after the response. Either way the
 * replica is promoted, and the session must answer on it. Without WAIT the first branch runs and the
 * session is gone (401). Also: when no replica acknowledges within the bound, the login still
 * succeeds (availability first; see docs/decisions/session-durability.md) and the shortfall is counted.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../helpers/bff-harness.js';
import { apiCall, fullLogin, loginUntilCallback } from '../helpers/flows.js';
import {
  haveRedisSentinel,
  haveRedisServer,
  type SentinelTopology,
  startSentinel,
  waitFor,
  withAdmin,
} from '../helpers/redis-servers.js';
import { TestBrowser } from '../helpers/test-browser.js';

const skip = haveRedisServer && haveRedisSentinel ? false : 'redis-server / redis-sentinel not on PATH';
/** How long the replica stays stopped while the login is in flight. */
const HOLD_MS = 400;

async function startStack(
  topology: SentinelTopology,
  durableTimeoutMs: number,
): Promise<{ idp: DevIdp; bff: RunningBff; store: RedisStore; prefix: string; close(): Promise<void> }> {
  const port = await freePort();
  const key = await makeClientKey('ES256');
  const prefix = `durable:${randomBytes(4).toString('hex')}:`;
  const store = await createRedisStore({
    topology: { kind: 'sentinel', sentinels: topology.endpoints, masterName: topology.masterName },
    keyPrefix: prefix,
    durableReplicas: 1,
    durableTimeoutMs,
  });
  const idp = await startDevIdp({
    clients: [clientMetadata('bff-durable', `http://127.0.0.1:${port}`, key)],
  });
  const bff = await startBff({ port, issuer: idp.issuer, clientId: 'bff-durable', key, store });
  return {
    idp,
    bff,
    store,
    prefix,
    async close() {
      await bff.close();
      await store.close();
      await idp.close();
    },
  };
}

function pause(topology: SentinelTopology, signal: 'SIGSTOP' | 'SIGCONT'): void {
  topology.replica.child.kill(signal);
}

describe('session-write durability (Sentinel, WAIT)', { skip }, () => {
  let topology: SentinelTopology;
  before(async () => {
    topology = await startSentinel({ downAfterMs: 1000 });
  });
  after(async () => {
    await topology?.close();
  });

  it('a login is answered only once the replica has the session: the master killed right after the response loses nothing', async () => {
    // Long enough for the resumed replica to reconnect and catch up (its replication cron runs every second).
    const stack = await startStack(topology, 8000);
    try {
      const browser = new TestBrowser({ timeoutMs: 15_000 });
      const callback = await loginUntilCallback(browser, stack.bff.url, stack.idp);

      // Stop the replica and cut its link: the master now holds every new write in its backlog only
      // (a stopped replica alone would still receive the stream into its socket buffer).
      pause(topology, 'SIGSTOP');
      await withAdmin(topology.master.port, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'replica'));
      let answeredWhileStopped = false;
      try {
        const response = browser.request(callback);
        answeredWhileStopped = await Promise.race([
          response.then(() => true),
          sleep(HOLD_MS).then(() => false),
        ]);
        if (answeredWhileStopped) {
          // Not replicated yet (the replica is stopped): a failover now can only lose this session.
          await topology.master.kill('SIGKILL');
          pause(topology, 'SIGCONT');
          assert.equal((await response).status, 302);
        } else {
          pause(topology, 'SIGCONT');
          assert.equal((await response).status, 302, 'the login completes once the replica acknowledged');
          await topology.master.kill('SIGKILL');
        }
      } finally {
        pause(topology, 'SIGCONT');
      }
      const cookie = browser.cookie(stack.bff.url, stack.bff.config.session.cookieName)?.value;
      assert.ok(cookie, 'the login set a session cookie');

      // The sentinels promote the replica; the BFF follows. A 401 means the session was lost.
      await waitFor(
        async () => {
          if ((await topology.currentMasterPort()) !== topology.replica.port) throw new Error('not promoted');
        },
        30_000,
        () => 'the replica was not promoted within 30 s',
      );
      let status = 0;
      await waitFor(
        async () => {
          const res = await apiCall(browser, stack.bff.url, '/auth/session');
          await res.text();
          status = res.status;
          if (status === 503) throw new Error('store not back yet');
        },
        30_000,
        () => `the BFF did not reach the promoted replica within 30 s (last status ${status})`,
      );
      assert.equal(status, 200, 'the session written before the failover is valid on the promoted replica');
      assert.equal(answeredWhileStopped, false, 'the login was not answered while no replica had its write');

      // The back-channel-logout indexes of that session were written before the WAIT: on the replica too.
      const id = cookie.split('.')[1] ?? '';
      const sessionKey = `s:${createHash('sha256').update(id).digest('base64url')}`;
      const keys = await withAdmin(topology.replica.port, (r) => r.keys(`${stack.prefix}*`));
      assert.ok(
        keys.some((k) => k.endsWith(sessionKey)),
        'the session record is on the promoted replica',
      );
      assert.ok(
        keys.some((k) => k.includes('sid:')) && keys.some((k) => k.includes('sub:')),
        `the sid and sub indexes are on the promoted replica (${keys.length} keys)`,
      );
    } finally {
      await stack.close();
    }
  });

  it('no replica within the bound: the login still succeeds and the shortfall is counted', async () => {
    // After the first test the promoted replica is the master and the old master is gone: start afresh.
    await topology.close();
    topology = await startSentinel({ downAfterMs: 5000 });
    const stack = await startStack(topology, 300);
    try {
      const warm = new TestBrowser();
      assert.equal((await fullLogin(warm, stack.bff.url, stack.idp)).status, 302);
      assert.equal(stack.store.durableShortfalls, 0, 'a login with the replica up is acknowledged');

      const browser = new TestBrowser({ timeoutMs: 15_000 });
      const callback = await loginUntilCallback(browser, stack.bff.url, stack.idp);
      pause(topology, 'SIGSTOP');
      try {
        assert.equal((await browser.request(callback)).status, 302);
      } finally {
        pause(topology, 'SIGCONT');
      }
      assert.equal(stack.store.durableShortfalls, 1, 'the unacknowledged write is counted');
      const res = await apiCall(browser, stack.bff.url, '/auth/session');
      assert.equal(res.status, 200);
      await res.text();
    } finally {
      await stack.close();
    }
  });
});
