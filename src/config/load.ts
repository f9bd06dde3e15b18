import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { getFips } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import {
  JWE_ALGS,
  JWE_ENCS,
  type JweAlg,
  type JweEnc,
  loadDecryptionKey,
  loadEncryptionPublicKey,
} from './enc-keys.js';
import { loadSigningKey, parseSessionKeys } from './keys.js';
import { parseObservability } from './observability.js';
import { VARIABLES, VARIABLE_NAMES, type VariableSpec } from './schema.js';
import type {
  BffConfig,
  FapiAlg,
  JarmMode,
  Profile,
  RouteConfig,
  SigningKey,
  TokenAuthMethod,
} from './types.js';

type Env = Readonly<Record<string, string | undefined>>;

interface Problem {
  variable: string;
  message: string;
}

/**
 * Parse the environment (plus the optional MS_BFF_CONFIG file) once into a deep-frozen config.
 * Every problem is collected and reported together in one ConfigError: an operator fixes a
 * deployment in one round, not one variable per restart.
 */
export async function loadConfig(rawEnv: Env): Promise<BffConfig> {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const problem = (variable: string, message: string) => problems.push({ variable, message });

  const { env, fileRoutes } = mergeConfigFile(rawEnv, problem);
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const secret = (name: string): string | undefined => {
    const direct = get(name);
    const file = get(`${name}_FILE`);
    if (direct !== undefined && file !== undefined) {
      problem(name, `set either ${name} or ${name}_FILE, not both`);
      return undefined;
    }
    if (file === undefined) return direct;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      problem(`${name}_FILE`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const v = get(name);
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    problem(name, `must be one of ${allowed.join(', ')} (got "${v}")`);
    return fallback;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const v = get(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    problem(name, `must be true or false (got "${v}")`);
    return fallback;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const v = get(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problem(name, `must be an integer from ${min} to ${max} (got "${v}")`);
      return fallback;
    }
    return n;
  };

  // Profile first: it decides what else is refused.
  const issuerRaw = get('OIDC_ISSUER');
  const profile = oneOf<Profile>('MS_BFF_PROFILE', ['production', 'development'], 'production');
  const production = profile === 'production';
  const allowHttpHosts = (get('MS_BFF_ALLOW_HTTP_HOSTS') ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  if (allowHttpHosts.length > 0) {
    warnings.push(`MS_BFF_ALLOW_HTTP_HOSTS allows plain HTTP to: ${allowHttpHosts.join(', ')}`);
  }

  /** SP-N1 (FAPI 2.0 §5.2.1): TLS everywhere, except hosts explicitly allowed. */
  const url = (
    name: string,
    value: string | undefined,
    { required }: { required: boolean },
  ): URL | undefined => {
    if (value === undefined) {
      if (required) problem(name, 'is required');
      return undefined;
    }
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      problem(name, `is not a URL ("${value}")`);
      return undefined;
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      problem(name, `must be an https URL (got ${parsed.protocol})`);
      return undefined;
    }
    if (parsed.username || parsed.password) problem(name, 'must not carry credentials');
    if (parsed.protocol === 'http:') {
      const host = parsed.hostname.toLowerCase().replace(/^\[|\]$/g, '');
      if (production && !allowHttpHosts.includes(host)) {
        problem(
          name,
          `plain HTTP is refused in production (${parsed.host} is not in MS_BFF_ALLOW_HTTP_HOSTS)`,
        );
      } else if (!production) {
        warnings.push(
          `${name} uses plain HTTP (${parsed.origin}); allowed only because the profile is development`,
        );
      }
    }
    return parsed;
  };

  const issuer = url('OIDC_ISSUER', issuerRaw, { required: true });
  if (issuer && (issuer.pathname.includes('/.well-known/') || issuer.search || issuer.hash)) {
    problem(
      'OIDC_ISSUER',
      'must be the issuer identifier, not a discovery URL (no /.well-known/, query or fragment)',
    );
  }
  const clientId = get('OIDC_CLIENT_ID');
  if (!clientId) problem('OIDC_CLIENT_ID', 'is required');

  const port = int('PORT', 8080, 0, 65535);
  const host = get('HOST') ?? (production ? '0.0.0.0' : '127.0.0.1');
  const publicUrlRaw = get('MS_BFF_PUBLIC_URL');
  if (!publicUrlRaw && production) problem('MS_BFF_PUBLIC_URL', 'is required in production');
  const publicUrl = url('MS_BFF_PUBLIC_URL', publicUrlRaw ?? `http://localhost:${port}`, { required: false });
  if (publicUrl && (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash)) {
    problem('MS_BFF_PUBLIC_URL', 'must be an origin only (scheme, host and port; no path)');
  }

  const tokenAuthMethod = oneOf<TokenAuthMethod>(
    'MS_BFF_TOKEN_AUTH_METHOD',
    [
      'private_key_jwt',
      'client_secret_basic',
      'client_secret_post',
      'tls_client_auth',
      'self_signed_tls_client_auth',
    ],
    'private_key_jwt',
  );
  if (tokenAuthMethod === 'client_secret_post') {
    if (production) problem('MS_BFF_TOKEN_AUTH_METHOD', 'client_secret_post is refused in production');
    else warnings.push('MS_BFF_TOKEN_AUTH_METHOD=client_secret_post: the secret travels in request bodies');
  }
  const mtlsCert = readPem('MTLS_CERT', get, problem, 'CERTIFICATE');
  const mtlsKey = readPem('MTLS_KEY', get, problem, 'PRIVATE KEY');
  const tlsCa = readPem('MS_BFF_TLS_CA', get, problem, 'CERTIFICATE');
  if ((mtlsCert === undefined) !== (mtlsKey === undefined))
    problem('MTLS_CERT', 'MTLS_CERT and MTLS_KEY go together');
  if (
    (tokenAuthMethod === 'tls_client_auth' || tokenAuthMethod === 'self_signed_tls_client_auth') &&
    !mtlsCert
  ) {
    problem('MTLS_CERT', `is required for ${tokenAuthMethod} (RFC 8705 §2)`);
  }
  const clientSecret = secret('OIDC_CLIENT_SECRET');
  if (tokenAuthMethod.startsWith('client_secret') && !clientSecret) {
    problem('OIDC_CLIENT_SECRET', `is required for ${tokenAuthMethod}`);
  }

  const signingAlgRaw = get('BFF_JWT_SIGNING_ALG');
  let signingAlg: 'PS256' | 'ES256' | undefined;
  if (signingAlgRaw !== undefined)
    signingAlg = oneOf('BFF_JWT_SIGNING_ALG', ['PS256', 'ES256'] as const, 'PS256');
  const signingKeyText = readKeyMaterial('BFF_JWT_SIGNING_KEY', get, problem);
  let signingKey: SigningKey | undefined;
  if (signingKeyText !== undefined) {
    const loaded = await loadSigningKey(signingKeyText, signingAlg);
    if (typeof loaded === 'string') problem('BFF_JWT_SIGNING_KEY', loaded);
    else signingKey = loaded;
  } else if (tokenAuthMethod === 'private_key_jwt') {
    problem('BFF_JWT_SIGNING_KEY', 'is required for private_key_jwt (the default MS_BFF_TOKEN_AUTH_METHOD)');
  }

  const idTokenAlg = oneOf<FapiAlg>('MS_BFF_ID_TOKEN_ALG', ['PS256', 'ES256', 'EdDSA'], 'PS256');
  const parEnabled = bool('MS_BFF_PAR_ENABLED', true);
  if (!parEnabled)
    warnings.push('MS_BFF_PAR_ENABLED=false: FAPI 2.0 requires PAR (Security Profile §5.3.3.2)');

  // Planned features: validate the switch now so a deployment never believes it is on when it is not.
  for (const v of VARIABLES) {
    const isSwitch = (v as VariableSpec).values?.includes('true') ?? false;
    if ('planned' in v && isSwitch && bool(v.name, false)) {
      problem(
        v.name,
        `is not available in this release (planned: ${v.planned}); refusing rather than running without it`,
      );
    }
  }
  // JAR alg allowlist is validated even while JAR is off: `none` is never acceptable (seed 002 §1).
  const jarAllowed = (get('MS_BFF_JAR_ALGS_ALLOWED') ?? 'PS256,ES256').split(',').map((s) => s.trim());
  for (const alg of jarAllowed) {
    if (!['PS256', 'ES256'].includes(alg))
      problem('MS_BFF_JAR_ALGS_ALLOWED', `alg ${alg} is not allowed (PS256, ES256)`);
  }

  // JAR (RFC 9101; seed 002 §1): the allowlist is validated even while JAR is off.
  const jarEnabled = bool('MS_BFF_JAR_ENABLED', false);
  const jarSigningAlgRaw = get('MS_BFF_JAR_SIGNING_ALG');
  const jarSigningAlg =
    jarSigningAlgRaw === undefined
      ? (signingKey?.alg ?? 'PS256')
      : oneOf('MS_BFF_JAR_SIGNING_ALG', ['PS256', 'ES256'] as const, 'PS256');
  if (jarEnabled) {
    if (!signingKey)
      problem('BFF_JWT_SIGNING_KEY', 'is required to sign request objects (MS_BFF_JAR_ENABLED=true)');
    else if (signingKey.alg !== jarSigningAlg) {
      problem(
        'MS_BFF_JAR_SIGNING_ALG',
        `${jarSigningAlg} does not match the ${signingKey.alg} key in BFF_JWT_SIGNING_KEY`,
      );
    }
    if (!jarAllowed.includes(jarSigningAlg)) {
      problem('MS_BFF_JAR_SIGNING_ALG', `${jarSigningAlg} is not in MS_BFF_JAR_ALGS_ALLOWED`);
    }
  }
  let jarEncryption: BffConfig['jar']['encryption'];
  const jarEncAlg = get('MS_BFF_JAR_ENC_ALG');
  if (jarEncAlg !== undefined) {
    const alg = oneOf<JweAlg>('MS_BFF_JAR_ENC_ALG', JWE_ALGS, 'RSA-OAEP-256');
    const enc = oneOf<JweEnc>('MS_BFF_JAR_ENC_METHOD', JWE_ENCS, 'A256GCM');
    if (!jarEnabled)
      problem('MS_BFF_JAR_ENC_ALG', 'encrypting request objects needs MS_BFF_JAR_ENABLED=true');
    const text = readKeyMaterial('BFF_JAR_ENC_KEY', get, problem);
    if (text === undefined) problem('BFF_JAR_ENC_KEY', 'is required when MS_BFF_JAR_ENC_ALG is set');
    else {
      const loaded = await loadEncryptionPublicKey(text, alg);
      if (typeof loaded === 'string') problem('BFF_JAR_ENC_KEY', loaded);
      else jarEncryption = { alg, enc, key: loaded };
    }
  }

  // JARM (seed 002 §2, Milestones 2 and 3).
  const jarmEnabled = bool('MS_BFF_JARM_ENABLED', false);
  const jarmMode = oneOf<JarmMode>(
    'MS_BFF_JARM_MODE',
    ['jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt'],
    'jwt',
  );
  let jarmEncryption: BffConfig['jarm']['encryption'];
  const jarmEncAlg = get('MS_BFF_JARM_ENC_ALG');
  if (jarmEncAlg !== undefined) {
    const alg = oneOf<JweAlg>('MS_BFF_JARM_ENC_ALG', JWE_ALGS, 'RSA-OAEP-256');
    const enc = oneOf<JweEnc>('MS_BFF_JARM_ENC_ENC', JWE_ENCS, 'A256GCM');
    if (!jarmEnabled) problem('MS_BFF_JARM_ENC_ALG', 'encrypted JARM needs MS_BFF_JARM_ENABLED=true');
    const text = readKeyMaterial('BFF_JARM_PRIV_KEY', get, problem);
    if (text === undefined) problem('BFF_JARM_PRIV_KEY', 'is required when MS_BFF_JARM_ENC_ALG is set');
    else {
      const loaded = await loadDecryptionKey(text, alg);
      if (typeof loaded === 'string') problem('BFF_JARM_PRIV_KEY', loaded);
      else jarmEncryption = { alg, enc, key: loaded };
    }
  }

  // Session keys: required in production; development gets ephemeral keys, loudly.
  const sessionKeysRaw = secret('MS_BFF_SESSION_KEYS');
  let sessionKeys: Uint8Array[] = [];
  if (sessionKeysRaw === undefined) {
    if (production)
      problem('MS_BFF_SESSION_KEYS', 'is required in production (comma-separated base64url 32-byte keys)');
    else {
      sessionKeys = [new Uint8Array(randomBytes(32))];
      warnings.push('MS_BFF_SESSION_KEYS is not set: using an ephemeral key; sessions end on restart');
    }
  } else {
    const parsed = parseSessionKeys(sessionKeysRaw);
    for (const p of parsed.problems) problem('MS_BFF_SESSION_KEYS', p);
    sessionKeys = parsed.keys;
  }

  const cookieName = get('MS_BFF_COOKIE_NAME') ?? '__Host-bff-session';
  if (!cookieName.startsWith('__Host-')) {
    problem(
      'MS_BFF_COOKIE_NAME',
      'must start with __Host- (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2)',
    );
  }
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName))
    problem('MS_BFF_COOKIE_NAME', 'is not a valid cookie name');
  const csrfEnabled = bool('MS_BFF_CSRF_ENABLED', true);
  if (!csrfEnabled) {
    if (production) problem('MS_BFF_CSRF_ENABLED', 'disabling CSRF protection is refused in production');
    else warnings.push('MS_BFF_CSRF_ENABLED=false: cross-site requests are not refused');
  }
  const csrfHeader = get('MS_BFF_CSRF_HEADER') ?? 'X-CSRF';
  if (!/^[A-Za-z0-9-]+$/.test(csrfHeader)) problem('MS_BFF_CSRF_HEADER', 'is not a valid header name');

  const idleTimeoutSec = int('MS_BFF_SESSION_IDLE_TIMEOUT', 1800, 60, 30 * 86400);
  const absoluteTimeoutSec = int('MS_BFF_SESSION_ABSOLUTE_TIMEOUT', 28800, 60, 90 * 86400);
  if (absoluteTimeoutSec < idleTimeoutSec) {
    problem('MS_BFF_SESSION_ABSOLUTE_TIMEOUT', 'must not be shorter than MS_BFF_SESSION_IDLE_TIMEOUT');
  }
  const upstreamTimeoutMs = int('MS_BFF_UPSTREAM_TIMEOUT_MS', 30_000, 100, 600_000);

  const nonceSecretRaw = secret('MS_BFF_DPOP_NONCE_SECRET');
  let dpopNonceSecret: Uint8Array | undefined;
  if (nonceSecretRaw !== undefined) {
    const bytes = Buffer.from(nonceSecretRaw, 'base64url');
    if (!/^[A-Za-z0-9_-]+$/.test(nonceSecretRaw) || bytes.length < 32) {
      problem('MS_BFF_DPOP_NONCE_SECRET', 'must be base64url of at least 32 bytes');
    } else dpopNonceSecret = new Uint8Array(bytes);
  }

  const redisUrl = secret('REDIS_URL');
  if (redisUrl !== undefined) {
    try {
      const u = new URL(redisUrl);
      if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
        problem('REDIS_URL', 'must be a redis:// or rediss:// URL');
      else if (u.protocol === 'redis:' && production && !allowHttpHosts.includes(u.hostname.toLowerCase())) {
        warnings.push('REDIS_URL uses redis:// without TLS; use rediss:// outside a trusted network');
      }
    } catch {
      problem('REDIS_URL', 'is not a URL');
    }
  }

  const routes = parseRoutes(get('MS_BFF_ROUTES'), fileRoutes, upstreamTimeoutMs, problem, url);
  const mtlsRoutes = [...routes.values()].filter((r) => r.mtls).map((r) => r.name);
  if (mtlsRoutes.length > 0 && !mtlsCert) {
    problem(
      'MTLS_CERT',
      `is required: routes ${mtlsRoutes.join(', ')} send certificate-bound tokens (mtls: true)`,
    );
  }
  // The IdP binds a client's tokens either to a DPoP key or to the TLS certificate (RFC 9449 / RFC 8705);
  // mixing them per route would send tokens bound to one over the other. One binding per client.
  if (mtlsRoutes.length > 0 && bool('MS_BFF_DPOP_ENABLED', false)) {
    problem(
      'MS_BFF_DPOP_ENABLED',
      'DPoP-bound and certificate-bound (mtls: true routes) tokens are exclusive per client; choose one',
    );
  }

  const postLogoutRedirect = get('MS_BFF_POST_LOGOUT_REDIRECT') ?? '/';
  if (!isSafeRelativePath(postLogoutRedirect)) {
    problem('MS_BFF_POST_LOGOUT_REDIRECT', 'must be a same-origin path starting with a single /');
  }

  const fipsMode = bool('FIPS_MODE', false);
  if (fipsMode && getFips() !== 1) {
    problem(
      'FIPS_MODE',
      'is true but Node.js crypto is not running with a FIPS provider (start node with --enable-fips and an OpenSSL 3 FIPS provider configured)',
    );
  }

  for (const name of ['OIDC_AUTHORIZATION_URL', 'OIDC_TOKEN_URL']) {
    if (get(name))
      warnings.push(`${name} overrides the discovered endpoint (FAPI 2.0 §5.3.3.1-9 prefers metadata)`);
  }
  const authorizationUrl = url('OIDC_AUTHORIZATION_URL', get('OIDC_AUTHORIZATION_URL'), { required: false });
  const tokenUrl = url('OIDC_TOKEN_URL', get('OIDC_TOKEN_URL'), { required: false });
  const logLevel = oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info');
  const observability = parseObservability({ get, bool, int, oneOf, problem }, production);

  const unknown = Object.keys(env).filter(
    (k) => k.startsWith('MS_BFF_') && !VARIABLE_NAMES.has(k) && !VARIABLE_NAMES.has(k.replace(/_FILE$/, '')),
  );
  for (const k of unknown) warnings.push(`${k} is not a known variable (typo?)`);

  if (problems.length > 0 || !issuer || !clientId || !publicUrl) {
    throw new ConfigError(problems.length ? problems : [{ variable: 'OIDC_ISSUER', message: 'is required' }]);
  }

  const host0 = issuer.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const config: BffConfig = {
    profile,
    publicUrl,
    publicOrigin: publicUrl.origin,
    redirectUri: new URL('/auth/callback', publicUrl).href,
    host,
    port,
    allowHttpHosts,
    oidc: {
      issuer,
      clientId,
      clientSecret,
      scopes: get('OIDC_SCOPES') ?? 'openid profile email offline_access',
      authorizationUrl,
      tokenUrl,
      tokenAuthMethod,
      idTokenAlg,
      parEnabled,
      dpopEnabled: bool('MS_BFF_DPOP_ENABLED', false),
      dpopAlg: oneOf('MS_BFF_DPOP_ALG', ['ES256', 'PS256'] as const, 'ES256'),
      timeoutMs: int('MS_BFF_IDP_TIMEOUT_MS', 10_000, 100, 120_000),
      discoveryRefreshSec: int('MS_BFF_DISCOVERY_REFRESH', 3600, 10, 7 * 86400),
      allowInsecureIssuer: issuer.protocol === 'http:' && (!production || allowHttpHosts.includes(host0)),
    },
    signingKey,
    jar: {
      enabled: jarEnabled,
      signingAlg: jarSigningAlg,
      algsAllowed: jarAllowed,
      encryption: jarEncryption,
    },
    jarm: {
      enabled: jarmEnabled,
      mode: jarmMode,
      algsAllowed: ['PS256', 'ES256'],
      encryption: jarmEncryption,
    },
    session: {
      keys: sessionKeys,
      cookieName,
      sameSite: oneOf('MS_BFF_COOKIE_SAMESITE', ['lax', 'strict'] as const, 'lax'),
      idleTimeoutSec,
      absoluteTimeoutSec,
      loginTimeoutSec: int('MS_BFF_LOGIN_TIMEOUT', 600, 30, 3600),
      refreshSkewSec: int('MS_BFF_REFRESH_SKEW', 60, 0, 3600),
      memoryMaxSessions: int('MS_BFF_MEMORY_MAX_SESSIONS', 100_000, 10, 10_000_000),
    },
    csrf: { enabled: csrfEnabled, headerName: csrfHeader.toLowerCase() },
    redisUrl,
    redisKeyPrefix: get('MS_BFF_REDIS_KEY_PREFIX') ?? 'bff:',
    tls: { cert: mtlsCert, key: mtlsKey, ca: tlsCa },
    dpopNonceSecret,
    routes,
    upstreamTimeoutMs,
    postLogoutRedirect,
    fipsMode,
    logLevel,
    observability,
    warnings,
  };
  // A late int() problem (after the check above) would otherwise be lost.
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** Same-origin relative path: one leading slash, no scheme, no `//` or `/\` (open-redirect tricks). */
export function isSafeRelativePath(value: string): boolean {
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters (header injection) is the point
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return false;
  try {
    const base = new URL('https://bff.invalid');
    return new URL(value, base).origin === base.origin;
  } catch {
    return false;
  }
}

/** PEM material from a path or inline; checked for the expected block so a swapped cert/key is caught here. */
function readPem(
  name: string,
  get: (n: string) => string | undefined,
  problem: (v: string, m: string) => void,
  block: 'CERTIFICATE' | 'PRIVATE KEY',
): string | undefined {
  const text = readKeyMaterial(name, get, problem);
  if (text === undefined) return undefined;
  const ok =
    block === 'PRIVATE KEY'
      ? /-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(text)
      : text.includes('-----BEGIN CERTIFICATE-----');
  if (!ok) {
    problem(name, `must be PEM with a ${block} block`);
    return undefined;
  }
  return text;
}

function readKeyMaterial(
  name: string,
  get: (n: string) => string | undefined,
  problem: (v: string, m: string) => void,
): string | undefined {
  const direct = get(name);
  const file = get(`${name}_FILE`);
  const source = direct ?? file;
  if (source === undefined) return undefined;
  const variable = direct !== undefined ? name : `${name}_FILE`;
  // Inline material is accepted so secrets managers that inject values (not files) work too.
  if (source.startsWith('{') || source.includes('-----BEGIN')) return source;
  try {
    return readFileSync(source, 'utf8');
  } catch (err) {
    problem(variable, `cannot read key file ${source} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

function parseRoutes(
  raw: string | undefined,
  fromFile: unknown,
  defaultTimeoutMs: number,
  problem: (v: string, m: string) => void,
  url: (name: string, value: string | undefined, o: { required: boolean }) => URL | undefined,
): ReadonlyMap<string, RouteConfig> {
  const routes = new Map<string, RouteConfig>();
  let table: unknown = fromFile ?? {};
  if (raw !== undefined) {
    try {
      table = JSON.parse(raw);
    } catch {
      problem('MS_BFF_ROUTES', 'is not valid JSON');
      return routes;
    }
  }
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    problem('MS_BFF_ROUTES', 'must be a JSON object of name → URL or { url, token, timeoutMs }');
    return routes;
  }
  for (const [name, value] of Object.entries(table)) {
    const where = `MS_BFF_ROUTES.${name}`;
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(name)) {
      problem(where, 'route names are letters, digits, - and _ (they become /api/<name>/)');
      continue;
    }
    const spec = typeof value === 'string' ? { url: value } : value;
    if (typeof spec !== 'object' || spec === null) {
      problem(where, 'must be a URL string or an object with url');
      continue;
    }
    const s = spec as {
      url?: unknown;
      token?: unknown;
      timeoutMs?: unknown;
      serviceAudience?: unknown;
      mtls?: unknown;
      serviceTokens?: unknown;
    };
    if (s.mtls !== undefined && typeof s.mtls !== 'boolean') problem(where, 'mtls must be true or false');
    if (s.serviceTokens !== undefined && s.serviceTokens !== 'jwt' && s.serviceTokens !== 'introspection') {
      problem(where, 'serviceTokens must be "jwt" or "introspection"');
    }
    const target = url(where, typeof s.url === 'string' ? s.url : undefined, { required: true });
    const token = s.token ?? 'user';
    if (token !== 'user' && token !== 'none') problem(where, 'token must be "user" or "none"');
    const timeoutMs = s.timeoutMs ?? defaultTimeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 100) {
      problem(where, 'timeoutMs must be an integer ≥ 100');
    }
    const serviceAudience = s.serviceAudience;
    if (
      serviceAudience !== undefined &&
      (typeof serviceAudience !== 'string' || serviceAudience.length === 0)
    ) {
      problem(
        where,
        "serviceAudience must be a non-empty string (the audience of service callers' access tokens)",
      );
    }
    if (target && (target.search || target.hash))
      problem(where, 'the upstream URL must not have a query or fragment');
    if (target) {
      routes.set(name, {
        name,
        url: target,
        token: token === 'none' ? 'none' : 'user',
        timeoutMs: typeof timeoutMs === 'number' ? timeoutMs : defaultTimeoutMs,
        serviceAudience: typeof serviceAudience === 'string' && serviceAudience ? serviceAudience : undefined,
        mtls: s.mtls === true,
        serviceTokens: s.serviceTokens === 'introspection' ? 'introspection' : 'jwt',
      });
    }
  }
  return routes;
}

/** MS_BFF_CONFIG: a JSON or YAML file whose keys are variable names, plus `routes`. Env wins. */
function mergeConfigFile(
  env: Env,
  problem: (v: string, m: string) => void,
): { env: Env; fileRoutes: unknown } {
  const path = env.MS_BFF_CONFIG?.trim();
  if (!path) return { env, fileRoutes: undefined };
  let doc: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    doc = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    problem('MS_BFF_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
    return { env, fileRoutes: undefined };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    problem('MS_BFF_CONFIG', 'must hold an object of variable names (and routes)');
    return { env, fileRoutes: undefined };
  }
  const merged: Record<string, string | undefined> = {};
  let fileRoutes: unknown;
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'routes') {
      fileRoutes = value;
      continue;
    }
    if (!VARIABLE_NAMES.has(key) && !VARIABLE_NAMES.has(key.replace(/_FILE$/, ''))) {
      problem(`MS_BFF_CONFIG.${key}`, 'is not a known variable');
      continue;
    }
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      merged[key] = String(value);
    } else {
      problem(`MS_BFF_CONFIG.${key}`, 'must be a string, number or boolean');
    }
  }
  return { env: { ...merged, ...env }, fileRoutes };
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
