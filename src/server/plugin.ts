import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { loadConfig } from '../config/load.js';
import type { BffConfig } from '../config/types.js';
import { IdpClient } from '../oauth/idp-client.js';
import { Metrics } from '../observability/metrics.js';
import { storeFromConfig } from '../store/from-config.js';
import type { KeyValueStore } from '../store/store.js';
import { createServices, stopServices } from './app.js';
import { registerBff } from './routes.js';
import { sharedCountersOf } from './abuse-limits.js';

/** Options of the fapiBff plugin; Fastify's own `prefix` option places every route under a path. */
export interface FapiBffOptions {
  /** A configuration from loadConfig. Default: loadConfig(env). */
  readonly config?: BffConfig;
  /** The environment to load the configuration from when `config` is absent. Default: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * The session store. Default: Redis at the configuration's REDIS_URL, else memory; a store created
   * here is closed with the Fastify instance, one passed in is the caller's to close.
   */
  readonly store?: KeyValueStore;
  /** The metrics registry. Default: a new one (its /metrics route is registered under the prefix). */
  readonly metrics?: Metrics;
  /** Wall clock for sessions and login transactions. Default: Date.now. */
  readonly clock?: () => number;
}

/**
 * The BFF inside an existing Fastify 5 application: `app.register(fapiBff, { prefix: '/bff' })` serves
 * `/bff/auth/**`, `/bff/api/**` and the rest. Encapsulated (fastify-plugin with `encapsulate: true`):
 * its error handler, content-type parser and hooks stay inside, the host keeps its own 404 handling.
 * The redirect URI becomes `<MS_BFF_PUBLIC_URL><prefix>/auth/callback`; register that at the IdP.
 * Discovery runs during registration, so `await app.ready()` fails when the IdP is unusable.
 */
const plugin: FastifyPluginAsync<FapiBffOptions> = async (scope: FastifyInstance, options) => {
  const loaded = options.config ?? (await loadConfig({ ...(options.env ?? process.env) }));
  const config = underPrefix(loaded, scope.prefix);
  const metrics = options.metrics ?? new Metrics();
  const store = options.store ?? (await storeFromConfig(config, scope.log));
  const idp = await IdpClient.create(config, metrics, scope.log);
  idp.startBackgroundRefresh();
  const services = createServices({
    config,
    store,
    idp,
    metrics,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  await registerBff(scope, services, { notFound: false, redis: sharedCountersOf(store) });
  scope.addHook('onClose', async () => {
    await stopServices(services);
    if (!options.store) await store.close();
  });
};

/** The redirect URI follows the prefix: the IdP sends the browser back to the plugin's callback. */
function underPrefix(config: BffConfig, prefix: string): BffConfig {
  if (!prefix) return config;
  return Object.freeze({ ...config, redirectUri: new URL(`${prefix}/auth/callback`, config.publicUrl).href });
}

export const fapiBff = fp(plugin, { name: 'fapi-bff', fastify: '5.x', encapsulate: true });
