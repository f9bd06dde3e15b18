import { ConfigError } from '../errors.js';
import { mergeConfigFile } from './file.js';
import { frontendProblemSink, parseFrontends } from './frontends.js';
import { observabilityConfig } from './observability.js';
import { isSafeRelativePath } from './paths.js';
import { type Env, isSet, type ProblemSink, readVariables } from './read.js';
import { clientAuth, tokenBinding } from './rules/client-auth.js';
import { fipsPolicy } from './rules/fips.js';
import { registrationSettings } from './rules/registration.js';
import type { RuleContext } from './rules/context.js';
import { applyPreset, interopSettings } from './rules/interop.js';
import { jarmSettings, jarSettings } from './rules/jar-jarm.js';
import { redisSettings } from './rules/redis.js';
import { routeTable } from './rules/routes.js';
import { sessionSettings } from './rules/sessions.js';
import { spaSettings } from './rules/spa.js';
import { plainHttpPolicy, tlsSettings } from './rules/tls.js';
import type { LoginParameter } from './enums.js';
import type { BffConfig, FrontendConfig } from './types.js';
import { VARIABLE_NAMES } from './variables.js';

export { isSafeRelativePath } from './paths.js';

export interface LoadOptions {
  /**
   * For `fapi-bff register` and `client-metadata`: the clients are not registered yet (or are being
   * registered again). OIDC_CLIENT_ID may be absent (a placeholder the metadata never carries takes
   * its place) and a registration file is not read (it may not exist yet); its path is kept in
   * `oidc.registration.file`.
   */
  readonly unregistered?: boolean;
}

/**
 * Parse the environment (plus the optional MS_BFF_CONFIG file) once into a deep-frozen config:
 * variables.ts declares and parses each variable; the modules in rules/ check what depends on
 * several (one module per concern); this function assembles the tree. Every problem is collected
 * and reported together in one ConfigError: an operator fixes a deployment in one round, not one
 * variable per restart.
 */
export async function loadConfig(rawEnv: Env, options: LoadOptions = {}): Promise<BffConfig> {
  const problems: { variable: string; message: string }[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  // Process-wide settings are checked once per frontend: each problem is reported once.
  const problem = (variable: string, message: string) => {
    const key = `${variable}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push({ variable, message });
  };
  const warn = (w: string) => {
    if (!warnings.includes(w)) warnings.push(w);
  };

  const merged = mergeConfigFile(rawEnv, problem);
  const frontends: FrontendConfig[] = [];
  if (merged.fileFrontends === undefined) {
    // The environment alone: one frontend, `default`, whose sessions keep their store keys.
    const config = await buildConfig(merged.env, merged.fileRoutes, problem, warn, '/', options);
    if (config)
      frontends.push({ name: 'default', host: undefined, pathPrefix: '/', storeNamespace: '', config });
  } else {
    for (const entry of parseFrontends(merged.fileFrontends, problem)) {
      const env: Record<string, string | undefined> = { ...merged.env, ...entry.env };
      // The frontend's own routes replace the environment's (and the file's top-level) routes.
      if (entry.routes !== undefined) delete env.MS_BFF_ROUTES;
      // The frontend's own client (clientId or clientRegistrationFile) replaces the environment's.
      if (entry.env.OIDC_CLIENT_ID !== undefined && entry.env.OIDC_CLIENT_REGISTRATION_FILE === undefined)
        delete env.OIDC_CLIENT_REGISTRATION_FILE;
      if (entry.env.OIDC_CLIENT_REGISTRATION_FILE !== undefined && entry.env.OIDC_CLIENT_ID === undefined)
        delete env.OIDC_CLIENT_ID;
      const sink = frontendProblemSink(entry, merged.env, problem);
      const config = await buildConfig(
        env,
        entry.routes ?? merged.fileRoutes,
        sink,
        warn,
        entry.pathPrefix,
        options,
      );
      if (config && entry.host !== undefined && config.publicUrl.hostname.toLowerCase() !== entry.host) {
        sink('MS_BFF_PUBLIC_URL', `must be on the frontend's host ${entry.host}`);
      }
      if (config) {
        frontends.push({
          name: entry.name,
          host: entry.host,
          pathPrefix: entry.pathPrefix,
          storeNamespace: `f:${entry.name}:`,
          config,
        });
      }
    }
  }
  const first = frontends[0];
  if (problems.length > 0 || !first) {
    throw new ConfigError(
      problems.length ? problems : [{ variable: 'MS_BFF_CONFIG', message: 'no frontend' }],
    );
  }
  return deepFreeze({ ...first.config, warnings, frontends });
}

