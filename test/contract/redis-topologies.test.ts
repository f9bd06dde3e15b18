/**
 * The store contract, unchanged, against real Redis topologies started by this file: a standalone
 * server, Sentinel (master, replica, three sentinels), Cluster (three masters, three replicas) and
 * a TLS-only server that requires client certificates. Plus what only a topology can show: keys
 * of one session spread over cluster nodes, a client without a certificate is refused, and the
 * store follows the topology's own master.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isBffError } from '../../src/errors.js';
import { createRedisStore, RedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import {
  type ClusterTopology,
  haveRedisSentinel,
  haveRedisServer,
  type SentinelTopology,
  type Standalone,
  startCluster,
  startSentinel,
  startStandalone,
  startTlsRedis,
  type TlsRedis,
  withAdmin,
} from '../helpers/redis-servers.js';
import { storeContract } from './store.contract.js';

const skip = haveRedisServer && haveRedisSentinel ? false : 'redis-server / redis-sentinel not on PATH';

let standalone: Standalone | undefined;
let sentinel: SentinelTopology | undefined;
let cluster: ClusterTopology | undefined;
let tls: TlsRedis | undefined;
let pki: TestPki | undefined;

before(async () => {
  if (skip) return;
  pki = await makePki({ serverHosts: ['127.0.0.1', 'localhost'] });
  [standalone, sentinel, cluster, tls] = await Promise.all([
    startStandalone(),
    startSentinel(),
    startCluster(),
    startTlsRedis(pki),
  ]);
});

after(async () => {
  await Promise.all([standalone?.close(), sentinel?.close(), cluster?.close(), tls?.close()]);
  pki?.cleanup();
});

const prefix = () => `contract:${randomBytes(4).toString('hex')}:`;

function tlsClient(): RedisStoreOptions['tls'] {
  const p = pki as TestPki;
  return { ca: p.caCert, cert: p.clientCert, key: p.clientKey, servername: 'localhost' };
}

async function contractStore(options: () => RedisStoreOptions) {
  const store = await createRedisStore({ keyPrefix: prefix(), ...options() });
  assert.ok(await store.ping().then(() => true), 'store answers');
  return { store, cleanup: () => store.close() };
}

describe('store topologies', { skip }, () => {
  storeContract('Redis standalone (own server)', () =>
    contractStore(() => ({ url: (standalone as Standalone).url })),
  );

  storeContract('Redis Sentinel (1 master, 1 replica, 3 sentinels)', () =>
    contractStore(() => {
      const t = sentinel as SentinelTopology;
      return {
        topology: { kind: 'sentinel', sentinels: t.endpoints, masterName: t.masterName },
        durableReplicas: 1,
      };
    }),
  );

  storeContract('Redis Cluster (3 masters, 3 replicas)', () =>
    contractStore(() => ({
      topology: { kind: 'cluster', nodes: (cluster as ClusterTopology).endpoints },
      durableReplicas: 1,
    })),
  );

  storeContract('Redis over TLS with a client certificate', () =>
    contractStore(() => ({ url: (tls as TlsRedis).url, tls: tlsClient() })),
  );

  describe('what only a topology shows', () => {
    it('Cluster: the keys of one session land on different masters and every operation still works', async () => {
      const store = await createRedisStore({
        keyPrefix: prefix(),
        topology: { kind: 'cluster', nodes: (cluster as ClusterTopology).endpoints },
      });
      try {
        // A session, its sid and sub indexes, a lock and a replay entry: single-key commands only.
        const keys = Array.from({ length: 24 }, (_, i) => `spread:${i}`);
        for (const k of keys) await store.set(k, k, 60_000);
        const owners = new Set<number>();
        const masters = await (cluster as ClusterTopology).masterPorts();
        for (const port of masters) {
          const held = await withAdmin(port, (r) => r.dbsize());
          if (held > 0) owners.add(port);
        }
        assert.ok(owners.size >= 2, `keys spread over ${owners.size} masters`);
        for (const k of keys) assert.equal(await store.get(k), k);
        await store.addToIndex('sid:x', 'spread:0', 60_000);
        await store.addToIndex('sub:x', 'spread:1', 60_000);
        assert.deepEqual(await store.indexMembers('sid:x'), ['spread:0']);
        assert.equal(await store.setIfAbsent('lock:x', '1', 60_000), true);
        assert.equal(await store.setIfAbsent('lock:x', '1', 60_000), false);
        assert.equal(await store.compareAndSet('spread:2', 'spread:2', 'next', 60_000), true);
        assert.equal(await store.take('spread:2'), 'next');
      } finally {
        await store.close();
      }
    });

    it('Sentinel and Cluster: a durable write is acknowledged by a replica (WAIT 1)', async () => {
      for (const topology of [
        {
          kind: 'sentinel' as const,
          sentinels: (sentinel as SentinelTopology).endpoints,
          masterName: (sentinel as SentinelTopology).masterName,
        },
        { kind: 'cluster' as const, nodes: (cluster as ClusterTopology).endpoints },
      ]) {
        const store = await createRedisStore({
          keyPrefix: prefix(),
          topology,
          durableReplicas: 1,
          durableTimeoutMs: 2000,
        });
        try {
          await store.setDurable('durable', 'v', 60_000);
          assert.equal(await store.compareAndSetDurable('durable', 'v', 'w', 60_000), true);
          assert.equal(await store.compareAndSetDurable('durable', 'v', 'x', 60_000), false);
          assert.equal(await store.get('durable'), 'w');
          assert.equal(store.durableShortfalls, 0, `${topology.kind}: every durable write was acknowledged`);
        } finally {
          await store.close();
        }
      }
    });

    it('TLS: a client without a certificate, or with the wrong CA, never becomes ready', async () => {
      const p = pki as TestPki;
      for (const [label, options] of [
        ['no client certificate', { ca: p.caCert, servername: 'localhost' }],
        ['unknown CA', { cert: p.clientCert, key: p.clientKey, servername: 'localhost' }],
        [
          'wrong server name',
          { ca: p.caCert, cert: p.clientCert, key: p.clientKey, servername: 'redis.example' },
        ],
      ] as const) {
        const store = new RedisStore({
          url: (tls as TlsRedis).url,
          tls: options,
          connectTimeoutMs: 500,
          keyPrefix: prefix(),
        });
        try {
          assert.equal(await store.connect(), false, `${label}: not ready`);
          await assert.rejects(
            store.ping(),
            (err) => isBffError(err) && err.code === 'BFF_STORE_UNAVAILABLE',
            label,
          );
        } finally {
          await store.close();
        }
      }
    });

    it('the change feed becomes live on every topology and announces a change to its own instance', async () => {
      const topologies: RedisStoreOptions[] = [
        { url: (standalone as Standalone).url },
        {
          topology: {
            kind: 'sentinel',
            sentinels: (sentinel as SentinelTopology).endpoints,
            masterName: (sentinel as SentinelTopology).masterName,
          },
        },
        { topology: { kind: 'cluster', nodes: (cluster as ClusterTopology).endpoints } },
        { url: (tls as TlsRedis).url, tls: tlsClient() },
      ];
      for (const options of topologies) {
        const store = await createRedisStore({ keyPrefix: prefix(), ...options });
        try {
          const deadline = Date.now() + 5000;
          while (!store.changes.live && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          assert.ok(store.changes.live, `${store.topology}: feed live`);
          const seen = new Promise<string>((resolve) => store.changes.onChange(resolve));
          await store.changes.publish('s:abc');
          const key = await Promise.race([
            seen,
            new Promise<string>((r) => setTimeout(() => r('timeout'), 3000)),
          ]);
          assert.equal(key, 's:abc', `${store.topology}: change delivered`);
        } finally {
          await store.close();
        }
      }
    });
  });
});
