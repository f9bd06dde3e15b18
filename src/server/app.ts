import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { BffConfig, FrontendConfig } from '../config/types.js';
import { ClientTokens } from '../oauth/client-tokens.js';
import { DpopKey, DpopKeyCache, DpopNonceCache, generateDpopKey } from '../dpop/client.js';
import { collectFipsEvidence, type FipsEvidence } from '../fips/evidence.js';
import { checkIdTokenPolicy } from '../oauth/id-token-policy.js';
import { IdpClient } from '../oauth/idp-client.js';
import { IssuerShares } from '../oauth/issuer-share.js';
import { BffError } from '../errors.js';
import { AuditLog, type AuditSink } from '../observability/audit.js';
import { carriesRequestFields, loggerOptions } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { installTraceContext, tracingStarted } from '../observability/otel-sdk.js';
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
import { registerSpa } from '../spa/plugin.js';
import { attachFrontend, type BffServices, frontendOf } from './services.js';
import {
  basePath,
  FrontendRegistry,
  type FrontendRuntime,
  frontendFingerprint,
  needsFrontend,
} from './frontends.js';
import { ConfigReloader } from './reload.js';
import { namespacedStore } from '../store/namespaced.js';

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
  /** The frontend these services are for (audit lines carry it); default `default`. */
  readonly frontend?: string;
}

export interface BuildAppOptions extends CreateServicesOptions {
  /** false silences logs (tests); default: pino with redaction at config.logLevel. */
  readonly logger?: boolean | object;
  /** Hooks registered on the root instance before any route (the development host redirect). */
  readonly beforeRoutes?: (app: FastifyInstance) => void | Promise<void>;
  /**
   * The IdP client of a frontend other than the first (which uses `idp`), and of frontends a reload
   * adds or changes. Default: IdpClient.create with the app's logger.
   */
  readonly createIdp?: (config: BffConfig) => Promise<IdpClient>;
  /**
   * The issuer shares `idp` was created with (IdpClient.create): the default createIdp uses them, so
   * frontends of one issuer discover it once and share one JWKS cache. Default: new ones (shared by
   * every frontend but the first).
   */
  readonly issuerShares?: IssuerShares;
  /**
   * Loads the configuration again, from the same environment and MS_BFF_CONFIG file (the same
   * loader as at start), for reloads; absent: reloads are refused.
   */
  readonly loadConfig?: () => Promise<BffConfig>;
}

/** What buildApp returns: the app, the first frontend's services, and the frontends' registry. */
export interface BuiltApp {
  readonly app: FastifyInstance;
  /** The first frontend's services (the only one's, without a `frontends` list). */
  readonly services: BffServices;
  readonly admin: FastifyInstance | undefined;
  readonly registry: FrontendRegistry;
  /** Re-reads the configuration (SIGHUP, file change) and swaps the frontends (server/reload.ts). */
  readonly reloader: ConfigReloader;
}

/**
 * Paths the BFF owns: the SPA never answers them, not even with its index.html (a browser
 * navigation to a mistyped /auth/… path gets the BFF's 404, not the app).
 */
export const BFF_PATHS = ['/auth', '/api', '/healthz', '/readyz', '/metrics', '/.well-known'] as const;

/**
 * Build the standalone Fastify app: no env reads, no listen (fastify's build()/listen() split). The
 * routes are the ones the embeddable plugin (fapiBff) registers.
 */
