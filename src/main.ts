import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import cluster from 'node:cluster';
import { pino } from 'pino';
import { aggregateThroughPrimary } from './observability/cluster-metrics.js';
import { loadConfig } from './config/load.js';
import type { BffConfig } from './config/types.js';
import type { DevSetup } from './dev/dev-setup.js';
import { BffError, ConfigError, isBffError } from './errors.js';
import { collectFipsEvidence, fipsRefusal } from './fips/evidence.js';
import { pinFipsTls } from './fips/tls.js';
import { IdpClient } from './oauth/idp-client.js';
import { IssuerShares } from './oauth/issuer-share.js';
import { loggerOptions, prettyStream } from './observability/logger.js';
import { startTracing, type Tracing } from './observability/otel-sdk.js';
import { Metrics } from './observability/metrics.js';
import { buildApp } from './server/app.js';
import { installLifecycle } from './server/lifecycle.js';
import { storeFromConfig } from './store/from-config.js';
import type { KeyValueStore } from './store/store.js';

/** Discovery attempts at startup before giving up (the IdP may still be starting next to us). */
const DISCOVERY_ATTEMPTS = 5;
const DISCOVERY_RETRY_MS = 2000;
/** Longest wait for requests in flight at shutdown (below the 30 s grace period of Kubernetes). */
const SHUTDOWN_DRAIN_TIMEOUT_MS = 25_000;

/**
 * The composition root and the only module with side effects:
 * env → config → store → IdP client → app → listen → signals.
 */
export async function start(): Promise<void> {
  let dev: DevSetup | undefined;
  let env: Record<string, string | undefined> = process.env;
  if (!process.env.OIDC_ISSUER) {
    const port = process.env.PORT ?? '8080';
    dev = await startDevelopmentSetup(process.env.MS_BFF_PUBLIC_URL ?? `http://localhost:${port}`);
    env = {
      ...dev.env,
      ...process.env,
      ...pick(dev.env, ['OIDC_ISSUER', 'OIDC_CLIENT_ID', 'BFF_JWT_SIGNING_KEY']),
    };
    // The demo SPA gives way to the operator's own SPA from a frontend origin (a Vite dev server).
    if (process.env.MS_BFF_FRONTEND_URL && !process.env.MS_BFF_STATIC_DIR) delete env.MS_BFF_STATIC_DIR;
    if (!process.env.MS_BFF_PROFILE) env.MS_BFF_PROFILE = 'development';
  }

  let config: BffConfig;
  try {
    config = await loadConfig(env);
  } catch (err) {
    await dev?.close();
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.toString()}\n`);
      process.exit(1);
    }
    throw err;
  }
  // Before anything makes a span: the SDK (only when OTEL_* variables ask for it) registers the
  // global tracer provider, context manager and propagator.
  let tracing: Tracing | undefined;
  try {
    tracing = await startTracing(process.env, packageVersion());
  } catch (err) {
    await dev?.close();
    process.stderr.write(`fapi-bff: cannot start tracing: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const stream = config.observability.logFormat === 'pretty' ? prettyStream() : undefined;
  const log = stream ? pino(loggerOptions(config.logLevel), stream) : pino(loggerOptions(config.logLevel));
  if (tracing) log.info({ exporter: tracing.exporter }, 'OpenTelemetry tracing on');
  for (const w of config.warnings) {
    // The development setup's IdP and demo API are plain HTTP on loopback by design; the banner says
    // so once, and the only URL it prints is the one to open.
    if (dev && /plain HTTP/.test(w)) log.debug(w);
    else log.warn(w);
  }
  if (config.workers > 1 && cluster.isPrimary) {
    if (dev) {
      await dev.close();
      process.stderr.write(
        'fapi-bff: MS_BFF_WORKERS needs OIDC_ISSUER (the development setup runs one process)\n',
      );
      process.exit(1);
    }
    // The primary only supervises: each worker runs everything below and shares the port.
    const { runPrimary } = await import('./server/workers.js');
    await runPrimary({ workers: config.workers, log });
    return;
  }
  // FIPS: pin TLS before any connection exists, then prove the provider, or refuse to start.
  if (config.fipsMode) pinFipsTls();
  const fips = collectFipsEvidence(config.fipsMode);
  if (config.fipsMode) {
    const refusal = fipsRefusal(fips);
    if (refusal) {
      await dev?.close();
      process.stderr.write(`fapi-bff: ${refusal}\n`);
      process.exit(1);
    }
    log.info(
      {
        fips: {
          fips_mode: fips.fips_mode,
          openssl_version: fips.openssl_version,
          providers: fips.providers,
          self_test: fips.self_test.passed ? 'passed' : 'failed',
          refused: fips.self_test.checks.filter((c) => c.expect === 'refused').map((c) => c.name),
          tls: fips.tls,
        },
      },
      'FIPS mode: self-test passed',
    );
  }

  const metrics = new Metrics();
  if (cluster.isWorker) aggregateThroughPrimary(metrics);
  const store: KeyValueStore = await storeFromConfig(config, log);
  if (store.kind === 'memory' && [...config.routes.values()].some((r) => r.serviceAudience)) {
    log.warn(
      'service callers are accepted but the store is in memory: DPoP proof replay protection is per instance',
    );
  }
  if (store.kind === 'memory' && config.profile === 'production') {
    log.warn(
      'no REDIS_URL: sessions live in this process only (lost on restart, not shared between instances)',
    );
  }

  // Frontends of one issuer discover it once and share its JWKS cache (the first one's included).
  const issuerShares = new IssuerShares(metrics);
  const idp = await discoverWithRetry(config, metrics, log, issuerShares);
  idp.startBackgroundRefresh();
  // Key sets named by a path are re-read on change and on SIGHUP, validated before they replace
  // the current set (seed 002 §5).
  idp.keys.watch();
  const devRoutes = dev ? await developmentRoutes(config.publicUrl) : {};
  const { app, admin, registry, reloader } = await buildApp({
    config,
    store,
    idp,
    issuerShares,
    metrics,
    fips,
    logger: { ...loggerOptions(config.logLevel), ...(stream ? { stream } : {}) },
    // A reload reads the same environment and file through the same loader as this start.
    loadConfig: () => loadConfig(env),
    ...devRoutes,
  });
  // SIGHUP: every frontend's key sets (seed 002 §5), then the configuration (frontends, routes,
  // kill switches); the MS_BFF_CONFIG file is also watched.
  process.on('SIGHUP', () => {
    for (const runtime of registry.list()) void runtime.services.idp.keys.reload();
    void reloader.reload('sighup');
  });
  const configFile = env.MS_BFF_CONFIG?.trim();
  if (configFile) reloader.watch(configFile);

  installLifecycle({
    log,
    closeables: [
      app,
      store,
      ...(tracing ? [{ close: () => tracing.shutdown() }] : []),
      ...(dev ? [dev] : []),
    ],
    drainTimeoutMs: SHUTDOWN_DRAIN_TIMEOUT_MS,
  });

  try {
    // Fastify would log the bound addresses (http://127.0.0.1:8080); the one URL to open is the public
    // URL, the only one the redirect URI and the cookies work with.
    await app.listen({
      host: config.host,
      port: config.port,
      listenTextResolver: () =>
        `listening (host ${config.host}, port ${config.port}); open ${config.publicUrl.href}`,
    });
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException)?.code === 'EADDRINUSE' ||
      (err as NodeJS.ErrnoException)?.code === 'EACCES'
    ) {
      const why =
        (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'is already in use' : 'is not allowed';
      process.stderr.write(
        `fapi-bff: port ${config.port} on ${config.host} ${why}; set PORT to another port (e.g. PORT=8081 npm start)\n`,
      );
      await dev?.close();
      await store.close().catch(() => undefined);
      process.exit(1);
    }
    throw err;
  }
  const adminPort = config.observability.admin.port;
  if (admin && adminPort !== undefined) {
    await admin.listen({ host: config.observability.admin.host, port: adminPort });
    log.info({ admin: admin.server.address() }, 'admin listener (/metrics, /readyz)');
  }
  if (dev) {
    const line = '='.repeat(78);
    process.stdout.write(
      [
        '',
        line,
        '  fapi-bff DEVELOPMENT SETUP: embedded IdP, demo API and demo SPA. NOT FOR PRODUCTION.',
        `  Open ${config.publicUrl.href} and log in as alice / alice-password`,
        '  (an embedded IdP and a demo API run on other loopback ports; the BFF talks to them, you do not)',
        '  Set OIDC_ISSUER (and the variables in README.md) to use a real identity provider.',
        line,
        '',
      ].join('\n'),
    );
  } else {
    log.info(
      { url: config.publicUrl.origin, issuer: config.oidc.issuer.href, store: store.kind },
      'fapi-bff listening',
    );
  }
}

