import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { BffConfig } from '../config/types.js';
import { endpointsPlugin } from '../endpoints/plugin.js';
import { BffError } from '../errors.js';
import { DpopKeyCache, DpopNonceCache } from '../oauth/dpop.js';
import { checkIdTokenPolicy } from '../oauth/id-token-policy.js';
import { sizeCappedFetch, tlsDispatcher } from '../oauth/http.js';
import type { IdpClient } from '../oauth/idp-client.js';
import { JwksCache } from '../oauth/jwks-cache.js';
import { loggerOptions } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { observabilityPlugin } from '../observability/plugin.js';
import { AccessTokens } from '../proxy/access-token.js';
import { Forwarder } from '../proxy/forward.js';
import { proxyPlugin } from '../proxy/plugin.js';
import { LoginTransactions } from '../session/login-transaction.js';
import { SessionSealer } from '../session/sealing.js';
import { SessionManager } from '../session/session-manager.js';
import type { KeyValueStore } from '../session/store.js';
import { renderError } from './error-handler.js';
import type { BffServices } from './services.js';

export interface BuildAppOptions {
  readonly config: BffConfig;
  readonly store: KeyValueStore;
  readonly idp: IdpClient;
  readonly metrics?: Metrics;
  /** false silences logs (tests); default: pino with redaction at config.logLevel. */
  readonly logger?: boolean | object;
  /** Extra routes registered on the root instance (the development SPA). */
  readonly extraRoutes?: (app: FastifyInstance) => void | Promise<void>;
  /** Wall clock for sessions and login transactions; tests move time with it. */
  readonly clock?: () => number;
}

/**
 * Build the Fastify app: no env reads, no listen (fastify's build()/listen() split). Everything the
 * handlers use is created here and passed down explicitly.
 */
export async function buildApp(
  options: BuildAppOptions,
): Promise<{ app: FastifyInstance; services: BffServices }> {
  const { config, store, idp } = options;
  const metrics = options.metrics ?? new Metrics();
  const sealer = new SessionSealer(config.session.keys);
  const clock = options.clock ?? Date.now;
  const dpopKeys = new DpopKeyCache();
  const sessions = new SessionManager(store, sealer, config.session, clock);
  const services: BffServices = {
    config,
    store,
    idp,
    metrics,
    sessions,
    transactions: new LoginTransactions(store, sealer, config.session.loginTimeoutSec, clock),
    tokens: new AccessTokens(
      idp,
      sessions,
      config.session.refreshSkewSec,
      metrics,
      dpopKeys,
      store,
      2 * config.oidc.timeoutMs + 5_000,
      clock,
      (idToken) =>
        checkIdTokenPolicy(idToken, services.jwks, {
          issuer: idp.metadata.issuer,
          clientId: config.oidc.clientId,
          alg: config.oidc.idTokenAlg,
        }),
    ),
    forwarder: new Forwarder(config.tls),
    clock,
    jwks: new JwksCache({
      jwksUri: String(idp.metadata.jwks_uri),
      fetch: sizeCappedFetch(undefined, tlsDispatcher(config.tls)),
      events: metrics.jwks,
      timeoutMs: config.oidc.timeoutMs,
    }),
    dpopKeys,
    dpopNonces: new DpopNonceCache(store),
  };
  metrics.jwksAgeFrom(() => services.jwks.ageSeconds());
  if (config.oidc.dpopEnabled) idp.useDpopNonces(services.dpopNonces);
  if (config.jarm.enabled) services.jwks.start();

  const app = Fastify({
    logger: options.logger === undefined ? loggerOptions(config.logLevel) : options.logger,
    // Per-request access logs cost the hot path; errors and security decisions are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    // Never trust a client-supplied request id: it ends up in logs and error pages.
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 512 },
    // request.ip (and so X-Forwarded-For to upstreams, and per-client limits) believes
    // X-Forwarded-For only from these peers; from anyone else it is the socket's address.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
  });

  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
  });
  app.setErrorHandler((err, request, reply) => renderError(err, request, reply, metrics));
  app.setNotFoundHandler((request, reply) =>
    renderError(new BffError('BFF_ROUTE_NOT_FOUND'), request, reply, metrics),
  );

  await app.register(async (scope) => observabilityPlugin(scope, services));
  await app.register(async (scope) => endpointsPlugin(scope, services));
  await app.register(async (scope) => proxyPlugin(scope, services));
  if (options.extraRoutes) await options.extraRoutes(app);

  app.addHook('onClose', async () => {
    idp.stop();
    services.jwks.stop();
    await services.forwarder.close();
  });
  return { app, services };
}