export async function buildApp(options: BuildAppOptions): Promise<BuiltApp> {
  await installTraceContext();
  const metrics = options.metrics ?? new Metrics();
  const retired = new Set<BffServices>();
  // Filled in once the app exists: its logger (the default IdP logger and audit sink) and the
  // frontends' registry (rewriteUrl runs only for requests, after listen).
  const late: { log?: FastifyInstance['log']; registry?: FrontendRegistry } = {};
  const shares = options.issuerShares ?? new IssuerShares(metrics);
  const createIdp =
    options.createIdp ??
    ((config: BffConfig) =>
      IdpClient.create(
        config,
        metrics,
        late.log ?? { warn: () => undefined, info: () => undefined },
        undefined,
        shares,
      ));
  const build = async (frontend: FrontendConfig, first: BffConfig | undefined): Promise<FrontendRuntime> => {
    const config = first ?? frontend.config;
    const idp = first ? options.idp : await createIdp(config);
    if (!first) {
      idp.startBackgroundRefresh();
      idp.keys.watch();
    }
    const services = createServices({
      ...options,
      config,
      idp,
      metrics,
      store: namespacedStore(options.store, frontend.storeNamespace),
      auditSink: options.auditSink ?? late.log,
      frontend: frontend.name,
    });
    return {
      name: frontend.name,
      frontend,
      services,
      basePath: basePath(frontend.pathPrefix),
      fingerprint: frontendFingerprint(frontend),
    };
  };
  const logger = options.logger === undefined ? loggerOptions(options.config.logLevel) : options.logger;
  const app = Fastify({
    logger,
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
    // Before routing: the request's frontend (Host, pathPrefix), and its URL inside that frontend.
    rewriteUrl: (raw) => late.registry?.rewrite(raw, attachFrontend) ?? raw.url ?? '/',
  });
  late.log = app.log;
  const [head, ...rest] = options.config.frontends;
  if (!head) throw new Error('the configuration has no frontend');
  const first = await build(head, options.config);
  const frontends = new FrontendRegistry([
    first,
    ...(await Promise.all(rest.map((f) => build(f, undefined)))),
  ]);
  late.registry = frontends;
  // Process-wide handlers (health, metrics, admin) and the embedding fallback see the current first
  // frontend, also after a reload replaced it.
  const services = currentServices(frontends);
  drainConnectionsOnClose(app);
  if (options.beforeRoutes) await options.beforeRoutes(app);
  // Callback style: it runs on every request, and an async hook costs a promise and a microtask turn.
  app.addHook('onRequest', (request, _reply, done) => {
    if (!frontendOf(request) && needsFrontend(request.url)) {
      done(new BffError('BFF_FRONTEND_NOT_FOUND', { detail: 'no frontend serves this host and path' }));
      return;
    }
    done();
  });
  await registerBff(app, services, {
    notFound: true,
    requestFieldsMixin: carriesRequestFields(logger),
    redis: options.redis ?? sharedCountersOf(options.store),
    upgradeFrontend: (raw) => {
      const selected = frontends.select(raw.headers.host, raw.url ?? '/');
      if (!selected) return undefined;
      raw.url = selected.url;
      return selected.runtime;
    },
  });
  // The SPA on every other GET/HEAD path, the request's frontend's (its `static` or `frontendUrl`),
  // read on each request so a reload applies at once; no frontend or none configured: 404.
  await registerSpa(app, {
    spaFor: (request) => frontendOf(request)?.services.config.spa,
    reserved: BFF_PATHS,
    tls: options.config.tls,
    timeoutMs: options.config.upstreamTimeoutMs,
  });
  const obs = options.config.observability;
  const admin = obs.admin.port === undefined ? undefined : await buildAdminApp(services);
  const reloader = new ConfigReloader({
    registry: frontends,
    load: options.loadConfig,
    current: options.config,
    build: (frontend) => build(frontend, undefined),
    retire: (runtime) => {
      retired.add(runtime.services);
      // Requests in flight finish on the services they started with.
      setTimeout(() => {
        if (!retired.delete(runtime.services)) return;
        // Its IdP client's key-file watchers too (its replacement watches the same files).
        runtime.services.idp.keys.close();
        void stopServices(runtime.services);
      }, RETIRE_AFTER_MS).unref();
    },
    log: app.log,
    metrics,
  });
  app.addHook('onClose', async () => {
    reloader.close();
    for (const runtime of frontends.list()) await stopServices(runtime.services);
    for (const old of retired) await stopServices(old);
    retired.clear();
    await admin?.close();
  });
  return { app, services: frontends.primary.services, admin, registry: frontends, reloader };
}

/** How long replaced services keep serving requests that started on them. */
const RETIRE_AFTER_MS = 30_000;

/** A BffServices whose every property is read from the registry's current first frontend. */
function currentServices(registry: FrontendRegistry): BffServices {
  return new Proxy({} as BffServices, {
    get: (_target, property) => Reflect.get(registry.primary.services, property) as unknown,
  });
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
  const frontend = options.frontend ?? 'default';
  const audit = new AuditLog(
    options.auditSink ?? { info: () => undefined },
    {
      sub: obs.auditSub,
      hashKey: config.session.keys[0] as Uint8Array,
      frontend,
    },
    (event) => metrics.audit(event),
  );
  const sessions = new SessionManager(store, sealer, config.session, clock, (expired) => {
    metrics.session('expired', frontend);
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
    frontend,
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
        session: (event) => metrics.session(event, frontend),
        upstreamInvalidToken: (outcome) => metrics.upstreamInvalidToken(outcome),
        revocation: (outcome) => metrics.revocation(outcome, frontend),
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
    // One cache per issuer, shared by its frontends (the IdP client records each fetch for readiness).
    jwks: idp.jwks,
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
  if (config.jarm.enabled || config.jar.encryption) idp.startJwksRefresh();

  return services;
}

/** Each services' key.rotated subscription, ended with the services. */
const stopKeyAudit = new WeakMap<BffServices, () => void>();

/** Stops what createServices started; the store is the caller's to close. */
export async function stopServices(services: BffServices): Promise<void> {
  stopKeyAudit.get(services)?.();
  // Also ends its share of the JWKS refresh (the cache runs while another frontend needs it).
  services.idp.stop();
  await services.forwarder.close();
}
