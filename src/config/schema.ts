/**
 * Every configuration variable the BFF reads: the single source of truth for parsing, for
 * docs/configuration.md and for the README's reference table. Names from the seeds keep their
 * spelling exactly (CONTRACT.md). Secrets have no defaults and accept a `*_FILE` variant.
 */
export interface VariableSpec {
  readonly name: string;
  readonly description: string;
  readonly default?: string;
  /** A secret: never logged; also read from `<name>_FILE`. */
  readonly secret?: boolean;
  /** Accepted values, for enumerations. */
  readonly values?: readonly string[];
  /** Reserved for a later release: parsed and validated, but enabling it is refused for now. */
  readonly planned?: string;
}

export const VARIABLES = [
  {
    name: 'OIDC_ISSUER',
    description:
      'IdP issuer identifier (never a well-known URL). Absent: development mode with an embedded IdP, demo API and demo SPA.',
  },
  { name: 'OIDC_CLIENT_ID', description: 'OAuth client identifier registered at the IdP.' },
  {
    name: 'OIDC_CLIENT_SECRET',
    description: 'Client secret, only for client_secret_basic / client_secret_post.',
    secret: true,
  },
  {
    name: 'OIDC_SCOPES',
    description: 'Requested scopes, space separated.',
    default: 'openid profile email offline_access',
  },
  {
    name: 'OIDC_AUTHORIZATION_URL',
    description: 'Override of the discovered authorization endpoint (seed 001). Logged loudly.',
  },
  {
    name: 'OIDC_TOKEN_URL',
    description: 'Override of the discovered token endpoint (seed 001). Logged loudly.',
  },
  {
    name: 'MS_BFF_PUBLIC_URL',
    description:
      'The origin the browser sees, e.g. https://app.example.com; the redirect URI is <this>/auth/callback. Required in production.',
  },
  { name: 'HOST', description: 'Listen address.', default: '127.0.0.1 (development), 0.0.0.0 (production)' },
  { name: 'PORT', description: 'Listen port.', default: '8080' },
  {
    name: 'MS_BFF_PROFILE',
    description: 'production refuses unsafe settings; development allows them with warnings.',
    values: ['production', 'development'],
    default: 'production when OIDC_ISSUER is set, otherwise development',
  },
  {
    name: 'MS_BFF_ALLOW_HTTP_HOSTS',
    description:
      'Comma-separated hosts where plain-HTTP IdP/upstream URLs are allowed even in production (internal container traffic). Logged loudly.',
  },
  {
    name: 'MS_BFF_TOKEN_AUTH_METHOD',
    description: 'Client authentication at PAR, token, refresh and revocation.',
    values: [
      'private_key_jwt',
      'client_secret_basic',
      'client_secret_post',
      'tls_client_auth',
      'self_signed_tls_client_auth',
    ],
    default: 'private_key_jwt',
  },
  {
    name: 'BFF_JWT_SIGNING_KEY',
    description:
      'Path to the client private signing key (PKCS#8 PEM, JWK or JWKS JSON). Also accepted inline. Required for private_key_jwt.',
    secret: true,
  },
  {
    name: 'BFF_JWT_SIGNING_ALG',
    description: 'Alg of the signing key.',
    values: ['PS256', 'ES256'],
    default: 'derived from the key (RSA: PS256, P-256: ES256)',
  },
  {
    name: 'MS_BFF_ID_TOKEN_ALG',
    description: 'The one alg accepted for ID tokens (pinned; RS256 and none are refused under FAPI 2.0).',
    values: ['PS256', 'ES256', 'EdDSA'],
    default: 'PS256',
  },
  {
    name: 'MS_BFF_PAR_ENABLED',
    description: 'Use Pushed Authorization Requests (RFC 9126). FAPI 2.0 requires it.',
    values: ['true', 'false'],
    default: 'true',
  },
  {
    name: 'MS_BFF_DPOP_ENABLED',
    description:
      'Sender-constrain tokens with DPoP (RFC 9449): one key pair per session, proofs at PAR, token, refresh and every proxied call. Exclusive with mTLS-bound tokens.',
    values: ['true', 'false'],
    default: 'false',
  },
  {
    name: 'MS_BFF_DPOP_ALG',
    description: 'Alg of the per-session DPoP keys.',
    values: ['ES256', 'PS256'],
    default: 'ES256',
  },
  {
    name: 'MS_BFF_JAR_ENABLED',
    description:
      'Signed request objects (RFC 9101), pushed via PAR (inline `request=` when PAR is disabled). Needs BFF_JWT_SIGNING_KEY.',
    values: ['true', 'false'],
    default: 'false',
  },
  {
    name: 'MS_BFF_JAR_SIGNING_ALG',
    description:
      'Request object signing alg; must be in MS_BFF_JAR_ALGS_ALLOWED and match BFF_JWT_SIGNING_KEY.',
    values: ['PS256', 'ES256'],
    default: 'the alg of BFF_JWT_SIGNING_KEY',
  },
  {
    name: 'MS_BFF_JAR_ALGS_ALLOWED',
    description:
      'Allowlist for request object algs; `none` and anything but PS256/ES256 are refused at startup.',
    default: 'PS256,ES256',
  },
  {
    name: 'MS_BFF_JAR_ENC_ALG',
    description:
      'Encrypt request objects (nested JWT: sign, then encrypt) with this alg; needs BFF_JAR_ENC_KEY.',
    values: ['RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A256KW'],
  },
  {
    name: 'MS_BFF_JAR_ENC_METHOD',
    description: 'Content encryption of request objects.',
    values: ['A256GCM', 'A256CBC-HS512'],
    default: 'A256GCM',
  },
  {
    name: 'BFF_JAR_ENC_KEY',
    description:
      "Path to (or inline) the IdP's public encryption key for request objects: SPKI PEM, JWK or JWKS (the first use=enc key fitting the alg).",
  },
  {
    name: 'MS_BFF_JARM_ENABLED',
    description: 'JWT-secured authorization responses (JARM), verified per seed 002 Appendix A.',
    values: ['true', 'false'],
    default: 'false',
  },
  {
    name: 'MS_BFF_JARM_MODE',
    description:
      'JARM response mode; fragment.jwt goes through a relay page that posts the fragment to the callback.',
    values: ['jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt'],
    default: 'jwt',
  },
  {
    name: 'MS_BFF_JARM_ENC_ALG',
    description:
      'Require encrypted JARM responses with this alg (a plain JWS is then refused); needs BFF_JARM_PRIV_KEY.',
    values: ['RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A256KW'],
  },
  {
    name: 'MS_BFF_JARM_ENC_ENC',
    description: 'Content encryption of JARM responses.',
    values: ['A256GCM', 'A256CBC-HS512'],
    default: 'A256GCM',
  },
  {
    name: 'BFF_JARM_PRIV_KEY',
    description:
      'Path to (or inline) the private key (PKCS#8 PEM or JWK) that decrypts JARM responses; its public part is published in /.well-known/jwks.json with use enc.',
    secret: true,
  },
  {
    name: 'MTLS_CERT',
    description:
      'Client certificate (PEM, path or inline) presented to the IdP (RFC 8705: tls_client_auth, self_signed_tls_client_auth, certificate-bound tokens) through its mtls_endpoint_aliases, and to upstream routes with "mtls": true.',
  },
  { name: 'MTLS_KEY', description: 'Private key (PEM, path or inline) of MTLS_CERT.', secret: true },
  {
    name: 'MS_BFF_TLS_CA',
    description:
      'Extra CA certificates (PEM, path or inline) trusted for the IdP and upstreams, for private PKIs.',
  },
  {
    name: 'FIPS_MODE',
    description: 'Require Node.js crypto to run with a FIPS 140-3 provider; refuse to start otherwise.',
    values: ['true', 'false'],
    default: 'false',
  },
  {
    name: 'REDIS_URL',
    description:
      'redis:// or rediss:// URL of the session store; absent: in-memory store (one instance only).',
    secret: true,
  },
  {
    name: 'MS_BFF_DPOP_NONCE_SECRET',
    description:
      'base64url secret (≥ 32 bytes) for server DPoP nonces demanded from service callers (RFC 9449 §9); the same on every instance. Absent: no nonce challenge.',
    secret: true,
  },
  {
    name: 'MS_BFF_REDIS_KEY_PREFIX',
    description: 'Prefix of every Redis key, so several deployments can share one Redis.',
    default: 'bff:',
  },
  {
    name: 'MS_BFF_ROUTES',
    description:
      'JSON object of API routes: {"echo":"http://127.0.0.1:4020"} or {"echo":{"url":"…","token":"user|none","timeoutMs":30000,"serviceAudience":"…","serviceTokens":"jwt|introspection","mtls":false}}. With serviceAudience, service callers may present their own DPoP-bound access token for that audience instead of a session cookie, checked as a JWT against the IdP JWKS or by RFC 7662 introspection; mtls sends certificate-bound tokens over mTLS.',
  },
  {
    name: 'MS_BFF_SESSION_KEYS',
    description:
      'Comma-separated base64url 32-byte keys for session encryption and cookie MACs; the first is active, all are accepted. Required in production.',
    secret: true,
  },
  {
    name: 'MS_BFF_CONFIG',
    description:
      'Path to a JSON or YAML file holding any of these variables as keys plus `routes`; the environment wins.',
  },
  {
    name: 'MS_BFF_COOKIE_NAME',
    description: 'Session cookie name (must start with __Host-).',
    default: '__Host-bff-session',
  },
  {
    name: 'MS_BFF_COOKIE_SAMESITE',
    description: 'SameSite attribute of the session cookie.',
    values: ['lax', 'strict'],
    default: 'lax',
  },
  {
    name: 'MS_BFF_CSRF_ENABLED',
    description: 'Require the CSRF header and same-origin checks. Refused false in production.',
    values: ['true', 'false'],
    default: 'true',
  },
  {
    name: 'MS_BFF_CSRF_HEADER',
    description: 'Name of the CSRF header; its value must be 1.',
    default: 'X-CSRF',
  },
  {
    name: 'MS_BFF_SESSION_IDLE_TIMEOUT',
    description: 'Seconds of inactivity after which a session ends.',
    default: '1800',
  },
  {
    name: 'MS_BFF_SESSION_ABSOLUTE_TIMEOUT',
    description: 'Seconds after login after which a session ends regardless of activity.',
    default: '28800',
  },
  { name: 'MS_BFF_MEMORY_MAX_SESSIONS', description: 'Bound of the in-memory store.', default: '100000' },
  {
    name: 'MS_BFF_LOGIN_TIMEOUT',
    description: 'Seconds a login transaction (state, nonce, PKCE verifier) stays valid.',
    default: '600',
  },
  {
    name: 'MS_BFF_REFRESH_SKEW',
    description: 'Refresh the access token this many seconds before it expires.',
    default: '60',
  },
  {
    name: 'MS_BFF_UPSTREAM_TIMEOUT_MS',
    description: 'Default upstream timeout (headers and body idle) in milliseconds.',
    default: '30000',
  },
  {
    name: 'MS_BFF_IDP_TIMEOUT_MS',
    description: 'Timeout of every call to the IdP in milliseconds.',
    default: '10000',
  },
  {
    name: 'MS_BFF_DISCOVERY_REFRESH',
    description: 'Seconds between background refreshes of the IdP metadata.',
    default: '3600',
  },
  {
    name: 'MS_BFF_POST_LOGOUT_REDIRECT',
    description: 'Same-origin path the IdP sends the browser back to after logout.',
    default: '/',
  },
  {
    name: 'LOG_LEVEL',
    description: 'pino log level.',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
  },
  {
    name: 'MS_BFF_ADMIN_HOST',
    description: 'Listen address of the admin listener (/metrics and the detailed /readyz).',
    default: '127.0.0.1',
  },
  {
    name: 'MS_BFF_ADMIN_PORT',
    description:
      'Port of the admin listener. Set: /metrics is served there only (404 on the public port) and the public /readyz is a summary. 0 picks a free port.',
  },
  {
    name: 'MS_BFF_ACCESS_LOG',
    description: 'One log line per request: method, path (never the query), route, status, duration.',
    values: ['true', 'false'],
    default: 'true in development, false in production',
  },
  {
    name: 'MS_BFF_LOG_FORMAT',
    description: 'json: pino JSON lines; pretty: readable one-line logs for development.',
    values: ['json', 'pretty'],
    default: 'pretty in development, json in production',
  },
  {
    name: 'MS_BFF_AUDIT_SUB',
    description:
      'How audit events show the user: plain (the sub claim) or hash (HMAC-SHA-256 keyed by the first session key: stable, not reversible).',
    values: ['plain', 'hash'],
    default: 'plain',
  },
  {
    name: 'MS_BFF_LOGIN_RATE_LIMIT',
    description:
      'GET /auth/login requests per minute per client address (0: no limit). Excess: 429 with Retry-After.',
    default: '60',
  },
  {
    name: 'MS_BFF_CALLBACK_RATE_LIMIT',
    description: '/auth/callback requests per minute per client address (0: no limit).',
    default: '60',
  },
  {
    name: 'MS_BFF_BACKCHANNEL_RATE_LIMIT',
    description: 'POST /auth/backchannel-logout requests per minute per client address (0: no limit).',
    default: '600',
  },
  {
    name: 'MS_BFF_PAR_BUDGET',
    description:
      'Logins that may send a PAR request per minute, across every instance sharing REDIS_URL (0: no budget). Excess: 429 before any IdP call.',
    default: '1200',
  },
  {
    name: 'MS_BFF_LOGIN_TRANSACTIONS_PER_BROWSER',
    description: 'Open login transactions one browser may hold (tabs logging in at once). Excess: 429.',
    default: '10',
  },
] as const satisfies readonly VariableSpec[];

export type VariableName = (typeof VARIABLES)[number]['name'];

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLES.map((v) => v.name));
