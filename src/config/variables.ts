/**
 * Every configuration variable the BFF reads, declared once: name, kind (type, allowed values,
 * range), default, secret-ness and documentation. Parsing (read.ts), docs/configuration.md and the
 * README's configuration table (`npm run docs`, drift-tested) all come from this object.
 *
 * Adding a variable is a change in this file only, plus wherever its value is used:
 *   1. Add an entry below with a builder from kinds.ts, e.g.
 *        MS_BFF_ADMIN_PORT: int({ doc: 'Port of the admin listener…', min: 1, max: 65535 }),
 *      (a default makes the value non-optional; `secret: true` also accepts `<NAME>_FILE`;
 *      `frontend: true` if each frontend of the config file may set it).
 *   2. Read it from `values.MS_BFF_ADMIN_PORT` where the config tree is built: in load.ts, or in the
 *      rule module of its concern (rules/*.ts) when it interacts with other settings; add the field
 *      to types.ts.
 *   3. `npm run docs` regenerates docs/configuration.md and the README table.
 * Enumerations come from enums.ts (one list per concept); names already in use keep their spelling.
 */
import {
  AUDIT_SUB_FORMATS,
  CLIENT_ASSERTION_AUDS,
  FAPI_ALGS,
  IDP_PRESETS,
  JARM_MODES,
  JWE_ALGS,
  JWE_ENCS,
  LOG_FORMATS,
  LOG_LEVELS,
  LOGIN_PARAMETERS,
  PROFILES,
  RESPONSE_MODES,
  SAME_SITE_VALUES,
  SIGNING_ALGS,
  TOKEN_AUTH_METHODS,
} from './enums.js';
import { bool, bytes, int, key, list, oneOf, text, url, type Variable } from './kinds.js';
import { parseTrustedProxies } from './trusted-proxies.js';

