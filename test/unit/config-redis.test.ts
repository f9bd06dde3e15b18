/** Store topology, Redis TLS and worker settings: parsed once, every problem reported together. */
import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { configProblems, minimalEnv } from '../helpers/bff-harness.js';
import { makePki } from '../helpers/pki.js';

const baseEnv = () => minimalEnv({ MS_BFF_PROFILE: 'production' });

describe('configuration: Redis topologies and workers', () => {
  it('Sentinel: addresses, master name, sentinel and data-node credentials (the password from a file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-redis-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    const config = await loadConfig({
      ...(await baseEnv()),
      REDIS_SENTINELS: 'sentinel-a:26379, [::1]:26380',
      REDIS_SENTINEL_MASTER: 'bff',
      REDIS_SENTINEL_USERNAME: 'watcher',
      REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
      REDIS_USERNAME: 'bff-app',
      REDIS_PASSWORD_FILE: join(dir, 'pw'),
      MS_BFF_REDIS_TLS: 'true',
      MS_BFF_WORKERS: '3',
    });
    assert.deepEqual(config.redis?.topology, {
      kind: 'sentinel',
      sentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      masterName: 'bff',
      sentinelUsername: 'watcher',
      sentinelPassword: 'sentinel-pw',
    });
    assert.equal(config.redis?.username, 'bff-app');
    assert.equal(config.redis?.password, 's3cret');
    assert.equal(config.redis?.durableReplicas, 1, 'replicated topologies wait for one replica by default');
    assert.ok(config.redis?.tls);
    assert.equal(config.workers, 3);
  });

  it('Cluster with TLS material: CA, client certificate and key, server name', async () => {
    const pki = await makePki();
    try {
      const config = await loadConfig({
        ...(await baseEnv()),
        REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2:6379',
        MS_BFF_REDIS_TLS_CA: pki.caCert,
        MS_BFF_REDIS_TLS_CERT: pki.clientCert,
        MS_BFF_REDIS_TLS_KEY: pki.clientKey,
        MS_BFF_REDIS_TLS_SERVERNAME: 'redis.internal',
        MS_BFF_REDIS_DURABLE_REPLICAS: '0',
        MS_BFF_WORKERS: 'auto',
      });
      assert.equal(config.redis?.topology.kind, 'cluster');
      assert.equal(config.redis?.tls?.servername, 'redis.internal');
      assert.equal(config.redis?.tls?.ca?.trim(), pki.caCert.trim());
      assert.equal(config.redis?.durableReplicas, 0);
      assert.ok(config.workers >= 1);
    } finally {
      pki.cleanup();
    }
  });

  it('REDIS_URL stays the standalone form, with no replica wait by default', async () => {
    const config = await loadConfig({ ...(await baseEnv()), REDIS_URL: 'rediss://redis.example:6380/2' });
    assert.deepEqual(config.redis?.topology, { kind: 'standalone', url: 'rediss://redis.example:6380/2' });
    assert.equal(config.redis?.durableReplicas, 0);
    assert.equal(config.workers, 1);
  });

  it('reports every topology problem at once', async () => {
    const problems = await configProblems({
      ...(await baseEnv()),
      REDIS_URL: 'redis://redis.example:6379',
      REDIS_CLUSTER_NODES: 'a:1,not-an-endpoint',
      REDIS_SENTINELS: 'b:26379',
      MS_BFF_REDIS_TLS_CERT: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
      MS_BFF_WORKERS: 'many',
    });
    assert.match(
      problems.get('REDIS_SENTINELS') ?? '',
      /choose one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/,
    );
    assert.match(problems.get('REDIS_CLUSTER_NODES') ?? '', /"not-an-endpoint" is not host:port/);
    assert.match(problems.get('REDIS_SENTINEL_MASTER') ?? '', /required with REDIS_SENTINELS/);
    assert.match(problems.get('MS_BFF_REDIS_TLS_CERT') ?? '', /go together/);
    assert.match(problems.get('REDIS_URL') ?? '', /rediss:\/\//);
    assert.match(problems.get('MS_BFF_WORKERS') ?? '', /auto/);
  });

  it('refuses more than one worker with the memory store', async () => {
    const problems = await configProblems({ ...(await baseEnv()), MS_BFF_WORKERS: '2' });
    assert.match(problems.get('MS_BFF_WORKERS') ?? '', /needs a Redis store/);
  });

  it('EdDSA DPoP session keys: accepted, but refused in FIPS mode', async () => {
    const config = await loadConfig({
      ...(await baseEnv()),
      MS_BFF_DPOP_ENABLED: 'true',
      MS_BFF_DPOP_ALG: 'EdDSA',
    });
    assert.equal(config.oidc.dpopAlg, 'EdDSA');
    const problems = await configProblems({
      ...(await baseEnv()),
      MS_BFF_DPOP_ENABLED: 'true',
      MS_BFF_DPOP_ALG: 'EdDSA',
      FIPS_MODE: 'true',
    });
    assert.match(problems.get('MS_BFF_DPOP_ALG') ?? '', /EdDSA is not FIPS-approved/);
  });
});
