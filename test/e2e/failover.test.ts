/**
 * Failover with nothing lost: a BFF on Redis Sentinel (master, replica, three sentinels) and on
 * Redis Cluster (three masters, three replicas), under a bounded load of API calls from several
 * signed-in browsers; a master is killed (SIGKILL). Every session written before the kill, the one
 * written just before it included, is valid after the promotion (session writes wait for a replica:
 * WAIT 1); every error in the gap is a 503 problem+json with code BFF_STORE_UNAVAILABLE, no request
 * hangs past its bound, and the recovery time is printed. Real processes, loopback ports.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { createRedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import { clientMetadata, freePort, makeClientKey, startBff } from '../helpers/bff-harness.js';
import { apiCall, errorCode, fullLogin } from '../helpers/flows.js';
import {
  haveRedisSentinel,
  haveRedisServer,
  type RedisProcess,
  startCluster,
  startSentinel,
} from '../helpers/redis-servers.js';
import { TestBrowser } from '../helpers/test-browser.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';

const skip = haveRedisServer && haveRedisSentinel ? false : 'redis-server / redis-sentinel not on PATH';
/** No request may take longer than this, whatever happens to Redis. */
const REQUEST_BOUND_MS = 8000;
const BROWSERS = 6;
const LOAD_LOOPS = 4;

interface Outcome {
  at: number;
  status: number;
  code: string | undefined;
  ms: number;
}

async function runFailover(
  label: string,
  storeOptions: () => RedisStoreOptions,
  killMaster: () => Promise<RedisProcess>,
  describeTopology: () => Promise<string>,
): Promise<void> {
  const port = await freePort();
  const key = await makeClientKey('ES256');
  let idp: DevIdp | undefined;
  let upstream: RecordingUpstream | undefined;
  const store = await createRedisStore({
    keyPrefix: `failover:${randomBytes(4).toString('hex')}:`,
    durableTimeoutMs: 2000,
    ...storeOptions(),
  });
  let bff: Awaited<ReturnType<typeof startBff>> | undefined;
  try {
    idp = await startDevIdp({ clients: [clientMetadata('bff-failover', `http://127.0.0.1:${port}`, key)] });
    upstream = await startRecordingUpstream();
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-failover',
      key,
      store,
      routes: { echo: upstream.url },
    });
    const url = bff.url;
    const browsers: TestBrowser[] = [];
    for (let i = 0; i < BROWSERS; i++) {
      const browser = new TestBrowser({ timeoutMs: REQUEST_BOUND_MS });
      assert.equal((await fullLogin(browser, url, idp)).status, 302);
      browsers.push(browser);
    }

    // Bounded load: a few loops of API calls until told to stop (at most 90 s and 5,000 calls each).
    const outcomes: Outcome[] = [];
    let stop = false;
    const loadStarted = Date.now();
    const loops = Array.from({ length: LOAD_LOOPS }, async (_, loop) => {
      for (let i = 0; i < 5000 && !stop && Date.now() - loadStarted < 90_000; i++) {
        const browser = browsers[(loop + i) % browsers.length] as TestBrowser;
        const started = Date.now();
        try {
          const res = await apiCall(browser, url, `/api/echo/load/${loop}/${i}`);
          const code = res.status === 200 ? undefined : await errorCode(res);
          if (res.status === 200) await res.text();
          outcomes.push({ at: started, status: res.status, code, ms: Date.now() - started });
        } catch {
          outcomes.push({ at: started, status: 0, code: 'no response', ms: Date.now() - started });
        }
        await sleep(20);
      }
    });
    await sleep(500);

    // The last login right before the kill: acknowledged by the replica (WAIT 1) before its cookie.
    const lastMinute = new TestBrowser({ timeoutMs: REQUEST_BOUND_MS });
    assert.equal((await fullLogin(lastMinute, url, idp)).status, 302);
    browsers.push(lastMinute);
    const killedAt = Date.now();
    const killed = await killMaster();
    assert.equal(killed.alive, false);

    // Recovered when every session answers again. A 401 would be a lost session: fail at once.
    let recoveredAt = 0;
    let lastRound = '';
    for (let round = 0; round < 900 && recoveredAt === 0 && Date.now() - killedAt < 90_000; round++) {
      const statuses: string[] = [];
      for (const browser of browsers) {
        const res = await apiCall(browser, url, '/auth/session');
        statuses.push(res.status === 200 ? '200' : `${res.status} ${await errorCode(res)}`);
        if (res.status === 200) await res.text();
      }
      lastRound = statuses.join(', ');
      assert.ok(
        !statuses.some((s) => s.startsWith('401')),
        `a session was lost in the failover (${lastRound})`,
      );
      if (statuses.every((s) => s === '200')) recoveredAt = Date.now();
      else await sleep(100);
    }
    // On a timeout, say whether the store never failed over or the BFF did not follow it.
    if (recoveredAt === 0) {
      assert.fail(
        `sessions did not all answer within 90 s: ${lastRound}; BFF's client ${store.client.status}; ${await describeTopology()}`,
      );
    }
    await sleep(1000);
    stop = true;
    await Promise.all(loops);
    const recoveryMs = recoveredAt - killedAt;

    const afterKill = outcomes.filter((o) => o.at >= killedAt);
    const failures = afterKill.filter((o) => o.status !== 200);
    process.stdout.write(
      `# ${label}: master killed; ${afterKill.length} calls after the kill, ${failures.length} failed ` +
        `(${[...new Set(failures.map((f) => `${f.status} ${f.code}`))].join(', ') || 'none'}); ` +
        `recovery ${recoveryMs} ms (kill → every session answers again); slowest call ${Math.max(...afterKill.map((o) => o.ms))} ms\n`,
    );
    for (const f of failures) {
      assert.equal(f.status, 503, `errors in the gap are 503 (got ${f.status} ${f.code})`);
      assert.equal(f.code, 'BFF_STORE_UNAVAILABLE');
    }
    for (const o of outcomes) assert.ok(o.ms < REQUEST_BOUND_MS, `a call took ${o.ms} ms`);

    // Zero sessions lost: every browser, the last-minute login included, still has its session.
    for (const [i, browser] of browsers.entries()) {
      const res = await apiCall(browser, url, '/auth/session');
      assert.equal(res.status, 200, `session ${i} survived the failover`);
      await res.text();
    }
  } finally {
    await bff?.close();
    await store.close();
    await upstream?.close();
    await idp?.close();
  }
}

