/**
 * Frontend selection (CONTRACT "Frontends": Host without port, then pathPrefix), the store
 * namespace that partitions sessions, and what a reload may not change.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { BffConfig, FrontendConfig } from '../../src/config/types.js';
import {
  FrontendRegistry,
  type FrontendRuntime,
  hostName,
  needsFrontend,
  restartOnlyChanges,
} from '../../src/server/frontends.js';
import type { BffServices } from '../../src/server/services.js';
import { MemoryStore, memoryPartitionOf } from '../../src/store/memory-store.js';
import { namespacedStore } from '../../src/store/namespaced.js';

function runtime(name: string, host: string | undefined, pathPrefix: string): FrontendRuntime {
  const frontend = { name, host, pathPrefix, storeNamespace: `f:${name}:`, config: {} as BffConfig };
  return {
    name,
    frontend: frontend as FrontendConfig,
    services: {} as BffServices,
    basePath: pathPrefix === '/' ? '' : pathPrefix.slice(0, -1),
    fingerprint: name,
  };
}

describe('frontend registry', () => {
  const registry = new FrontendRegistry([
    runtime('any', undefined, '/'),
    runtime('bank', 'bank.example.com', '/'),
    runtime('bank-admin', 'bank.example.com', '/admin/'),
    runtime('tools', undefined, '/tools/'),
  ]);
  const pick = (host: string | undefined, url: string) => {
    const selected = registry.select(host, url);
    return selected && [selected.runtime.name, selected.url];
  };

  it('selects by Host without port, then the longest pathPrefix, and strips the prefix', () => {
    assert.deepEqual(pick('bank.example.com', '/auth/login'), ['bank', '/auth/login']);
    assert.deepEqual(pick('BANK.example.com:8443', '/api/x?y=1'), ['bank', '/api/x?y=1']);
    assert.deepEqual(pick('bank.example.com', '/admin/auth/callback?code=1'), [
      'bank-admin',
      '/auth/callback?code=1',
    ]);
    assert.deepEqual(pick('bank.example.com', '/administrator/auth/login'), [
      'bank',
      '/administrator/auth/login',
    ]);
    assert.deepEqual(pick('other.example.com', '/api/x'), ['any', '/api/x']);
    assert.deepEqual(pick('other.example.com', '/tools/api/x'), ['tools', '/api/x']);
    // A host frontend wins over a host-less one with a longer prefix.
    assert.deepEqual(pick('bank.example.com', '/tools/api/x'), ['bank', '/tools/api/x']);
    assert.deepEqual(pick(undefined, '/auth/login'), ['any', '/auth/login']);
  });

  it('selects nothing when no frontend serves the host and path', () => {
    const only = new FrontendRegistry([runtime('bank', 'bank.example.com', '/bank/')]);
    assert.equal(only.select('other.example.com', '/bank/auth/login'), undefined);
    assert.equal(only.select('bank.example.com', '/auth/login'), undefined);
    assert.ok(needsFrontend('/auth/login') && needsFrontend('/api/x/y') && needsFrontend('/api'));
    assert.ok(!needsFrontend('/healthz') && !needsFrontend('/apix') && !needsFrontend('/metrics'));
  });

  it('reads the Host header name (IPv6 literals keep their brackets)', () => {
    assert.equal(hostName('Example.COM:80'), 'example.com');
    assert.equal(hostName('[::1]:8080'), '[::1]');
    assert.equal(hostName(undefined), undefined);
  });

  it('swaps the whole set at once', () => {
    const r = new FrontendRegistry([runtime('a', undefined, '/')]);
    r.replace([runtime('b', undefined, '/')]);
    assert.equal(r.select('x', '/auth/login')?.runtime.name, 'b');
    assert.throws(() => r.replace([]));
  });
});

describe('store namespace per frontend', () => {
  it('keeps keys and indexes of one frontend invisible to another and to the bare store', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const a = namespacedStore(store, 'f:a:');
    const b = namespacedStore(store, 'f:b:');
    await a.set('s:1', 'session of a', 60_000);
    await a.addToIndex('sid:x', 's:1', 60_000);
    assert.equal(await a.get('s:1'), 'session of a');
    assert.equal(await b.get('s:1'), undefined);
    assert.equal(await store.get('s:1'), undefined);
    assert.deepEqual(await a.indexMembers('sid:x'), ['s:1']);
    assert.deepEqual(await b.indexMembers('sid:x'), []);
    assert.equal(await b.take('s:1'), undefined);
    assert.equal(await a.take('s:1'), 'session of a');
    assert.equal(namespacedStore(store, ''), store, 'the environment-only frontend keeps its keys');
    // The memory store's bounds still see the owner's prefix behind the namespace.
    assert.equal(memoryPartitionOf('f:a:t:abc'), 'transactions');
    assert.equal(memoryPartitionOf('f:a:bcl:abc'), 'replay');
    assert.equal(memoryPartitionOf('f:a:s:abc'), 'sessions');
    await store.close();
  });
});

describe('reload limits', () => {
  const base = {
    oidc: { issuer: new URL('https://idp.example.com') },
    host: '0.0.0.0',
    port: 8080,
    redisUrl: undefined,
    redisKeyPrefix: 'bff:',
    redis: undefined,
    workers: 1,
    fipsMode: false,
    profile: 'production',
    trustedProxies: [],
    observability: { admin: { host: '127.0.0.1', port: undefined } },
    session: { keys: [new Uint8Array(32)] },
  } as unknown as BffConfig;

  it('names each setting that needs a restart', () => {
    assert.deepEqual(restartOnlyChanges(base, base), []);
    const changed = {
      ...base,
      oidc: { issuer: new URL('https://other.example.com') },
      port: 9090,
      redisKeyPrefix: 'x:',
    } as unknown as BffConfig;
    assert.deepEqual(restartOnlyChanges(base, changed), ['OIDC_ISSUER', 'HOST/PORT', 'store (REDIS_*)']);
    const limits = {
      ...base,
      observability: { admin: { host: '127.0.0.1', port: undefined }, limits: { loginPerMinute: 5 } },
    } as unknown as BffConfig;
    assert.match(restartOnlyChanges(base, limits).join(), /abuse limits/);
  });
});
