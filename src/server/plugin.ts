import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { frontendNamed } from '../config/frontends.js';
import { loadConfig } from '../config/load.js';
import type { BffConfig, FrontendConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { IdpClient } from '../oauth/idp-client.js';
import { Metrics } from '../observability/metrics.js';
import { storeFromConfig } from '../store/from-config.js';
import { namespacedStore } from '../store/namespaced.js';
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
  /**
   * With several frontends in the MS_BFF_CONFIG file: the one this registration serves (its client,
   * cookie, routes and flags; its sessions in its own store namespace). The plugin cannot route by
   * Host the way `fapi-bff start` does (that happens before the host application's router), so it
   * serves one frontend per registration: register it once per frontend, each under its prefix.
   * Required then; the only frontend otherwise.
   */
  readonly frontend?: string;
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
  const frontend = oneFrontend(loaded, options.frontend);
  const config = underPrefix(loaded.frontends.length === 1 ? loaded : frontend.config, scope.prefix);
  const metrics = options.metrics ?? new Metrics();
  const own = options.store ?? (await storeFromConfig(config, scope.log));
  // The same store namespace as `fapi-bff start` gives the frontend ('' for the environment alone).
  const store = namespacedStore(own, frontend.storeNamespace);
  const idp = await IdpClient.create(config, metrics, scope.log);
  idp.startBackgroundRefresh();
  const services = createServices({
    config,
    store,
    idp,
    metrics,
    frontend: frontend.name,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  await registerBff(scope, services, { notFound: false, redis: sharedCountersOf(store) });
  scope.addHook('onClose', async () => {
    await stopServices(services);
    if (!options.store) await own.close();
  });
};

/** The frontend a registration serves: the named one, or the only one; several and no name: refused. */
function oneFrontend(config: BffConfig, name: string | undefined): FrontendConfig {
  const found = frontendNamed(config, name);
  if (!('problem' in found)) return found;
  throw new ConfigError([
    {
      variable: 'fapiBff option frontend',
      message: `fapiBff serves one frontend per registration; ${found.problem} (${found.names}): register it once per frontend with { frontend: NAME }, or run fapi-bff start to route them by Host and pathPrefix`,
    },
  ]);
}

/** The redirect URI follows the prefix: the IdP sends the browser back to the plugin's callback. */
function underPrefix(config: BffConfig, prefix: string): BffConfig {
  if (!prefix) return config;
  return Object.freeze({ ...config, redirectUri: new URL(`${prefix}/auth/callback`, config.publicUrl).href });
}

export const fapiBff = fp(plugin, { name: 'fapi-bff', fastify: '5.x', encapsulate: true });
