import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { BffConfig } from '../config/types.js';
import { ClientTokens } from '../oauth/client-tokens.js';
import { DpopKey, DpopKeyCache, DpopNonceCache, generateDpopKey } from '../dpop/client.js';
import { collectFipsEvidence, type FipsEvidence } from '../fips/evidence.js';
import { checkIdTokenPolicy } from '../oauth/id-token-policy.js';
import { sizeCappedFetch, tlsDispatcher } from '../oauth/http.js';
import type { IdpClient } from '../oauth/idp-client.js';
import { JwksCache } from '../oauth/jwks-cache.js';
import { BffError } from '../errors.js';
import { AuditLog, type AuditSink } from '../observability/audit.js';
import { loggerOptions } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { installTraceContext, tracingStarted } from '../observability/otel-sdk.js';
import { tracedFetch } from '../observability/traced-fetch.js';
import { AccessTokens } from '../proxy/access-token.js';
import { Forwarder } from '../proxy/forward.js';
import { LoginTransactions } from '../session/login-transaction.js';
import { SessionSealer } from '../session/sealing.js';
import { SessionManager } from '../session/session-manager.js';
import type { KeyValueStore } from '../store/store.js';
import { tracedStore } from '../store/traced.js';
import { renderError } from './error-handler.js';
import { sharedCountersOf, type SharedCounters } from './abuse-limits.js';
import { adminPlugin } from './health.js';
import { pingStore } from './readiness.js';
import { requestId } from './request-context.js';
import { drainConnectionsOnClose } from './lifecycle.js';
import { registerBff } from './routes.js';
import type { BffServices } from './services.js';

export interface CreateServicesOptions {
  readonly config: BffConfig;
  readonly store: KeyValueStore;
  readonly idp: IdpClient;
  readonly metrics?: Metrics;
  /** Wall clock for sessions and login transactions; tests move time with it. */
  readonly clock?: () => number;
  /** Where audit lines go (the app's logger); default: nowhere. */
  readonly auditSink?: AuditSink;
  /** Where rate-limit counters shared by every instance live; default: the store's, when it is Redis. */
  readonly redis?: SharedCounters | undefined;
  /** The evidence main collected at startup; default: collected now (self-test only in FIPS mode). */
  readonly fips?: FipsEvidence;
}

export interface BuildAppOptions extends CreateServicesOptions {
  /** false silences logs (tests); default: pino with redaction at config.logLevel. */
  readonly logger?: boolean | object;
  /** Hooks registered on the root instance before any route (the development host redirect). */
  readonly beforeRoutes?: (app: FastifyInstance) => void | Promise<void>;
  /** Extra routes registered on the root instance (the development SPA). */
  readonly extraRoutes?: (app: FastifyInstance) => void | Promise<void>;
}

/**
 * Build the standalone Fastify app: no env reads, no listen (fastify's build()/listen() split). The
 * routes are the ones the embeddable plugin (fapiBff) registers.
 */
