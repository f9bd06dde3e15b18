/**
 * Every metric of the BFF, declared once: the registry (metrics.ts) is built from this table and
 * docs/metrics.md is generated from it (`npm run docs`, drift-tested), so a name, a label or a help
 * text cannot differ between the code, the reference, the alerting rules and the dashboard
 * (deploy/, whose metric names a test checks against this table).
 *
 * `seed` names the design document and section that fixed the metric's name: such names are
 * already published (dashboards depend on them) and never change. Our own names carry `bff_`.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDeclaration {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  readonly buckets?: readonly number[];
  /** The flow or event that moves it (docs/metrics.md). */
  readonly movedBy: string;
  /** The seed document and section that named it; absent for our own (`bff_`) metrics. */
  readonly seed?: string;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

export const METRICS = {
  parRequests: {
    name: 'par_requests_total',
    type: 'counter',
    help: 'Pushed Authorization Requests sent to the IdP (RFC 9126), by outcome.',
    labels: ['outcome'],
    movedBy: '`GET /auth/login`: one per PAR request (`success`, `failure`).',
    seed: '001 (PAR request counters)',
  },
  logins: {
    name: 'bff_login_started_total',
    type: 'counter',
    help: 'Logins started (redirects to the IdP), by outcome and frontend.',
    labels: ['outcome', 'frontend'],
    movedBy: '`GET /auth/login`: redirected to the IdP (`success`) or refused (`failure`).',
  },
  loginDuration: {
    name: 'bff_login_duration_seconds',
    type: 'histogram',
    help: 'Time to start a login (transaction + PAR).',
    labels: [],
    buckets: LATENCY_BUCKETS,
    movedBy: '`GET /auth/login` that redirected to the IdP.',
  },
  callbacks: {
    name: 'bff_callbacks_total',
    type: 'counter',
    help: 'Authorization callbacks, by outcome, error code and frontend.',
    labels: ['outcome', 'code', 'frontend'],
    movedBy:
      '`/auth/callback`: `success` with code `none`, or `failure` with the stable error code (docs/errors.md).',
  },
  callbackDuration: {
    name: 'bff_callback_duration_seconds',
    type: 'histogram',
    help: 'Time to process a callback (checks, code exchange, ID token validation, session).',
    labels: [],
    buckets: LATENCY_BUCKETS,
    movedBy: 'Every `/auth/callback`, successful or not.',
  },
  refreshes: {
    name: 'bff_token_refresh_total',
    type: 'counter',
    help: 'Access token refreshes, by outcome (success, failure, invalid_grant, shared).',
    labels: ['outcome'],
    movedBy:
      'A proxied call or `/auth/session` finding the access token near expiry (or an upstream `invalid_token`); `shared` when another request or instance refreshed it.',
  },
  refreshDuration: {
    name: 'bff_token_refresh_duration_seconds',
    type: 'histogram',
    help: 'Time of refresh_token grants.',
    labels: [],
    buckets: LATENCY_BUCKETS,
    movedBy: 'Every refresh_token grant this instance sent.',
  },
  proxyRequests: {
    name: 'bff_proxy_requests_total',
    type: 'counter',
    help: 'Proxied API requests, by route and status class.',
    labels: ['route', 'status_class'],
    movedBy:
      '`/api/<route>/**`: the upstream status, or the BFF error status when the upstream could not be reached (502, 504).',
  },
  proxyDuration: {
    name: 'bff_proxy_duration_seconds',
    type: 'histogram',
    help: 'Time to upstream response headers for proxied API requests.',
    labels: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    movedBy: 'Every proxied API request.',
  },
  sessions: {
    name: 'bff_sessions_total',
    type: 'counter',
    help: 'Session lifecycle events (created, ended, expired), by frontend.',
    labels: ['event', 'frontend'],
    movedBy:
      '`created` by a successful callback; `ended` by logout, back-channel logout or `invalid_grant`; `expired` past the absolute lifetime.',
  },
  errors: {
    name: 'bff_errors_total',
    type: 'counter',
    help: 'Requests refused or failed, by stable error code.',
    labels: ['code'],
    movedBy: 'Every error answer (problem+json or error page), by its code (docs/errors.md).',
  },
  revocations: {
    name: 'bff_token_revocations_total',
    type: 'counter',
    help: 'RFC 7009 revocations at logout, by outcome and frontend.',
    labels: ['outcome', 'frontend'],
    movedBy:
      '`/auth/logout`, and a refresh whose rotated token had no session left to land in (orphan revoked): `success`, `failure`, `skipped` (no revocation endpoint).',
  },
  discoveryRefreshFailures: {
    name: 'bff_discovery_refresh_failures_total',
    type: 'counter',
    help: 'Background IdP metadata refreshes that failed (the last good metadata stays in use).',
    labels: [],
    movedBy: 'The background re-discovery of the IdP metadata failing.',
  },
  jarCreated: {
    name: 'jar_request_objects_created_total',
    type: 'counter',
    help: 'Signed request objects created (RFC 9101), by alg.',
    labels: ['alg'],
    movedBy: '`GET /auth/login` with `MS_BFF_JAR_ENABLED=true`.',
    seed: '002 §1 (JAR)',
  },
  jarPushFailures: {
    name: 'jar_request_push_failures_total',
    type: 'counter',
    help: 'Request objects the IdP refused or that could not be pushed, by reason.',
    labels: ['reason'],
    movedBy: 'A PAR carrying a request object refused by the IdP or not sent.',
    seed: '002 §1 (JAR)',
  },
  jarmVerified: {
    name: 'jarm_responses_verified_total',
    type: 'counter',
    help: 'JARM responses that passed every check, by response mode.',
    labels: ['mode'],
    movedBy: '`/auth/callback` with a JARM response that passed every check.',
    seed: '002 §2 (JARM)',
  },
  jarmDecryptionFailures: {
    name: 'jarm_decryption_failures_total',
    type: 'counter',
    help: 'Encrypted JARM responses that could not be decrypted, by alg.',
    labels: ['alg'],
    movedBy: '`/auth/callback` with an encrypted JARM response that did not decrypt (wrong key, alg, enc).',
    seed: '002 §2 (JARM)',
  },
  jarmValidationFailures: {
    name: 'jarm_validation_failures_total',
    type: 'counter',
    help: 'JARM responses refused, by reason.',
    labels: ['reason'],
    movedBy: '`/auth/callback` with a JARM response refused for any reason (decryption failures included).',
    seed: '002 §2 (JARM)',
  },
  jarmReplays: {
    name: 'jarm_replay_denied_total',
    type: 'counter',
    help: 'JARM responses refused because they were already used.',
    labels: [],
    movedBy:
      '`/auth/callback` with a JARM response seen before (also counted as validation failure `replay`).',
    seed: '002 §2 (JARM)',
  },
  jarmTypInvalid: {
    name: 'jarm_typ_invalid_total',
    type: 'counter',
    help: 'JARM responses refused for their typ header.',
    labels: [],
    movedBy: '`/auth/callback` with a JARM response of the wrong `typ`.',
    seed: '002 §2 (JARM)',
  },
  jarmAudMismatch: {
    name: 'jarm_aud_mismatch_total',
    type: 'counter',
    help: 'JARM responses refused because aud is not our client_id.',
    labels: [],
    movedBy: '`/auth/callback` with a JARM response for another audience.',
    seed: '002 §2 (JARM)',
  },
  jwksRefreshFailures: {
    name: 'jwks_refresh_failures_total',
    type: 'counter',
    help: "Failed refreshes of the IdP's JWKS (stale keys stay in use).",
    labels: [],
    movedBy: 'A fetch of the IdP `jwks_uri` failing (background refresh or unknown `kid`).',
    seed: '002 §7 (observability)',
  },
  jwksAge: {
    name: 'jwks_cache_age_seconds',
    type: 'gauge',
    help: 'Age of the cached IdP JWKS.',
    labels: [],
    movedBy: 'Read at scrape time: seconds since the IdP JWKS was last fetched (-1 before the first fetch).',
    seed: '002 §7 (observability: "gauges for JWKS cache age")',
  },
  configReloads: {
    name: 'bff_config_reloads_total',
    type: 'counter',
    help: 'Configuration reloads (SIGHUP, MS_BFF_CONFIG file change), by outcome: applied, unchanged, invalid, refused, failed.',
    labels: ['outcome'],
    movedBy: '`SIGHUP` or a change of the `MS_BFF_CONFIG` file (audit event `config.reloaded`).',
  },
  backchannelLogouts: {
    name: 'bff_backchannel_logouts_total',
    type: 'counter',
    help: 'Back-channel logout requests (OIDC BCL 1.0), by outcome and frontend.',
    labels: ['outcome', 'frontend'],
    movedBy: '`POST /auth/backchannel-logout`: `success` or `invalid` logout token.',
  },
  upstreamInvalidTokens: {
    name: 'bff_upstream_invalid_token_total',
    type: 'counter',
    help: 'Upstream 401 invalid_token answers to the user token, by what the BFF did (refreshed, shared, rate_limited, no_refresh_token, refresh_failed, body_not_replayable).',
    labels: ['outcome'],
    movedBy: 'A proxied call answered 401 `invalid_token` by the upstream.',
  },
  dpopRetriesSkipped: {
    name: 'bff_dpop_nonce_retries_skipped_total',
    type: 'counter',
    help: 'Upstream use_dpop_nonce challenges not retried because the request body could not be replayed.',
    labels: [],
    movedBy: 'A proxied streaming request answered `use_dpop_nonce` by the upstream.',
  },
  clientTokens: {
    name: 'bff_client_tokens_total',
    type: 'counter',
    help: "The BFF's own client-credentials tokens for client routes (RFC 6749 §4.4): issued, served from cache, or failed.",
    labels: ['outcome'],
    movedBy: 'A call to a route with `token: client` (or `user-or-client` without a session).',
  },
  websockets: {
    name: 'bff_websocket_connections_total',
    type: 'counter',
    help: 'Proxied WebSocket connections (RFC 6455) by route and event: opened, refused at the handshake, closed.',
    labels: ['route', 'event'],
    movedBy: 'A WebSocket upgrade on a `websocket: true` route, and its close.',
  },
  websocketsOpen: {
    name: 'bff_websocket_connections_open',
    type: 'gauge',
    help: 'Proxied WebSocket connections open now, by route.',
    labels: ['route'],
    movedBy: 'WebSocket connections opened minus closed.',
  },
  dpopValidationFailures: {
    name: 'dpop_validation_failures_total',
    type: 'counter',
    help: 'DPoP-bound requests of service callers refused, by reason (RFC 9449 §4.3, §7).',
    labels: ['reason'],
    movedBy:
      'A service caller with a DPoP-bound token refused (proof missing, invalid, replayed, wrong key).',
    seed: '001 (DPoP validation failures)',
  },
  idpRequests: {
    name: 'bff_idp_requests_total',
    type: 'counter',
    help: 'Authenticated calls to the IdP (PAR, token, refresh, revocation), by client authentication method and outcome.',
    labels: ['endpoint', 'auth_method', 'outcome'],
    movedBy:
      'Every authenticated IdP call: `endpoint` is `par`, `token`, `refresh`, `revocation`, `introspection` or `client_credentials`.',
  },
  idpRequestDuration: {
    name: 'bff_idp_request_duration_seconds',
    type: 'histogram',
    help: 'Duration of authenticated calls to the IdP, by endpoint and client authentication method.',
    labels: ['endpoint', 'auth_method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    movedBy: 'Every authenticated IdP call.',
  },
  discoveryAge: {
    name: 'bff_discovery_metadata_age_seconds',
    type: 'gauge',
    help: 'Age of the IdP metadata in use.',
    labels: [],
    movedBy: 'Read at scrape time: seconds since the IdP metadata was last fetched.',
  },
  rateLimited: {
    name: 'bff_rate_limited_total',
    type: 'counter',
    help: 'Requests answered 429, by limit (login, callback, backchannel, par_budget, login_transactions).',
    labels: ['limit'],
    movedBy: 'A request over one of the abuse limits (`MS_BFF_*_RATE_LIMIT`, `MS_BFF_PAR_BUDGET`, …).',
  },
  auditEvents: {
    name: 'bff_audit_events_total',
    type: 'counter',
    help: 'Audit events emitted, by event name (docs/audit.md).',
    labels: ['event'],
    movedBy: 'Every audit event (docs/audit.md).',
  },
  storeUp: {
    name: 'bff_store_up',
    type: 'gauge',
    help: 'Whether the session store answered a ping at scrape time (1) or not (0).',
    labels: [],
    movedBy: 'Read at scrape time: a ping of the session store.',
  },
  fipsMode: {
    name: 'bff_fips_mode',
    type: 'gauge',
    help: 'Whether Node.js crypto runs with a FIPS provider (1) or not (0).',
    labels: [],
    movedBy: 'Read at scrape time: `crypto.getFips()`.',
  },
  fipsRequired: {
    name: 'bff_fips_required',
    type: 'gauge',
    help: 'Whether FIPS_MODE=true was configured (1) or not (0).',
    labels: [],
    movedBy: 'Read at scrape time: the `FIPS_MODE` setting.',
  },
} as const satisfies Record<string, MetricDeclaration>;

export type MetricKey = keyof typeof METRICS;
export type MetricLabel<K extends MetricKey> = (typeof METRICS)[K]['labels'][number];
type KeysOfType<T extends MetricType> = {
  [K in MetricKey]: (typeof METRICS)[K]['type'] extends T ? K : never;
}[MetricKey];
export type CounterKey = KeysOfType<'counter'>;
export type GaugeKey = KeysOfType<'gauge'>;
export type HistogramKey = KeysOfType<'histogram'>;

/**
 * The names a scrape shows for a metric: a histogram's `_bucket`, `_sum` and `_count` series
 * (https://prometheus.io/docs/concepts/metric_types/#histogram), the name itself otherwise.
 */
export function exposedNames(declaration: MetricDeclaration): string[] {
  if (declaration.type !== 'histogram') return [declaration.name];
  return ['_bucket', '_sum', '_count'].map((suffix) => declaration.name + suffix);
}
