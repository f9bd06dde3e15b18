import { getFips } from 'node:crypto';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import {
  type CounterKey,
  type GaugeKey,
  type HistogramKey,
  type MetricLabel,
  METRICS,
} from './metric-catalog.js';

/**
 * A named metrics API over one prom-client Registry per app (never the global registry, so two
 * apps in one process, as in tests, do not collide). Labels are bounded: route names come from
 * configuration, outcomes and codes from enums.
 *
 * Every metric is declared in metric-catalog.ts (name, type, labels, help; docs/metrics.md is
 * generated from it); this class only builds them and names the operations that move them.
 */
export type Outcome = 'success' | 'failure';

export class Metrics {
  readonly registry = new Registry();

  private readonly parRequests = this.counter('parRequests');
  private readonly logins = this.counter('logins');
  private readonly loginDuration = this.histogram('loginDuration');
  private readonly callbacks = this.counter('callbacks');
  private readonly callbackDuration = this.histogram('callbackDuration');
  private readonly refreshes = this.counter('refreshes');
  private readonly refreshDuration = this.histogram('refreshDuration');
  private readonly proxyRequests = this.counter('proxyRequests');
  private readonly proxyDuration = this.histogram('proxyDuration');
  private readonly sessions = this.counter('sessions');
  private readonly errors = this.counter('errors');
  private readonly revocations = this.counter('revocations');
  private readonly discoveryRefreshFailures = this.counter('discoveryRefreshFailures');
  private readonly jarCreated = this.counter('jarCreated');
  private readonly jarPushFailures = this.counter('jarPushFailures');
  private readonly jarmVerified = this.counter('jarmVerified');
  private readonly jarmDecryptionFailures = this.counter('jarmDecryptionFailures');
  private readonly jarmValidationFailures = this.counter('jarmValidationFailures');
  private readonly jarmReplays = this.counter('jarmReplays');
  private readonly jarmTypInvalid = this.counter('jarmTypInvalid');
  private readonly jarmAudMismatch = this.counter('jarmAudMismatch');
  private readonly jwksRefreshFailures = this.counter('jwksRefreshFailures');
  private jwksAgeSource: () => number = () => 0;
  private readonly jwksAge = this.gauge('jwksAge', () => {
    const age = this.jwksAgeSource();
    this.jwksAge.set(Number.isFinite(age) ? age : -1);
  });
  private readonly configReloads = this.counter('configReloads');
  private readonly backchannelLogouts = this.counter('backchannelLogouts');
  private readonly upstreamInvalidTokens = this.counter('upstreamInvalidTokens');
  private readonly dpopRetriesSkipped = this.counter('dpopRetriesSkipped');
  private readonly clientTokens = this.counter('clientTokens');
  private readonly websockets = this.counter('websockets');
  private readonly websocketsOpen = this.gauge('websocketsOpen');
  private readonly dpopValidationFailures = this.counter('dpopValidationFailures');
  private readonly idpRequests = this.counter('idpRequests');
  private readonly idpRequestDuration = this.histogram('idpRequestDuration');
  private discoveryFetchedAt = Date.now();
  private readonly discoveryAge = this.gauge('discoveryAge', () => {
    this.discoveryAge.set((Date.now() - this.discoveryFetchedAt) / 1000);
  });
  private readonly rateLimited = this.counter('rateLimited');
  private readonly auditEvents = this.counter('auditEvents');
  private storeProbe: () => Promise<boolean> = async () => true;
  private readonly storeUp = this.gauge('storeUp', async () => {
    this.storeUp.set((await this.storeProbe()) ? 1 : 0);
  });
  private fipsRequiredValue = false;
  private readonly fipsMode = this.gauge('fipsMode', () => {
    this.fipsMode.set(getFips() === 1 ? 1 : 0);
  });
  private readonly fipsRequired = this.gauge('fipsRequired', () => {
    this.fipsRequired.set(this.fipsRequiredValue ? 1 : 0);
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  parRequest(outcome: Outcome): void {
    this.parRequests.inc({ outcome });
  }
  /** `frontend`: the frontend's name (`default` with one), on the login/session/logout metrics. */
  loginStarted(outcome: Outcome, seconds: number, frontend: string): void {
    this.logins.inc({ outcome, frontend });
    if (outcome === 'success') this.loginDuration.observe(seconds);
  }
  callback(outcome: Outcome, code: string, seconds: number, frontend: string): void {
    this.callbacks.inc({ outcome, code, frontend });
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
  session(event: 'created' | 'ended' | 'expired', frontend: string): void {
    this.sessions.inc({ event, frontend });
  }
  error(code: string): void {
    this.errors.inc({ code });
  }
  revocation(outcome: Outcome | 'skipped', frontend: string): void {
    this.revocations.inc({ outcome, frontend });
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
  backchannelLogout(outcome: 'success' | 'invalid', frontend: string): void {
    this.backchannelLogouts.inc({ outcome, frontend });
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
  private counter<K extends CounterKey>(key: K): Counter<MetricLabel<K>> {
    const d = METRICS[key];
    return new Counter({
      name: d.name,
      help: d.help,
      labelNames: d.labels as readonly MetricLabel<K>[],
      registers: [this.registry],
    });
  }
  private gauge<K extends GaugeKey>(key: K, collect?: () => void | Promise<void>): Gauge<MetricLabel<K>> {
    const d = METRICS[key];
    return new Gauge({
      name: d.name,
      help: d.help,
      labelNames: d.labels as readonly MetricLabel<K>[],
      registers: [this.registry],
      ...(collect ? { collect } : {}),
    });
  }
  private histogram<K extends HistogramKey>(key: K): Histogram<MetricLabel<K>> {
    const d = METRICS[key];
    return new Histogram({
      name: d.name,
      help: d.help,
      labelNames: d.labels as readonly MetricLabel<K>[],
      buckets: [...d.buckets],
      registers: [this.registry],
    });
  }
}
