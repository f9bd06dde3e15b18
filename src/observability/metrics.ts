import { getFips } from 'node:crypto';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * A named metrics API over one prom-client Registry per app (never the global registry, so two
 * apps in one process, as in tests, do not collide). Labels are bounded: route names come from
 * configuration, outcomes and codes from enums.
 *
 * Names already published keep their spelling (`par_requests_total`); our own carry the `bff_` prefix.
 */
export type Outcome = 'success' | 'failure';

export class Metrics {
  readonly registry = new Registry();

  private readonly parRequests = new Counter({
    name: 'par_requests_total',
    help: 'Pushed Authorization Requests sent to the IdP (RFC 9126), by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly logins = new Counter({
    name: 'bff_login_started_total',
    help: 'Logins started (redirects to the IdP), by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly loginDuration = new Histogram({
    name: 'bff_login_duration_seconds',
    help: 'Time to start a login (transaction + PAR).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly callbacks = new Counter({
    name: 'bff_callbacks_total',
    help: 'Authorization callbacks, by outcome and error code.',
    labelNames: ['outcome', 'code'] as const,
    registers: [this.registry],
  });
  private readonly callbackDuration = new Histogram({
    name: 'bff_callback_duration_seconds',
    help: 'Time to process a callback (checks, code exchange, ID token validation, session).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly refreshes = new Counter({
    name: 'bff_token_refresh_total',
    help: 'Access token refreshes, by outcome (success, failure, invalid_grant, shared).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly refreshDuration = new Histogram({
    name: 'bff_token_refresh_duration_seconds',
    help: 'Time of refresh_token grants.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly proxyRequests = new Counter({
    name: 'bff_proxy_requests_total',
    help: 'Proxied API requests, by route and status class.',
    labelNames: ['route', 'status_class'] as const,
    registers: [this.registry],
  });
  private readonly proxyDuration = new Histogram({
    name: 'bff_proxy_duration_seconds',
    help: 'Time to upstream response headers for proxied API requests.',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly sessions = new Counter({
    name: 'bff_sessions_total',
    help: 'Session lifecycle events (created, ended, expired).',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'bff_errors_total',
    help: 'Requests refused or failed, by stable error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly revocations = new Counter({
    name: 'bff_token_revocations_total',
    help: 'RFC 7009 revocations at logout, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly discoveryRefreshFailures = new Counter({
    name: 'bff_discovery_refresh_failures_total',
    help: 'Background IdP metadata refreshes that failed (the last good metadata stays in use).',
    registers: [this.registry],
  });
  // Names already published (dashboards depend on them): keep them exactly.
  private readonly jarCreated = new Counter({
    name: 'jar_request_objects_created_total',
    help: 'Signed request objects created (RFC 9101), by alg.',
    labelNames: ['alg'] as const,
    registers: [this.registry],
  });
  private readonly jarPushFailures = new Counter({
    name: 'jar_request_push_failures_total',
    help: 'Request objects the IdP refused or that could not be pushed, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly jarmVerified = new Counter({
    name: 'jarm_responses_verified_total',
    help: 'JARM responses that passed every check, by response mode.',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  private readonly jarmDecryptionFailures = new Counter({
    name: 'jarm_decryption_failures_total',
    help: 'Encrypted JARM responses that could not be decrypted, by alg.',
    labelNames: ['alg'] as const,
    registers: [this.registry],
  });
  private readonly jarmValidationFailures = new Counter({
    name: 'jarm_validation_failures_total',
    help: 'JARM responses refused, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly jarmReplays = new Counter({
    name: 'jarm_replay_denied_total',
    help: 'JARM responses refused because they were already used.',
    registers: [this.registry],
  });
  private readonly jarmTypInvalid = new Counter({
    name: 'jarm_typ_invalid_total',
    help: 'JARM responses refused for their typ header.',
    registers: [this.registry],
  });
  private readonly jarmAudMismatch = new Counter({
    name: 'jarm_aud_mismatch_total',
    help: 'JARM responses refused because aud is not our client_id.',
    registers: [this.registry],
  });
  private readonly jwksRefreshFailures = new Counter({
    name: 'jwks_refresh_failures_total',
    help: "Failed refreshes of the IdP's JWKS (stale keys stay in use).",
    registers: [this.registry],
  });
  private jwksAgeSource: () => number = () => 0;
  private readonly jwksAge = new Gauge({
    name: 'jwks_cache_age_seconds',
    help: 'Age of the cached IdP JWKS.',
    registers: [this.registry],
    collect: () => {
      const age = this.jwksAgeSource();
      this.jwksAge.set(Number.isFinite(age) ? age : -1);
    },
  });
  private readonly configReloads = new Counter({
    name: 'bff_config_reloads_total',
    help: 'Configuration reloads (SIGHUP, MS_BFF_CONFIG file change), by outcome: applied, unchanged, invalid, refused, failed.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly backchannelLogouts = new Counter({
    name: 'bff_backchannel_logouts_total',
    help: 'Back-channel logout requests (OIDC BCL 1.0), by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly upstreamInvalidTokens = new Counter({
    name: 'bff_upstream_invalid_token_total',
    help: 'Upstream 401 invalid_token answers to the user token, by what the BFF did (refreshed, shared, rate_limited, no_refresh_token, refresh_failed, body_not_replayable).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly dpopRetriesSkipped = new Counter({
    name: 'bff_dpop_nonce_retries_skipped_total',
    help: 'Upstream use_dpop_nonce challenges not retried because the request body could not be replayed.',
    registers: [this.registry],
  });
  private readonly clientTokens = new Counter({
    name: 'bff_client_tokens_total',
    help: "The BFF's own client-credentials tokens for client routes (RFC 6749 §4.4): issued, served from cache, or failed.",
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly websockets = new Counter({
    name: 'bff_websocket_connections_total',
    help: 'Proxied WebSocket connections (RFC 6455) by route and event: opened, refused at the handshake, closed.',
    labelNames: ['route', 'event'] as const,
    registers: [this.registry],
  });
  private readonly websocketsOpen = new Gauge({
    name: 'bff_websocket_connections_open',
    help: 'Proxied WebSocket connections open now, by route.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  private readonly dpopValidationFailures = new Counter({
    name: 'dpop_validation_failures_total',
    help: 'DPoP-bound requests of service callers refused, by reason (RFC 9449 §4.3, §7).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly idpRequests = new Counter({
    name: 'bff_idp_requests_total',
    help: 'Authenticated calls to the IdP (PAR, token, refresh, revocation), by client authentication method and outcome.',
    labelNames: ['endpoint', 'auth_method', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly idpRequestDuration = new Histogram({
    name: 'bff_idp_request_duration_seconds',
    help: 'Duration of authenticated calls to the IdP, by endpoint and client authentication method.',
    labelNames: ['endpoint', 'auth_method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private discoveryFetchedAt = Date.now();
  private readonly discoveryAge = new Gauge({
    name: 'bff_discovery_metadata_age_seconds',
    help: 'Age of the IdP metadata in use.',
    registers: [this.registry],
    collect: () => {
      this.discoveryAge.set((Date.now() - this.discoveryFetchedAt) / 1000);
    },
  });

  private readonly rateLimited = new Counter({
    name: 'bff_rate_limited_total',
    help: 'Requests answered 429, by limit (login, callback, backchannel, par_budget, login_transactions).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  private readonly auditEvents = new Counter({
    name: 'bff_audit_events_total',
    help: 'Audit events emitted, by event name (docs/audit.md).',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  private storeProbe: () => Promise<boolean> = async () => true;
  private readonly storeUp = new Gauge({
    name: 'bff_store_up',
    help: 'Whether the session store answered a ping at scrape time (1) or not (0).',
    registers: [this.registry],
    collect: async () => {
      this.storeUp.set((await this.storeProbe()) ? 1 : 0);
    },
  });
  private fipsRequiredValue = false;
  private readonly fipsMode = new Gauge({
    name: 'bff_fips_mode',
    help: 'Whether Node.js crypto runs with a FIPS provider (1) or not (0).',
    registers: [this.registry],
    collect: () => {
      this.fipsMode.set(getFips() === 1 ? 1 : 0);
    },
  });
  private readonly fipsRequired = new Gauge({
    name: 'bff_fips_required',
    help: 'Whether FIPS_MODE=true was configured (1) or not (0).',
    registers: [this.registry],
    collect: () => {
      this.fipsRequired.set(this.fipsRequiredValue ? 1 : 0);
    },
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  parRequest(outcome: Outcome): void {
    this.parRequests.inc({ outcome });
  }
  loginStarted(outcome: Outcome, seconds: number): void {
    this.logins.inc({ outcome });
    if (outcome === 'success') this.loginDuration.observe(seconds);
  }
  callback(outcome: Outcome, code: string, seconds: number): void {
    this.callbacks.inc({ outcome, code });
    this.callbackDuration.observe(seconds);
  }
  refresh(outcome: 'success' | 'failure' | 'invalid_grant' | 'shared', seconds?: number): void {
    this.refreshes.inc({ outcome });
    if (seconds !== undefined) this.refreshDuration.observe(seconds);
  }
  proxied(route: string, status: number, seconds: number): void {
    this.proxyRequests.inc({ route, status_class: `${Math.floor(status / 100)}xx` });
    this.proxyDuration.observe({ route }, seconds);
  }
  session(event: 'created' | 'ended' | 'expired'): void {
    this.sessions.inc({ event });
  }
  error(code: string): void {
    this.errors.inc({ code });
  }
  revocation(outcome: Outcome | 'skipped'): void {
    this.revocations.inc({ outcome });
  }
  discoveryRefreshed(ok: boolean): void {
    if (ok) this.discoveryFetchedAt = Date.now();
    else this.discoveryRefreshFailures.inc();
  }

  /** The DpopValidationEvents view (src/proxy/dpop-validation.ts). */
  readonly dpopValidation = {
    failure: (reason: string) => this.dpopValidationFailures.inc({ reason }),
  };
  idpRequest(endpoint: string, authMethod: string, outcome: 'success' | 'failure', seconds: number): void {
    this.idpRequests.inc({ endpoint, auth_method: authMethod, outcome });
    this.idpRequestDuration.observe({ endpoint, auth_method: authMethod }, seconds);
  }
  upstreamInvalidToken(outcome: string): void {
    this.upstreamInvalidTokens.inc({ outcome });
  }
  clientToken(outcome: 'issued' | 'cached' | 'failure'): void {
    this.clientTokens.inc({ outcome });
  }
  websocket(route: string, event: 'opened' | 'refused' | 'closed'): void {
    this.websockets.inc({ route, event });
    if (event === 'opened') this.websocketsOpen.inc({ route });
    else if (event === 'closed') this.websocketsOpen.dec({ route });
  }
  dpopRetrySkipped(): void {
    this.dpopRetriesSkipped.inc();
  }
  configReload(outcome: string): void {
    this.configReloads.inc({ outcome });
  }
  backchannelLogout(outcome: 'success' | 'invalid'): void {
    this.backchannelLogouts.inc({ outcome });
  }
  jarRequestObjectCreated(alg: string): void {
    this.jarCreated.inc({ alg });
  }
  jarPushFailed(reason: string): void {
    this.jarPushFailures.inc({ reason });
  }
  /** The JarmEvents view (src/oauth/jarm.ts) over the JARM metrics. */
  readonly jarm = {
    verified: (mode: string) => this.jarmVerified.inc({ mode }),
    decryptionFailed: (alg: string) => this.jarmDecryptionFailures.inc({ alg }),
    validationFailed: (reason: string) => this.jarmValidationFailures.inc({ reason }),
    replayDenied: () => this.jarmReplays.inc(),
    typInvalid: () => this.jarmTypInvalid.inc(),
    audMismatch: () => this.jarmAudMismatch.inc(),
  };
  /** The JwksCacheEvents view (src/oauth/jwks-cache.ts). */
  readonly jwks = {
    refreshFailed: () => this.jwksRefreshFailures.inc(),
    refreshed: () => undefined,
  };
  jwksAgeFrom(source: () => number): void {
    this.jwksAgeSource = source;
  }

  rateLimit(limit: string): void {
    this.rateLimited.inc({ limit });
  }
  audit(event: string): void {
    this.auditEvents.inc({ event });
  }
  storeUpFrom(probe: () => Promise<boolean>): void {
    this.storeProbe = probe;
  }
  fipsRequiredIs(required: boolean): void {
    this.fipsRequiredValue = required;
  }

  contentType(): string {
    return this.registry.contentType;
  }
  render(): Promise<string> {
    return this.renderer ? this.renderer() : this.registry.metrics();
  }
  /** Render through another source, e.g. the cluster primary's aggregate of every worker (MS_BFF_WORKERS). */
  renderWith(renderer: () => Promise<string>): void {
    this.renderer = renderer;
  }
  private renderer: (() => Promise<string>) | undefined;
}
