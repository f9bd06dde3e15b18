import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Cluster, Redis } from 'ioredis';
import type { ObservabilityConfig } from '../config/types.js';
import { BffError } from '../errors.js';
import { RedisStore } from '../store/redis-store.js';
import type { KeyValueStore } from '../store/store.js';

export type LimitName = 'login' | 'callback' | 'backchannel' | 'par_budget' | 'login_transactions';

const WINDOW_MS = 60_000;

/**
 * Where the counters live when every instance must share them: the Redis store's own connection,
 * with the counters under the store's key prefix (deployments sharing one Redis keep theirs apart).
 */
export interface SharedCounters {
  readonly client: Redis | Cluster;
  readonly keyPrefix: string;
}

/** The Redis store's counters, or undefined for a store kept in this process (memory). */
export function sharedCountersOf(store: KeyValueStore): SharedCounters | undefined {
  return store instanceof RedisStore ? store : undefined;
}

/**
 * Rate limits on the unauthenticated /auth endpoints (@fastify/rate-limit), per client address
 * (`request.ip`: the socket address, or X-Forwarded-For from trusted proxies only) and one global
 * PAR budget, in Redis when the store is Redis so every instance shares the counters. Without a
 * limit a single client makes the BFF send one PAR request and store one login transaction per
 * request (RFC 9126 §7.3 asks the AS side to rate-limit; the client side must not be the amplifier).
 * Answers 429 problem+json with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3), counted by the error
 * handler in bff_rate_limited_total{limit}.
 *
 * Must be registered before the routes it limits (it adds their onRequest hooks in onRoute).
 */
export async function registerAbuseLimits(
  app: FastifyInstance,
  limits: ObservabilityConfig['limits'],
  options: { prefix: string; redis: SharedCounters | undefined; parEnabled: boolean },
): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    // A store outage must not turn into refused logins here: the store-backed steps after it fail cleanly.
    skipOnError: true,
    ...(options.redis
      ? { redis: options.redis.client, nameSpace: `${options.redis.keyPrefix}rate-limit:` }
      : {}),
  });
  const make = (name: LimitName, max: number, key: (r: FastifyRequest) => string) => {
    if (max <= 0) return undefined;
    const check = app.createRateLimit({ max, timeWindow: WINDOW_MS, keyGenerator: key });
    const hook: onRequestAsyncHookHandler = async (request, reply) => {
      const result = await check(request);
      if (result.isAllowed || !result.isExceeded) return;
      const retryAfter = String(Math.max(1, result.ttlInSeconds));
      reply.header('retry-after', retryAfter);
      throw new BffError('BFF_RATE_LIMITED', {
        reason: name,
        detail: `too many requests; retry after ${retryAfter} s`,
        headers: { 'retry-after': retryAfter },
      });
    };
    return hook;
  };
  const client = (name: string) => (r: FastifyRequest) => `${name}:${normalizeIP(r.ip, 64)}`;
  const perRoute = new Map<string, onRequestAsyncHookHandler[]>();
  const add = (url: string, ...hooks: (onRequestAsyncHookHandler | undefined)[]) =>
    perRoute.set(
      url,
      hooks.filter((h): h is onRequestAsyncHookHandler => h !== undefined),
    );
  const p = options.prefix;
  add(
    `${p}/auth/login`,
    make('login', limits.loginPerMinute, client('login')),
    // After the per-client limit: a client already refused does not spend the shared budget.
    options.parEnabled ? make('par_budget', limits.parBudgetPerMinute, () => 'par-budget') : undefined,
  );
  add(`${p}/auth/callback`, make('callback', limits.callbackPerMinute, client('callback')));
  add(
    `${p}/auth/backchannel-logout`,
    make('backchannel', limits.backchannelPerMinute, client('backchannel')),
  );

  app.addHook('onRoute', (route) => {
    const hooks = perRoute.get(route.url ?? '');
    if (!hooks || hooks.length === 0) return;
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [...existing, ...hooks] as typeof route.onRequest;
  });
}