export async function buildApp(
  options: BuildAppOptions,
): Promise<{ app: FastifyInstance; services: BffServices; admin: FastifyInstance | undefined }> {
  await installTraceContext();
  const app = Fastify({
    logger: options.logger === undefined ? loggerOptions(options.config.logLevel) : options.logger,
    // Access logs are a switch (MS_BFF_ACCESS_LOG, request-context.ts); errors and security
    // decisions are logged where they happen.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // A well-formed incoming X-Request-Id is kept (strict charset: it reaches logs and error pages).
    requestIdHeader: false,
    genReqId: requestId,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 512 },
    // request.ip (and so X-Forwarded-For to upstreams, and per-client limits) believes
    // X-Forwarded-For only from these peers; from anyone else it is the socket's address.
    trustProxy: options.config.trustedProxies.length > 0 ? [...options.config.trustedProxies] : false,
  });
  const services = createServices({ ...options, auditSink: options.auditSink ?? app.log });
  drainConnectionsOnClose(app);
  if (options.beforeRoutes) await options.beforeRoutes(app);
  await registerBff(app, services, {
    notFound: true,
    redis: options.redis ?? sharedCountersOf(options.store),
  });
  if (options.extraRoutes) await options.extraRoutes(app);
  const obs = options.config.observability;
  const admin = obs.admin.port === undefined ? undefined : await buildAdminApp(services);
  app.addHook('onClose', async () => {
    await stopServices(services);
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

/**
 * Everything a handler uses, created once and passed down explicitly (no globals). Background work
 * (the JARM JWKS refresh) starts here and ends with stopServices.
 */
export function createServices(options: CreateServicesOptions): BffServices {
  const { config, idp } = options;
  // A span per store operation only when an SDK records them.
  const store = tracingStarted() ? tracedStore(options.store) : options.store;
  const metrics = options.metrics ?? new Metrics();
  const sealer = new SessionSealer(config.session.keys);
  const clock = options.clock ?? Date.now;
  const dpopKeys = new DpopKeyCache();
  const obs = config.observability;
  const audit = new AuditLog(
    options.auditSink ?? { info: () => undefined },
    { sub: obs.auditSub, hashKey: config.session.keys[0] as Uint8Array, frontend: 'default' },
    (event) => metrics.audit(event),
  );
  const sessions = new SessionManager(store, sealer, config.session, clock, (expired) => {
    metrics.session('expired');
    audit.emit('session.expired', {
      sessionKey: expired.key,
      sub: expired.data.sub,
      reason: 'absolute_timeout',
    });
  });
  // With DPoP, the BFF's own tokens are bound to a key of this process, made on first use and never
  // stored: a client token is per process (see ClientTokens), so its key is too.
  let clientKey: Promise<DpopKey> | undefined;
  const clientDpopKey = () =>
    (clientKey ??= generateDpopKey(config.oidc.dpopAlg).then((stored) => DpopKey.import(stored)));
  const services: BffServices = {
    config,
    fips: options.fips ?? collectFipsEvidence(config.fipsMode),
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
        upstreamInvalidToken: (outcome) => metrics.upstreamInvalidToken(outcome),
        revocation: (outcome) => metrics.revocation(outcome),
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
    clientTokens: new ClientTokens(
      async (target) => {
        const key = config.oidc.dpopEnabled ? await clientDpopKey() : undefined;
        const tokens = await idp.clientCredentials(target, key);
        return { ...tokens, dpopKey: key };
      },
      metrics,
      config.session.refreshSkewSec,
      clock,
    ),
    forwarder: new Forwarder(config.tls),
    clock,
    jwks: new JwksCache({
      jwksUri: String(idp.metadata.jwks_uri),
      fetch: tracedFetch(sizeCappedFetch(undefined, tlsDispatcher(config.tls)), 'idp.jwks'),
      // JWKS fetches count for the IdP's reachability too (readiness).
      events: {
        refreshed: () => {
          metrics.jwks.refreshed();
          idp.health.record('jwks', true);
        },
        refreshFailed: () => {
          metrics.jwks.refreshFailed();
          idp.health.record('jwks', false);
        },
      },
      timeoutMs: config.oidc.timeoutMs,
    }),
    dpopKeys,
    dpopNonces: new DpopNonceCache(store),
  };
  stopKeyAudit.set(
    services,
    idp.keys.onRotated((r) =>
      audit.emit('key.rotated', {
        kid: r.kid,
        use: r.use,
        thumbprint: r.thumbprint,
        previous_kid: r.previousKid,
      }),
    ),
  );
  metrics.jwksAgeFrom(() => services.jwks.ageSeconds());
  metrics.storeUpFrom(() => pingStore(store));
  metrics.fipsRequiredIs(config.fipsMode);
  if (config.oidc.dpopEnabled) idp.useDpopNonces(services.dpopNonces);
  // JARM verifies with the IdP's signing keys; unpinned JAR encryption encrypts to its current enc key.
  if (config.jar.encryption && !config.jar.encryption.key) idp.useJarEncryptionKeys(services.jwks);
  if (config.jarm.enabled || config.jar.encryption) services.jwks.start();

  return services;
}

/** Each services' key.rotated subscription, ended with the services. */
const stopKeyAudit = new WeakMap<BffServices, () => void>();

/** Stops what createServices started; the store is the caller's to close. */
export async function stopServices(services: BffServices): Promise<void> {
  stopKeyAudit.get(services)?.();
  services.idp.stop();
  services.jwks.stop();
  await services.forwarder.close();
}