describe('failover under load', { skip }, () => {
  it('Sentinel: the replica is promoted, the BFF follows, zero sessions lost', async () => {
    const topology = await startSentinel({ downAfterMs: 1000 });
    try {
      await runFailover(
        'Sentinel',
        () => ({
          topology: { kind: 'sentinel', sentinels: topology.endpoints, masterName: topology.masterName },
          durableReplicas: 1,
        }),
        async () => {
          await topology.master.kill('SIGKILL');
          return topology.master;
        },
        () => topology.describe(),
      );
      assert.equal(
        await topology.currentMasterPort(),
        topology.replica.port,
        'the replica is the master now',
      );
    } finally {
      await topology.close();
    }
  });

  it('Cluster: a master fails, its replica takes its slots, zero sessions lost', async () => {
    const topology = await startCluster({ nodeTimeoutMs: 1000 });
    try {
      await runFailover(
        'Cluster',
        () => ({ topology: { kind: 'cluster', nodes: topology.endpoints }, durableReplicas: 1 }),
        async () => {
          const masters = await topology.masterPorts();
          const victim = topology.nodes.find((n) => n.port === masters[0]) as RedisProcess;
          await victim.kill('SIGKILL');
          return victim;
        },
        async () =>
          `masters now: ${(await topology.masterPorts().catch((err: unknown) => [String(err)])).join(' ')}`,
      );
    } finally {
      await topology.close();
    }
  });
});