async function discoverWithRetry(
  config: BffConfig,
  metrics: Metrics,
  log: pino.Logger,
  shares: IssuerShares,
): Promise<IdpClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await IdpClient.create(config, metrics, log, undefined, shares);
    } catch (err) {
      const bff = isBffError(err) ? err : new BffError('BFF_INTERNAL', { cause: err });
      if (bff.code !== 'BFF_IDP_UNAVAILABLE' || attempt >= DISCOVERY_ATTEMPTS) {
        process.stderr.write(
          `fapi-bff: cannot use the identity provider ${config.oidc.issuer.href}: ${bff.code}${bff.detail ? ` — ${bff.detail}` : ''}\n`,
        );
        process.exit(1);
      }
      log.warn({ attempt, code: bff.code }, 'IdP discovery failed; retrying');
      await new Promise((r) => setTimeout(r, DISCOVERY_RETRY_MS));
    }
  }
}

/**
 * The development setup's embedded IdP needs oidc-provider, a development dependency: a production
 * install (`npm ci --omit=dev`) has no IdP to start, and says so instead of a module stack trace.
 */
async function startDevelopmentSetup(publicUrl: string): Promise<DevSetup> {
  try {
    const { startDevSetup } = await import('./dev/dev-setup.js');
    return await startDevSetup(publicUrl);
  } catch (err) {
    if ((err as NodeJS.ErrnoException)?.code === 'ERR_MODULE_NOT_FOUND') {
      process.stderr.write(
        [
          'fapi-bff: OIDC_ISSUER is not set, so this would be the development setup, but its embedded identity',
          'provider (the oidc-provider package, a development dependency) is not installed. Either set OIDC_ISSUER',
          'and the variables in README.md to use your identity provider, or install the development dependencies',
          '(npm ci, without --omit=dev) to run the development setup.',
          '',
        ].join('\n'),
      );
      process.exit(1);
    }
    throw err;
  }
}

/**
 * Development setup only: the redirect of other host names to the public URL. (The demo SPA is
 * served like any SPA: the setup sets MS_BFF_STATIC_DIR to demo/spa.)
 */
async function developmentRoutes(publicUrl: URL) {
  const { redirectToPublicUrl } = await import('./dev/canonical-host.js');
  return { beforeRoutes: redirectToPublicUrl(publicUrl) };
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function pick(obj: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => k in obj).map((k) => [k, obj[k] as string]));
}

/** `node dist/src/main.js` (what `npm start` runs) starts the server; `fapi-bff start` imports it. */
export function runAsEntryPoint(): void {
  start().catch((err) => {
    process.stderr.write(`fapi-bff: fatal: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href)
  runAsEntryPoint();
