import { availableParallelism } from 'node:os';
import type { RedisConfig, RedisEndpointConfig } from '../types.js';
import type { RuleContext } from './context.js';

/**
 * The session store: none (memory), standalone (REDIS_URL), Sentinel (REDIS_SENTINELS) or Cluster
 * (REDIS_CLUSTER_NODES), exactly one; ACL credentials, TLS material and durability; and the worker
 * count, which needs a shared store (each worker is its own process with its own memory).
 */
export function redisSettings(ctx: RuleContext): { redis: RedisConfig | undefined; workers: number } {
  const v = ctx.values;
  const chosen = (
    [
      ['REDIS_URL', v.REDIS_URL !== undefined],
      ['REDIS_SENTINELS', v.REDIS_SENTINELS.length > 0],
      ['REDIS_CLUSTER_NODES', v.REDIS_CLUSTER_NODES.length > 0],
    ] as const
  ).filter(([, set]) => set);
  if (chosen.length > 1) {
    ctx.problem(chosen[1]?.[0] ?? 'REDIS_URL', `choose one of ${chosen.map(([n]) => n).join(', ')}`);
  }

  const certSet = v.MS_BFF_REDIS_TLS_CERT !== undefined;
  if (certSet !== (v.MS_BFF_REDIS_TLS_KEY !== undefined)) {
    ctx.problem('MS_BFF_REDIS_TLS_CERT', 'MS_BFF_REDIS_TLS_CERT and MS_BFF_REDIS_TLS_KEY go together');
  }
  const tlsMaterial =
    v.MS_BFF_REDIS_TLS_CA !== undefined || certSet || v.MS_BFF_REDIS_TLS_SERVERNAME !== undefined;
  const tls =
    v.MS_BFF_REDIS_TLS || tlsMaterial
      ? {
          ca: v.MS_BFF_REDIS_TLS_CA,
          cert: v.MS_BFF_REDIS_TLS_CERT,
          key: v.MS_BFF_REDIS_TLS_KEY,
          servername: v.MS_BFF_REDIS_TLS_SERVERNAME,
        }
      : undefined;
  if (v.REDIS_URL?.protocol === 'redis:' && tlsMaterial) {
    ctx.problem('REDIS_URL', 'use rediss:// together with MS_BFF_REDIS_TLS_* settings');
  }
  if (v.REDIS_SENTINELS.length > 0 && v.REDIS_SENTINEL_MASTER === undefined) {
    ctx.problem('REDIS_SENTINEL_MASTER', 'is required with REDIS_SENTINELS');
  }
  if (
    (v.REDIS_SENTINELS.length > 0 || v.REDIS_CLUSTER_NODES.length > 0) &&
    ctx.production &&
    tls === undefined
  ) {
    ctx.warn('Redis Sentinel/Cluster without TLS (MS_BFF_REDIS_TLS); use TLS outside a trusted network');
  }

  const sentinels = endpoints(ctx, 'REDIS_SENTINELS', v.REDIS_SENTINELS);
  const nodes = endpoints(ctx, 'REDIS_CLUSTER_NODES', v.REDIS_CLUSTER_NODES);
  const replicated = sentinels.length > 0 || nodes.length > 0;
  const common = {
    username: v.REDIS_USERNAME,
    password: v.REDIS_PASSWORD,
    tls,
    keyPrefix: v.MS_BFF_REDIS_KEY_PREFIX,
    durableReplicas: v.MS_BFF_REDIS_DURABLE_REPLICAS ?? (replicated ? 1 : 0),
  };
  let redis: RedisConfig | undefined;
  if (v.REDIS_URL !== undefined) {
    redis = { ...common, topology: { kind: 'standalone', url: v.REDIS_URL.href } };
  } else if (sentinels.length > 0) {
    redis = {
      ...common,
      topology: {
        kind: 'sentinel',
        sentinels,
        masterName: v.REDIS_SENTINEL_MASTER ?? '',
        sentinelUsername: v.REDIS_SENTINEL_USERNAME,
        sentinelPassword: v.REDIS_SENTINEL_PASSWORD,
      },
    };
  } else if (nodes.length > 0) {
    redis = { ...common, topology: { kind: 'cluster', nodes } };
  }

  const workers = v.MS_BFF_WORKERS === 'auto' ? availableParallelism() : Number(v.MS_BFF_WORKERS);
  if (v.MS_BFF_WORKERS !== '1' && redis === undefined) {
    ctx.problem(
      'MS_BFF_WORKERS',
      'needs a Redis store: with the memory store each worker would hold its own sessions, login transactions and replay caches',
    );
  }
  return { redis, workers };
}

function endpoints(ctx: RuleContext, variable: string, items: readonly string[]): RedisEndpointConfig[] {
  const out: RedisEndpointConfig[] = [];
  for (const item of items) {
    // host:port, with IPv6 literals in brackets ([::1]:26379).
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(item);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      ctx.problem(variable, `"${item}" is not host:port`);
      continue;
    }
    out.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port });
  }
  return out;
}
