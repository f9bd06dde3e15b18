/**
 * The public API of the fapi-bff package (package.json "exports"). Importing it has no side effects:
 * nothing listens, reads the environment or connects until a function is called.
 */
export { fapiBff, type FapiBffOptions } from './server/plugin.js';
export { buildApp, createServices, type BuildAppOptions, type CreateServicesOptions } from './server/app.js';
export type { BffServices } from './server/services.js';
export { loadConfig } from './config/load.js';
export type {
  BffConfig,
  FapiAlg,
  JarmMode,
  Profile,
  RouteConfig,
  SigningKey,
  TlsConfig,
  TokenAuthMethod,
  TokenPolicy,
} from './config/types.js';
export { IdpClient } from './oauth/idp-client.js';
export { Metrics } from './observability/metrics.js';
export { MemoryStore } from './store/memory-store.js';
export { createRedisStore } from './store/redis-store.js';
export type { KeyValueStore } from './store/store.js';
export { BffError, ConfigError, ERROR_CODES, type ErrorCode, isBffError } from './errors.js';
