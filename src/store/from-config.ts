import type { BffConfig } from '../config/types.js';
import { MemoryStore } from './memory-store.js';
import { createRedisStore, type RedisStoreLogger, type RedisStoreOptions } from './redis-store.js';
import type { KeyValueStore } from './store.js';

/** The store the configuration asks for: Redis in any topology, or the in-memory store. */
export async function storeFromConfig(config: BffConfig, logger: RedisStoreLogger): Promise<KeyValueStore> {
  const redis = config.redis;
  if (redis === undefined) return new MemoryStore({ maxEntries: config.session.memoryMaxSessions });
  const topology: NonNullable<RedisStoreOptions['topology']> =
    redis.topology.kind === 'standalone'
      ? { kind: 'standalone', url: redis.topology.url }
      : redis.topology.kind === 'sentinel'
        ? {
            kind: 'sentinel',
            sentinels: redis.topology.sentinels.map((e) => ({ ...e })),
            masterName: redis.topology.masterName,
            sentinelUsername: redis.topology.sentinelUsername,
            sentinelPassword: redis.topology.sentinelPassword,
          }
        : { kind: 'cluster', nodes: redis.topology.nodes.map((e) => ({ ...e })) };
  return createRedisStore({
    topology,
    username: redis.username,
    password: redis.password,
    tls: redis.tls ? { ...redis.tls } : undefined,
    keyPrefix: redis.keyPrefix,
    durableReplicas: redis.durableReplicas,
    logger,
  });
}