export const VARIABLES = {
  OIDC_ISSUER: url({
    doc: 'IdP issuer identifier (never a well-known URL). Absent: development mode with an embedded IdP, demo API and demo SPA.',
  }),
  OIDC_CLIENT_ID: text({ doc: 'OAuth client identifier registered at the IdP.', frontend: true }),
  OIDC_CLIENT_REGISTRATION_FILE: text({
    doc: 'Path to the file `fapi-bff register` wrote (RFC 7591): client_id, client_secret if any, registration access token and URI. Takes the place of OIDC_CLIENT_ID (and OIDC_CLIENT_SECRET).',
    frontend: true,
  }),
  OIDC_CLIENT_SECRET: text({
    doc: 'Client secret, only for client_secret_basic / client_secret_post.',
    secret: true,
    frontend: true,
  }),
  OIDC_SCOPES: text({
    doc: 'Requested scopes, space separated.',
    default: 'openid profile email offline_access',
    frontend: true,
  }),
  OIDC_AUTHORIZATION_URL: url({
    doc: 'Override of the discovered authorization endpoint. Logged loudly.',
  }),
  OIDC_TOKEN_URL: url({ doc: 'Override of the discovered token endpoint. Logged loudly.' }),
  MS_BFF_PUBLIC_URL: url({
    doc: 'The origin the browser sees, e.g. https://app.example.com; the redirect URI is <this>/auth/callback. Required in production.',
    defaultDoc: 'http://localhost:<PORT> (development only)',
    frontend: true,
  }),
  HOST: text({ doc: 'Listen address.', defaultDoc: '127.0.0.1 (development), 0.0.0.0 (production)' }),
  PORT: int({ doc: 'Listen port.', default: 8080, min: 0, max: 65535 }),
  MS_BFF_PROFILE: oneOf(PROFILES, {
    doc: 'production refuses unsafe settings; development allows them with warnings. The development setup (no OIDC_ISSUER) sets development.',
    default: 'production',
  }),
  MS_BFF_ALLOW_HTTP_HOSTS: list({
    doc: 'Comma-separated hosts where plain-HTTP IdP/upstream URLs are allowed even in production (internal container traffic). Logged loudly.',
    default: [],
    lowercase: true,
  }),
  MS_BFF_TRUSTED_PROXIES: {
    ...list({
      doc: "Comma-separated addresses, CIDRs or loopback/linklocal/uniquelocal of the load balancers in front of the BFF. Only these may state the client address (X-Forwarded-For); from anyone else it is the socket's peer. Upstreams receive X-Forwarded-For/-Host/-Proto and Forwarded set by the BFF, never the client's.",
      default: [],
    }),
    parse: (raw: string, fail: (message: string) => void) => {
      const parsed = parseTrustedProxies(raw);
      if ('problem' in parsed) fail(parsed.problem);
      return 'proxies' in parsed ? parsed.proxies : undefined;
    },
  },
  MS_BFF_TOKEN_AUTH_METHOD: oneOf(TOKEN_AUTH_METHODS, {
    doc: 'Client authentication at PAR, token, refresh and revocation.',
    default: 'private_key_jwt',
    frontend: true,
  }),
  BFF_JWT_SIGNING_KEY: key({
    doc: 'Path to the client private signing key (PKCS#8 PEM, JWK or JWKS JSON) or to a directory of JWK files (`fapi-bff keys generate`; rotated with `fapi-bff keys rotate`, re-read on change or SIGHUP). Also accepted inline. Required for private_key_jwt.',
    secret: true,
    frontend: true,
  }),
  BFF_JWT_SIGNING_ALG: oneOf(SIGNING_ALGS, {
    doc: 'Alg of the signing key.',
    defaultDoc: 'derived from the key (RSA: PS256, P-256: ES256, Ed25519: EdDSA)',
    frontend: true,
  }),
  MS_BFF_ID_TOKEN_ALG: oneOf(FAPI_ALGS, {
    doc: 'The one alg accepted for ID tokens (pinned; RS256 and none are refused under FAPI 2.0).',
    default: 'PS256',
    frontend: true,
  }),
  MS_BFF_PAR_ENABLED: bool({
    doc: 'Use Pushed Authorization Requests (RFC 9126). FAPI 2.0 requires it: false is refused in production.',
    default: true,
    frontend: true,
  }),
  MS_BFF_DPOP_ENABLED: bool({
    doc: 'Sender-constrain tokens with DPoP (RFC 9449): one key pair per session, proofs at PAR, token, refresh and every proxied call. Exclusive with mTLS-bound tokens.',
    default: false,
    frontend: true,
  }),
  MS_BFF_DPOP_ALG: oneOf(['ES256', 'PS256', 'EdDSA'] as const, {
    doc: 'Alg of the per-session DPoP keys.',
    default: 'ES256',
    frontend: true,
  }),
  MS_BFF_JAR_ENABLED: bool({
    doc: 'Signed request objects (RFC 9101), pushed via PAR (inline `request=` when PAR is disabled). Needs BFF_JWT_SIGNING_KEY.',
    default: false,
    frontend: true,
  }),
  MS_BFF_JAR_SIGNING_ALG: oneOf(SIGNING_ALGS, {
    doc: 'Request object signing alg; must be in MS_BFF_JAR_ALGS_ALLOWED and match BFF_JWT_SIGNING_KEY.',
    defaultDoc: 'the alg of BFF_JWT_SIGNING_KEY',
    frontend: true,
  }),
  MS_BFF_JAR_ALGS_ALLOWED: list({
    doc: 'Allowlist for request object algs; `none` and anything but PS256/ES256/EdDSA are refused at startup.',
    default: SIGNING_ALGS,
    values: SIGNING_ALGS,
    frontend: true,
  }),
  MS_BFF_JAR_ENC_ALG: oneOf(JWE_ALGS, {
    doc: "Encrypt request objects (nested JWT: sign, then encrypt) with this alg, to the IdP's current use=enc key from its JWKS (or the BFF_JAR_ENC_KEY pin).",
    frontend: true,
  }),
  MS_BFF_JAR_ENC_METHOD: oneOf(JWE_ENCS, {
    doc: 'Content encryption of request objects.',
    default: 'A256GCM',
    frontend: true,
  }),
  BFF_JAR_ENC_KEY: key({
    doc: "Optional pin: path to (or inline) the IdP's public encryption key for request objects: SPKI PEM, JWK or JWKS (the first use=enc key fitting the alg). Unset, the IdP's current key comes from its JWKS.",
    frontend: true,
  }),
  MS_BFF_LOGIN_PARAMS_ALLOWED: list({
    doc: 'Authorization request parameters the SPA may pass to /auth/login (OIDC Core §3.1.2.1): acr_values and max_age for step-up (RFC 9470), prompt (none, login, consent, select_account) for silent checks and re-authentication. The callback then checks acr and auth_time in the ID token. Empty: none.',
    default: [...LOGIN_PARAMETERS],
    values: LOGIN_PARAMETERS,
    frontend: true,
  }),
  MS_BFF_RESPONSE_MODE: oneOf(RESPONSE_MODES, {
    doc: 'Response mode of plain (non-JARM) authorization responses. Cross-site form posts come back through a same-site relay page (README, "Cross-site logins"). With JARM, use MS_BFF_JARM_MODE.',
    default: 'query',
    frontend: true,
  }),
  MS_BFF_JARM_ENABLED: bool({
    doc: 'JWT-secured authorization responses (JARM); with JARM on, a plain response is refused.',
    default: false,
    frontend: true,
  }),
  MS_BFF_JARM_MODE: oneOf(JARM_MODES, {
    doc: 'JARM response mode; fragment.jwt goes through a relay page that posts the fragment to the callback.',
    default: 'jwt',
    frontend: true,
  }),
  MS_BFF_JARM_ENC_ALG: oneOf(JWE_ALGS, {
    doc: 'Require encrypted JARM responses with this alg (a plain JWS is then refused); needs BFF_JARM_PRIV_KEY.',
    frontend: true,
  }),
  MS_BFF_JARM_ENC_ENC: oneOf(JWE_ENCS, {
    doc: 'Content encryption of JARM responses.',
    default: 'A256GCM',
    frontend: true,
  }),
  BFF_JARM_PRIV_KEY: key({
    doc: 'Path to (or inline) the private key (PKCS#8 PEM or JWK) that decrypts JARM responses; its public part is published in /.well-known/jwks.json with use enc.',
    secret: true,
    frontend: true,
  }),
  MTLS_CERT: key({
    doc: 'Client certificate (PEM, path or inline) presented to the IdP (RFC 8705: tls_client_auth, self_signed_tls_client_auth, certificate-bound tokens) through its mtls_endpoint_aliases, and to upstream routes with "mtls": true.',
    pem: 'CERTIFICATE',
  }),
  MTLS_KEY: key({ doc: 'Private key (PEM, path or inline) of MTLS_CERT.', secret: true, pem: 'PRIVATE KEY' }),
  MS_BFF_TLS_CA: key({
    doc: 'Extra CA certificates (PEM, path or inline) trusted for the IdP and upstreams, for private PKIs.',
    pem: 'CERTIFICATE',
  }),
  FIPS_MODE: bool({
    doc: 'Require Node.js crypto to run with a FIPS 140-3 provider and pass the FIPS self-test (approved primitives work; MD5, ChaCha20-Poly1305, X25519, Ed25519 refused); approved algorithms and TLS suites only. README "FIPS mode".',
    default: false,
  }),
  REDIS_URL: url({
    doc: 'redis:// or rediss:// URL of the session store; absent: in-memory store (one instance only).',
    schemes: ['redis:', 'rediss:'],
    secret: true,
  }),
  MS_BFF_DPOP_NONCE_SECRET: bytes({
    doc: 'base64url secret (≥ 32 bytes) for server DPoP nonces demanded from service callers (RFC 9449 §9); the same on every instance. Absent: no nonce challenge.',
    minBytes: 32,
    secret: true,
  }),
  REDIS_SENTINELS: list({
    doc: 'Redis Sentinel addresses, host:port comma-separated (instead of REDIS_URL); the client asks them for the current master and follows failovers.',
    default: [],
  }),
  REDIS_SENTINEL_MASTER: text({
    doc: 'Name of the master the sentinels monitor (required with REDIS_SENTINELS).',
  }),
  REDIS_SENTINEL_USERNAME: text({ doc: 'ACL user for the sentinels, when they require one.' }),
  REDIS_SENTINEL_PASSWORD: text({ doc: 'Password for the sentinels.', secret: true }),
  REDIS_CLUSTER_NODES: list({
    doc: 'Redis Cluster seed nodes, host:port comma-separated (instead of REDIS_URL); the client learns the slot map and follows MOVED and failovers.',
    default: [],
  }),
  REDIS_USERNAME: text({ doc: 'ACL user for the Redis data nodes (overrides one in REDIS_URL).' }),
  REDIS_PASSWORD: text({
    doc: 'Password for the Redis data nodes (overrides one in REDIS_URL).',
    secret: true,
  }),
  MS_BFF_REDIS_TLS: bool({
    doc: 'TLS to Sentinel or Cluster nodes (a standalone Redis uses rediss://). Implied by any MS_BFF_REDIS_TLS_* setting.',
    default: false,
  }),
  MS_BFF_REDIS_TLS_CA: key({
    doc: 'CA certificates (PEM, path or inline) trusted for Redis, for private PKIs.',
    pem: 'CERTIFICATE',
  }),
  MS_BFF_REDIS_TLS_CERT: key({
    doc: 'Client certificate (PEM, path or inline) presented to Redis (`tls-auth-clients yes`).',
    pem: 'CERTIFICATE',
  }),
  MS_BFF_REDIS_TLS_KEY: key({
    doc: 'Private key (PEM, path or inline) of MS_BFF_REDIS_TLS_CERT.',
    secret: true,
    pem: 'PRIVATE KEY',
  }),
  MS_BFF_REDIS_TLS_SERVERNAME: text({
    doc: 'Name the Redis server certificate must carry (and SNI), when it differs from the host connected to.',
  }),
  MS_BFF_REDIS_DURABLE_REPLICAS: int({
    doc: 'Replicas that must acknowledge a session write at login and refresh (Redis WAIT, bounded by 500 ms; a shortfall is logged, never a failed login). 0: asynchronous replication only.',
    defaultDoc: '1 with REDIS_SENTINELS or REDIS_CLUSTER_NODES, 0 with REDIS_URL',
    min: 0,
    max: 16,
  }),
  MS_BFF_WORKERS: text({
    doc: 'Worker processes sharing the port (node:cluster): a number, or `auto` for one per CPU. More than 1 needs a Redis store; /metrics sums every worker.',
    default: '1',
    pattern: { re: /^(auto|[1-9][0-9]{0,2})$/, message: 'must be a number from 1 to 999, or auto' },
  }),
  MS_BFF_REDIS_KEY_PREFIX: text({
    doc: 'Prefix of every Redis key, so several deployments can share one Redis.',
    default: 'bff:',
  }),
  MS_BFF_ROUTES: text({
    doc: 'JSON object of API routes: {"echo":"http://127.0.0.1:4020"} or {"echo":{"url":"…","token":"user|client|user-or-client|user-or-none|none","resource":"https://api.example/","clientScope":"…","timeoutMs":30000,"serviceAudience":"…","serviceTokens":"jwt|introspection","mtls":false,"websocket":false,"closeOnTokenExpiry":false,"cache":"no-store|private","responseHeaders":["X-Total-Count"]}}. cache: how responses made with a credential may be cached (no-store: Cache-Control private, no-store; private: the upstream freshness directives made private, with Vary: Cookie); responseHeaders: upstream response headers passed beyond the default allowlist (never Set-Cookie, Clear-Site-Data, Refresh, Access-Control-*, HSTS, Alt-Svc, WWW-Authenticate). token: the user’s access token (session required), the BFF’s own client-credentials token, the user’s else the client’s, the user’s else none, or none; resource: an RFC 8707 resource indicator, each resource gets its own token; clientScope: the scope of client tokens. With serviceAudience, service callers may present their own DPoP-bound access token for that audience instead of a session cookie, checked as a JWT against the IdP JWKS or by RFC 7662 introspection; mtls sends certificate-bound tokens over mTLS; websocket also proxies WebSocket upgrades (session cookie plus Origin check), closed when the session ends and, with closeOnTokenExpiry, when the token expires.',
    frontend: true,
  }),
  // Serving the SPA (rules/spa.ts, src/spa/): from a directory or from a frontend origin.
  MS_BFF_STATIC_DIR: text({
    doc: 'Directory of the built SPA, served on every path the BFF does not own (@fastify/static): hashed asset names (a dot- or dash-separated hex hash of 8 or more digits, e.g. app.3f2a9c1d.js) are cached for a year as immutable, other files revalidate (ETag), index.html is never stored and answers browser navigations to client-side routes (GET/HEAD accepting text/html, no file extension). A missing file is 404; dotfiles, `..` and symlinks leading out of the directory are refused. Must exist and hold index.html. Exclusive with MS_BFF_FRONTEND_URL.',
    defaultDoc: 'none; the development setup serves demo/spa',
    frontend: true,
    frontendKey: 'static',
  }),
  MS_BFF_FRONTEND_URL: url({
    doc: 'Origin (and base path) the SPA is fetched from and streamed through the BFF instead of MS_BFF_STATIC_DIR: a CDN or a development server such as Vite. GET and HEAD only; no cookie or credential is sent to it and none of its cookies reach the browser; navigations to client-side routes get its index.html (never stored). https in production, except on loopback or a host in MS_BFF_ALLOW_HTTP_HOSTS.',
    frontend: true,
  }),
  MS_BFF_SPA_CSP: text({
    doc: "Content-Security-Policy of every SPA response (files and index.html). The default allows scripts, styles, fonts, images and fetches from the BFF's own origin only, nothing inline, no framing.",
    default:
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    frontend: true,
  }),
  MS_BFF_SPA_HEADERS: text({
    doc: 'JSON object of more response headers on every SPA response, e.g. {"Permissions-Policy":"camera=()"}; a value replaces the default of that name and "" removes it. Defaults: X-Content-Type-Options nosniff, Referrer-Policy no-referrer, X-Frame-Options DENY, Cross-Origin-Opener-Policy same-origin, Cross-Origin-Resource-Policy same-origin, and HSTS in production over https. Refused: Set-Cookie, Clear-Site-Data, Refresh, Location, Content-Security-Policy (use MS_BFF_SPA_CSP) and the headers that describe the response itself (Cache-Control, Content-*, ETag, Last-Modified, hop-by-hop).',
    frontend: true,
  }),
  MS_BFF_SESSION_KEYS: text({
    doc: 'Comma-separated base64url 32-byte keys for session encryption and cookie MACs; the first is active, all are accepted. Required in production.',
    secret: true,
  }),
  MS_BFF_CONFIG: text({
    doc: 'Path to a JSON or YAML file holding any of these variables as keys plus `routes` and `frontends` (several frontends: README); the environment wins over its top level. Re-read on SIGHUP and when it changes.',
  }),
  MS_BFF_COOKIE_NAME: text({
    doc: 'Session cookie name (must start with __Host-; under a frontend pathPrefix other than /, with __Secure-).',
    default: '__Host-bff-session',
    frontend: true,
  }),
  MS_BFF_COOKIE_SAMESITE: oneOf(SAME_SITE_VALUES, {
    doc: 'SameSite attribute of the session cookie.',
    default: 'lax',
    frontend: true,
  }),
  MS_BFF_CSRF_ENABLED: bool({
    doc: 'Require the CSRF header and same-origin checks. Refused false in production.',
    default: true,
  }),
  MS_BFF_CSRF_HEADER: text({
    doc: 'Name of the CSRF header; its value must be 1.',
    default: 'X-CSRF',
    pattern: { re: /^[A-Za-z0-9-]+$/, message: 'is not a valid header name' },
  }),
  MS_BFF_SESSION_IDLE_TIMEOUT: int({
    doc: 'Seconds of inactivity after which a session ends.',
    default: 1800,
    min: 60,
    max: 30 * 86400,
    unit: 's',
    frontend: true,
  }),
  MS_BFF_SESSION_ABSOLUTE_TIMEOUT: int({
    doc: 'Seconds after login after which a session ends regardless of activity.',
    default: 28800,
    min: 60,
    max: 90 * 86400,
    unit: 's',
    frontend: true,
  }),
  MS_BFF_MEMORY_MAX_SESSIONS: int({
    doc: 'Bound of each kind of record in the in-memory store: sessions, login transactions, replay caches and refresh locks are bounded separately, so a flood of one never evicts another. Sessions and transactions evict the soonest-expiring entry; replay caches and locks refuse new entries (503) rather than forget live ones.',
    default: 100_000,
    min: 10,
    max: 10_000_000,
  }),
  MS_BFF_LOGIN_TIMEOUT: int({
    doc: 'Seconds a login transaction (state, nonce, PKCE verifier) stays valid.',
    default: 600,
    min: 30,
    max: 3600,
    unit: 's',
  }),
  MS_BFF_REFRESH_SKEW: int({
    doc: 'Refresh the access token this many seconds before it expires.',
    default: 60,
    min: 0,
    max: 3600,
    unit: 's',
  }),
  MS_BFF_WEBSOCKET_RECHECK_SECONDS: int({
    doc: 'How often a proxied WebSocket re-checks that its session still exists in the store: a session ended on another instance closes its sockets within this time (on the same instance, at once).',
    default: 5,
    min: 1,
    max: 3600,
  }),
  MS_BFF_UPSTREAM_TIMEOUT_MS: int({
    doc: 'Default upstream timeout (headers and body idle) in milliseconds.',
    default: 30_000,
    min: 100,
    max: 600_000,
    unit: 'ms',
  }),
  MS_BFF_IDP_TIMEOUT_MS: int({
    doc: 'Timeout of every call to the IdP in milliseconds.',
    default: 10_000,
    min: 100,
    max: 120_000,
    unit: 'ms',
  }),
  MS_BFF_KEY_PREPUBLISH_SECONDS: int({
    doc: 'How long a new key (added to the BFF_JWT_SIGNING_KEY / BFF_JARM_PRIV_KEY file or directory) is published at /.well-known/jwks.json before it signs or is advertised first, counted from when this process first published it. Longer than the JWKS cache of the IdP (our JWKS says max-age below it).',
    default: 3600,
    min: 0,
    max: 30 * 86400,
    unit: 's',
  }),
  MS_BFF_DISCOVERY_REFRESH: int({
    doc: 'Seconds between background refreshes of the IdP metadata.',
    default: 3600,
    min: 10,
    max: 7 * 86400,
    unit: 's',
  }),
  MS_BFF_READY_REQUIRES_IDP: bool({
    doc: 'Whether an IdP that is down (its last call got no answer or a 5xx, or nothing reached it for three metadata refresh intervals) makes GET /readyz answer 503. false: /readyz still reports it, but stays ready so sessions with valid tokens keep working.',
    default: true,
  }),
  MS_BFF_REFRESH_ON_401_MIN_INTERVAL_SECONDS: int({
    doc: 'An upstream 401 with error="invalid_token" refreshes the session\'s tokens and retries once, at most once per this many seconds per session (no refresh storm from a broken upstream).',
    default: 30,
    min: 0,
    max: 86_400,
    unit: 's',
  }),
  MS_BFF_POST_LOGOUT_REDIRECT: text({
    doc: 'Same-origin path the IdP sends the browser back to after logout.',
    default: '/',
    frontend: true,
  }),
  LOG_LEVEL: oneOf(LOG_LEVELS, { doc: 'pino log level.', default: 'info' }),
  // Observability, audit and abuse limits (config/observability.ts, docs/observability.md).
  MS_BFF_LOG_FORMAT: oneOf(LOG_FORMATS, {
    doc: 'json: pino JSON lines; pretty: readable one-line logs for a terminal (the development setup sets it).',
    default: 'json',
  }),
  MS_BFF_ACCESS_LOG: bool({
    doc: 'One log line per request: method, path (never the query), route, status, duration, request and trace id. The development setup sets it.',
    default: false,
  }),
  MS_BFF_AUDIT_SUB: oneOf(AUDIT_SUB_FORMATS, {
    doc: 'How audit events (docs/audit.md) show the user: plain (the sub claim) or hash (HMAC-SHA-256 keyed by the first session key: stable across instances, not reversible).',
    default: 'plain',
  }),
  MS_BFF_ADMIN_HOST: text({
    doc: 'Listen address of the admin listener (/metrics and the detailed /readyz).',
    default: '127.0.0.1',
  }),
  MS_BFF_ADMIN_PORT: int({
    doc: 'Port of the admin listener. Set: /metrics is served there only (404 on the public port) and the public /readyz is a summary. 0 picks a free port.',
    min: 0,
    max: 65535,
  }),
  MS_BFF_LOGIN_RATE_LIMIT: int({
    doc: 'GET /auth/login requests per minute per client address (MS_BFF_TRUSTED_PROXIES decides the address); 0: no limit. Excess: 429 with Retry-After.',
    default: 60,
    min: 0,
    max: 1_000_000,
  }),
  MS_BFF_CALLBACK_RATE_LIMIT: int({
    doc: '/auth/callback requests per minute per client address; 0: no limit.',
    default: 60,
    min: 0,
    max: 1_000_000,
  }),
  MS_BFF_BACKCHANNEL_RATE_LIMIT: int({
    doc: 'POST /auth/backchannel-logout requests per minute per client address; 0: no limit.',
    default: 600,
    min: 0,
    max: 1_000_000,
  }),
  MS_BFF_PAR_BUDGET: int({
    doc: 'Logins that may send a PAR request per minute, shared by every instance on the same Redis; 0: no budget. Excess: 429 before any IdP call.',
    default: 1200,
    min: 0,
    max: 10_000_000,
  }),
  MS_BFF_LOGIN_TRANSACTIONS_PER_BROWSER: int({
    doc: 'Open login transactions one browser may hold (tabs logging in at once). Excess: 429.',
    default: 10,
    min: 1,
    max: 1000,
  }),
  // Interoperability (rules/interop.ts, docs/interop/): each switch tolerates one known IdP deviation.
  MS_BFF_IDP_PRESET: oneOf(IDP_PRESETS, {
    doc: 'Defaults for a known IdP (docs/interop/presets.md): sets only the interop switches below; every variable set explicitly wins, and a weakening switch still needs MS_BFF_ACKNOWLEDGE_WEAKENED in production.',
  }),
  MS_BFF_CLIENT_ASSERTION_AUD: oneOf(CLIENT_ASSERTION_AUDS, {
    doc: 'aud of private_key_jwt client assertions: the issuer (FAPI 2.0 Security Profile §5.3.2.1) or the URL of the endpoint called (RFC 7523 §3 style, for IdPs that accept nothing else). endpoint weakens FAPI 2.0: acknowledge it in production.',
    default: 'issuer',
  }),
  MS_BFF_ASSUME_ISS_PARAMETER: bool({
    doc: 'Start although discovery does not advertise authorization_response_iss_parameter_supported (RFC 9207 §3); iss is still required and compared in every authorization response.',
    default: false,
  }),
  MS_BFF_JARM_MAX_LIFETIME_SECONDS: int({
    doc: 'Longest accepted JARM response lifetime (exp - iat). JARM §2.1 recommends 10 minutes; more weakens the profile: acknowledge it in production.',
    default: 600,
    min: 10,
    max: 86_400,
    unit: 's',
  }),
  MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP: bool({
    doc: 'Require exp in back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.4). false accepts tokens without exp, still bounded by iat age and single use: acknowledge it in production.',
    default: true,
  }),
  MS_BFF_ACKNOWLEDGE_WEAKENED: list({
    doc: 'Names of the interop switches that weaken the profile and are accepted in production, comma-separated, e.g. MS_BFF_CLIENT_ASSERTION_AUD,MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP.',
    default: [],
  }),
} as const satisfies Record<string, Variable<unknown, unknown>>;

export type VariableName = keyof typeof VARIABLES;

/** The parsed value of every variable, defaults applied: what the rules and load.ts read. */
export type Values = {
  readonly [K in VariableName]: (typeof VARIABLES)[K] extends Variable<unknown, infer V> ? V : never;
};

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(Object.keys(VARIABLES));

/**
 * The key a frontend of the config file uses for a variable: without its prefix, in camelCase,
 * unless the declaration names it (`frontendKey`).
 */
export function frontendKey(name: VariableName): string {
  const declared: Variable<unknown, unknown> = VARIABLES[name];
  if (declared.frontendKey !== undefined) return declared.frontendKey;
  return name
    .replace(/^(OIDC_|MS_BFF_|BFF_)/, '')
    .toLowerCase()
    .replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
