import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Redis } from 'ioredis';
import type { BffConfig } from '../config/types.js';
import { endpointsPlugin } from '../endpoints/plugin.js';
import { BffError } from '../errors.js';
import { DpopKeyCache, DpopNonceCache } from '../oauth/dpop.js';
import { checkIdTokenPolicy } from '../oauth/id-token-policy.js';
import { sizeCappedFetch, tlsDispatcher } from '../oauth/http.js';
import type { IdpClient } from '../oauth/idp-client.js';
import { JwksCache } from '../oauth/jwks-cache.js';
import { AuditLog } from '../observability/audit.js';
import { loggerOptions } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { installTraceContext, tracingStarted } from '../observability/otel-sdk.js';
import { tracedStore } from '../observability/traced-store.js';
import { adminPlugin, observabilityPlugin } from '../observability/plugin.js';
import { pingStore } from '../observability/readiness.js';
import { tracedFetch } from '../observability/traced-fetch.js';
import { AccessTokens } from '../proxy/access-token.js';
import { Forwarder } from '../proxy/forward.js';
import { proxyPlugin } from '../proxy/plugin.js';
import { LoginTransactions } from '../session/login-transaction.js';
import { SessionSealer } from '../session/sealing.js';
import { SessionManager } from '../session/session-manager.js';
import type { KeyValueStore } from '../session/store.js';
import { registerAbuseLimits } from './abuse-limits.js';
import { registerAuthHeaders } from './auth-headers.js';
import { renderError } from './error-handler.js';
import { registerRequestContext, requestId } from './request-context.js';
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
  /** The Redis client of the store, for rate-limit counters shared by every instance. */
  readonly redis?: Redis | undefined;
}

/**
 * Build the Fastify app: no env reads, no listen (fastify's build()/listen() split). Everything the
 * handlers use is created here and passed down explicitly.
 */
export async function buildApp(
  options: BuildAppOptions,
): Promise<{ app: FastifyInstance; services: BffServices; admin: FastifyInstance | undefined }> {
  const { config, idp } = options;
  const store = tracingStarted() ? tracedStore(options.store) : options.store;
  const metrics = options.metrics ?? new Metrics();
  await installTraceContext();
  const obs = config.observability;
  const app = Fastify({
    logger: options.logger === undefined ? loggerOptions(config.logLevel) : options.logger,
    // Access logs are a switch (MS_BFF_ACCESS_LOG, registerRequestContext); errors and security
    // decisions are logged where they happen.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // A well-formed incoming X-Request-Id is kept (strict charset: it reaches logs and error pages).
    requestIdHeader: false,
    genReqId: requestId,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 512 },
  });
  const audit = new AuditLog(
    app.log,
    { sub: obs.auditSub, hashKey: config.session.keys[0] as Uint8Array, frontend: 'default' },
    (event) => metrics.audit(event),
  );
  const sealer = new SessionSealer(config.session.keys);
  const clock = options.clock ?? Date.now;
  const dpopKeys = new DpopKeyCache();
  const sessions = new SessionManager(store, sealer, config.session, clock, (expired) => {
    metrics.session('expired');
    audit.emit('session.expired', {
      sessionKey: expired.key,
      sub: expired.data.sub,
      reason: 'absolute_timeout',
    });
  });
  const services: BffServices = {
    config,
    store,
    idp,
    metrics,
    audit,
    sessions,
    transactions: new LoginTransactions(
      store,
      sealer,
      config.session.loginTimeoutSec,
      clock,
      obs.limits.loginTransactionsPerBrowser,
    ),
    tokens: new AccessTokens(
      idp,
      sessions,
      config.session.refreshSkewSec,
      {
        refresh: (outcome, seconds) => metrics.refresh(outcome, seconds),
        session: (event) => metrics.session(event),
        audit: (event, values) => audit.emit(event, values),
      },
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
      fetch: tracedFetch(sizeCappedFetch(undefined, tlsDispatcher(config.tls)), 'idp.jwks'),
      events: metrics.jwks,
      timeoutMs: config.oidc.timeoutMs,
    }),
    dpopKeys,
    dpopNonces: new DpopNonceCache(store),
  };
  metrics.jwksAgeFrom(() => services.jwks.ageSeconds());
  metrics.storeUpFrom(() => pingStore(store));
  metrics.fipsRequiredIs(config.fipsMode);
  if (config.oidc.dpopEnabled) idp.useDpopNonces(services.dpopNonces);
  if (config.jarm.enabled) services.jwks.start();

  registerRequestContext(app, { accessLog: obs.accessLog });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
  });
  registerAuthHeaders(app, {
    hsts: config.profile === 'production' && config.publicUrl.protocol === 'https:',
  });
  app.setErrorHandler((err, request, reply) => renderError(err, request, reply, services));
  app.setNotFoundHandler((request, reply) =>
    renderError(new BffError('BFF_ROUTE_NOT_FOUND'), request, reply, services),
  );
  await registerAbuseLimits(app, obs.limits, { redis: options.redis, parEnabled: config.oidc.parEnabled });

  await app.register(async (scope) => observabilityPlugin(scope, services));
  await app.register(async (scope) => endpointsPlugin(scope, services));
  await app.register(async (scope) => proxyPlugin(scope, services));
  if (options.extraRoutes) await options.extraRoutes(app);

  const admin = obs.admin.port === undefined ? undefined : await buildAdminApp(services);
  app.addHook('onClose', async () => {
    idp.stop();
    services.jwks.stop();
    await services.forwarder.close();
    await admin?.close();
  });
  return { app, services, admin };
}

/** The admin listener's app (MS_BFF_ADMIN_HOST/PORT): /metrics and the detailed readiness report. */
async function buildAdminApp(services: BffServices): Promise<FastifyInstance> {
  const admin = Fastify({ logger: false, return503OnClosing: true });
  admin.setNotFoundHandler((request, reply) =>
    renderError(new BffError('BFF_ROUTE_NOT_FOUND'), request, reply, services),
  );
  await admin.register(async (scope) => adminPlugin(scope, services));
  return admin;
}