/**
 * One frontend's whole configuration from its environment (the process's, plus the frontend's own
 * settings): undefined when a problem was reported.
 */
async function buildConfig(
  mergedEnv: Env,
  fileRoutes: unknown,
  problem: ProblemSink,
  warn: (message: string) => void,
  pathPrefix: string,
  options: LoadOptions,
): Promise<BffConfig | undefined> {
  let failed = false;
  const report: ProblemSink = (variable, message) => {
    failed = true;
    problem(variable, message);
  };
  // Not registered yet: the file `register` is about to write is not read, and needs no client id.
  const unregisteredFile = options.unregistered
    ? mergedEnv.OIDC_CLIENT_REGISTRATION_FILE?.trim() || undefined
    : undefined;
  const clientEnv = options.unregistered
    ? {
        ...mergedEnv,
        OIDC_CLIENT_REGISTRATION_FILE: undefined,
        OIDC_CLIENT_ID: mergedEnv.OIDC_CLIENT_ID?.trim() ? mergedEnv.OIDC_CLIENT_ID : 'unregistered',
      }
    : mergedEnv;
  // MS_BFF_IDP_PRESET fills in only what neither the file nor the environment set.
  const env = applyPreset(clientEnv);
  const v = readVariables(env, report);
  const production = v.MS_BFF_PROFILE === 'production';
  const warnings: string[] = [];
  const base: RuleContext = {
    values: v,
    env,
    production,
    problem: report,
    warn: (w) => {
      warnings.push(w);
      warn(w);
    },
    pathPrefix,
  };
  // FIPS first: a key or alg it refuses is not reported again by the rule that would import it.
  const refusedByFips = fipsPolicy(base);
  const ctx: RuleContext = {
    ...base,
    problem: (variable, message) => {
      if (!refusedByFips.has(variable)) report(variable, message);
    },
  };
  const http = plainHttpPolicy(ctx);

  // The IdP and the public face of the BFF.
  const issuer = v.OIDC_ISSUER;
  if (!isSet(env, 'OIDC_ISSUER')) report('OIDC_ISSUER', 'is required');
  if (issuer) {
    http.check('OIDC_ISSUER', issuer);
    if (issuer.pathname.includes('/.well-known/') || issuer.search || issuer.hash) {
      report(
        'OIDC_ISSUER',
        'must be the issuer identifier, not a discovery URL (no /.well-known/, query or fragment)',
      );
    }
  }
  const registration = registrationSettings(ctx);
  const clientId = registration?.client_id ?? v.OIDC_CLIENT_ID;
  if (!clientId && !isSet(env, 'OIDC_CLIENT_REGISTRATION_FILE'))
    report('OIDC_CLIENT_ID', 'is required (or OIDC_CLIENT_REGISTRATION_FILE from `fapi-bff register`)');
  const port = v.PORT;
  const host = v.HOST ?? (production ? '0.0.0.0' : '127.0.0.1');
  const publicUrlSet = isSet(env, 'MS_BFF_PUBLIC_URL');
  if (!publicUrlSet && production) report('MS_BFF_PUBLIC_URL', 'is required in production');
  // Unset in development: the browser reaches the BFF on localhost.
  const publicUrl = publicUrlSet ? v.MS_BFF_PUBLIC_URL : new URL(`http://localhost:${port}`);
  if (publicUrl) {
    http.check('MS_BFF_PUBLIC_URL', publicUrl);
    if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash)
      report('MS_BFF_PUBLIC_URL', 'must be an origin only (scheme, host and port; no path)');
  }
  for (const name of ['OIDC_AUTHORIZATION_URL', 'OIDC_TOKEN_URL'] as const) {
    const override = v[name];
    if (override === undefined) continue;
    ctx.warn(`${name} overrides the discovered endpoint (FAPI 2.0 §5.3.3.1-9 prefers metadata)`);
    http.check(name, override);
  }
  if (!isSafeRelativePath(v.MS_BFF_POST_LOGOUT_REDIRECT)) {
    report('MS_BFF_POST_LOGOUT_REDIRECT', 'must be a same-origin path starting with a single /');
  }

  // One module per concern, each checking what depends on several variables.
  const tls = tlsSettings(ctx);
  const { clientSecret, signingKey } = await clientAuth(ctx);
  const jar = await jarSettings(ctx, signingKey);
  const jarm = await jarmSettings(ctx);
  const { session, csrf } = sessionSettings(ctx);
  const routes = routeTable(ctx, fileRoutes, http);
  tokenBinding(ctx, routes);
  const interop = interopSettings(ctx);
  const { redis, workers } = redisSettings(ctx);
  const spa = spaSettings(ctx, http, publicUrl);

  const unknown = Object.keys(env).filter(
    (k) => k.startsWith('MS_BFF_') && !VARIABLE_NAMES.has(k) && !VARIABLE_NAMES.has(k.replace(/_FILE$/, '')),
  );
  for (const k of unknown) ctx.warn(`${k} is not a known variable (typo?)`);

  if (failed || !issuer || !clientId || !publicUrl) {
    if (!failed) report('OIDC_ISSUER', 'is required');
    return undefined;
  }

  const config: BffConfig = {
    profile: v.MS_BFF_PROFILE,
    publicUrl,
    publicOrigin: publicUrl.origin,
    redirectUri: new URL(`${pathPrefix}auth/callback`, publicUrl).href,
    host,
    port,
    allowHttpHosts: v.MS_BFF_ALLOW_HTTP_HOSTS,
    trustedProxies: v.MS_BFF_TRUSTED_PROXIES,
    oidc: {
      issuer,
      clientId,
      clientSecret: clientSecret ?? registration?.client_secret,
      registration: registration
        ? { file: registration.file, clientUri: registration.registration_client_uri }
        : unregisteredFile
          ? { file: unregisteredFile, clientUri: undefined }
          : undefined,
      scopes: v.OIDC_SCOPES,
      authorizationUrl: v.OIDC_AUTHORIZATION_URL,
      tokenUrl: v.OIDC_TOKEN_URL,
      tokenAuthMethod: v.MS_BFF_TOKEN_AUTH_METHOD,
      idTokenAlg: v.MS_BFF_ID_TOKEN_ALG,
      parEnabled: v.MS_BFF_PAR_ENABLED,
      responseMode: v.MS_BFF_RESPONSE_MODE,
      loginParamsAllowed: v.MS_BFF_LOGIN_PARAMS_ALLOWED as readonly LoginParameter[],
      dpopEnabled: v.MS_BFF_DPOP_ENABLED,
      dpopAlg: v.MS_BFF_DPOP_ALG,
      timeoutMs: v.MS_BFF_IDP_TIMEOUT_MS,
      discoveryRefreshSec: v.MS_BFF_DISCOVERY_REFRESH,
      allowInsecureIssuer: issuer.protocol === 'http:' && http.allows(issuer.hostname),
    },
    signingKey,
    keys: {
      prepublishSec: v.MS_BFF_KEY_PREPUBLISH_SECONDS,
      signingPath: keyPath(env, 'BFF_JWT_SIGNING_KEY'),
      jarmPath: keyPath(env, 'BFF_JARM_PRIV_KEY'),
    },
    jar,
    jarm,
    session,
    csrf,
    redisUrl: v.REDIS_URL?.href,
    redisKeyPrefix: v.MS_BFF_REDIS_KEY_PREFIX,
    redis,
    workers,
    tls,
    dpopNonceSecret: v.MS_BFF_DPOP_NONCE_SECRET,
    routes,
    upstreamTimeoutMs: v.MS_BFF_UPSTREAM_TIMEOUT_MS,
    websocketRecheckSec: v.MS_BFF_WEBSOCKET_RECHECK_SECONDS,
    readyRequiresIdp: v.MS_BFF_READY_REQUIRES_IDP,
    refreshOn401MinIntervalSec: v.MS_BFF_REFRESH_ON_401_MIN_INTERVAL_SECONDS,
    postLogoutRedirect: v.MS_BFF_POST_LOGOUT_REDIRECT,
    spa,
    fipsMode: v.FIPS_MODE,
    logLevel: v.LOG_LEVEL,
    observability: observabilityConfig(v),
    interop,
    warnings,
    frontends: [],
  };
  return config;
}

/** The path a key variable names (NAME or NAME_FILE), or undefined when the key is given inline. */
function keyPath(env: Env, name: 'BFF_JWT_SIGNING_KEY' | 'BFF_JARM_PRIV_KEY'): string | undefined {
  const raw = (env[name] ?? env[`${name}_FILE`])?.trim();
  if (!raw || raw.startsWith('{') || raw.includes('-----BEGIN')) return undefined;
  return raw;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    // Typed arrays cannot be frozen; their holders are.
    if (value instanceof Uint8Array) return value;
    if (value instanceof URL) return Object.freeze(value) as T;
    if (value instanceof Map) {
      for (const v of value.values()) deepFreeze(v);
      return Object.freeze(value);
    }
    if (typeof CryptoKey !== 'undefined' && value instanceof CryptoKey) return value;
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
