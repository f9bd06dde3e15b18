import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import type { BffConfig } from '../config/types.js';
import { tracedFetch } from '../observability/traced-fetch.js';
import { withSpan } from '../observability/tracing.js';
import { translateOAuthError } from './errors.js';
import { type IdpFetch, sizeCappedFetch, tlsDispatcher } from './http.js';
import { JwksCache, type JwksCacheEvents } from './jwks-cache.js';

/** What a share reports: each metadata refresh (not the first discovery), each JWKS fetch. */
export interface IssuerEvents {
  discoveryRefreshed?(ok: boolean): void;
  readonly jwks?: JwksCacheEvents | undefined;
}

/**
 * What the IdP publishes for everyone: its discovery metadata (OpenID Connect Discovery 1.0 §4,
 * https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig) and its JWKS. Several
 * frontends with the same issuer read them once: one discovery (and one refresh per interval) and one
 * JWKS cache, not one per frontend. What is per client (client id, authentication, capabilities it
 * needs) stays with each frontend's IdpClient.
 */
export class IssuerShare {
  #last: { metadata: oidc.ServerMetadata; at: number } | undefined;
  #inflight: Promise<oidc.ServerMetadata> | undefined;
  #jwks: JwksCache | undefined;
  /** Who wants the JWKS refreshed in the background (JARM, unpinned JAR encryption). */
  readonly #jwksUsers = new Set<object>();
  readonly #jwksListeners = new Set<JwksCacheEvents>();

  constructor(
    private readonly config: BffConfig,
    private readonly fetchImpl: IdpFetch,
    private readonly events: IssuerEvents,
  ) {}

  /**
   * The issuer's metadata: fetched now, or the last good one when it is younger than `maxAgeMs`.
   * Concurrent callers share one fetch (and its failure); a failure is never reused later.
   */
  metadata(maxAgeMs: number): Promise<oidc.ServerMetadata> {
    if (this.#last && Date.now() - this.#last.at < maxAgeMs) return Promise.resolve(this.#last.metadata);
    this.#inflight ??= this.#discover().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  #discover(): Promise<oidc.ServerMetadata> {
    const config = this.config;
    return withSpan('idp.discovery', { 'oauth.issuer': config.oidc.issuer.href }, async () => {
      // A refresh (there was metadata before) is counted once for every frontend of the issuer.
      const refresh = this.#last !== undefined;
      let discovered: oidc.Configuration;
      try {
        // The client id is the first frontend's; only the server's metadata is used from here.
        discovered = await oidc.discovery(config.oidc.issuer, config.oidc.clientId, undefined, undefined, {
          execute: config.oidc.allowInsecureIssuer ? [oidc.allowInsecureRequests] : [],
          [oidc.customFetch]: this.fetchImpl,
          timeout: Math.ceil(config.oidc.timeoutMs / 1000),
          algorithm: 'oidc',
        });
      } catch (err) {
        if (refresh) this.events.discoveryRefreshed?.(false);
        throw translateOAuthError(err, 'discovery');
      }
      const metadata = discovered.serverMetadata();
      this.#last = { metadata, at: Date.now() };
      if (refresh) this.events.discoveryRefreshed?.(true);
      return metadata;
    });
  }

  /**
   * The issuer's JWKS (its discovered `jwks_uri`), one cache for every frontend; created with the
   * first metadata, so call it after `metadata()` succeeded once.
   */
  get jwks(): JwksCache {
    if (!this.#jwks) {
      const listeners = this.#jwksListeners;
      const outer = this.events.jwks;
      this.#jwks = new JwksCache({
        jwksUri: String(this.#last?.metadata.jwks_uri),
        fetch: tracedFetch(sizeCappedFetch(undefined, tlsDispatcher(this.config.tls)), 'idp.jwks'),
        events: {
          refreshed: () => {
            outer?.refreshed();
            for (const l of listeners) l.refreshed();
          },
          refreshFailed: () => {
            outer?.refreshFailed();
            for (const l of listeners) l.refreshFailed();
          },
        },
        timeoutMs: this.config.oidc.timeoutMs,
      });
    }
    return this.#jwks;
  }

  /** Tell `listener` about every JWKS fetch (each frontend's readiness); returns the unsubscribe. */
  onJwks(listener: JwksCacheEvents): () => void {
    this.#jwksListeners.add(listener);
    return () => this.#jwksListeners.delete(listener);
  }

  /** `user` needs the JWKS kept fresh in the background: it runs while anyone does. */
  startJwks(user: object): void {
    this.#jwksUsers.add(user);
    this.jwks.start();
  }

  stopJwks(user: object): void {
    if (!this.#jwksUsers.delete(user) || this.#jwksUsers.size > 0) return;
    this.#jwks?.stop();
  }
}

/**
 * The shares of one process (one app), by everything that changes what a fetch returns or whether
 * it succeeds: the issuer, plain-HTTP permission, timeout, the TLS client certificate and trusted
 * CAs, and the fetch itself when a caller supplies one.
 */
export class IssuerShares {
  readonly #shares = new Map<string, IssuerShare>();
  readonly #fetchIds = new WeakMap<IdpFetch, number>();
  #nextFetchId = 1;

  /** `events`: each refresh and JWKS fetch of any share, counted once (the metrics). */
  constructor(private readonly events: IssuerEvents = {}) {}

  for(config: BffConfig, baseFetch: IdpFetch | undefined): IssuerShare {
    let fetchId = 0;
    if (baseFetch) {
      fetchId = this.#fetchIds.get(baseFetch) ?? this.#nextFetchId++;
      this.#fetchIds.set(baseFetch, fetchId);
    }
    const { issuer, allowInsecureIssuer, timeoutMs } = config.oidc;
    const key = createHash('sha256')
      .update(
        JSON.stringify([
          issuer.href,
          allowInsecureIssuer,
          timeoutMs,
          config.tls.cert,
          config.tls.key,
          config.tls.ca,
          fetchId,
        ]),
      )
      .digest('base64url');
    let share = this.#shares.get(key);
    if (!share) {
      const fetchImpl = tracedFetch(baseFetch ?? sizeCappedFetch(undefined, tlsDispatcher(config.tls)));
      share = new IssuerShare(config, fetchImpl, this.events);
      this.#shares.set(key, share);
    }
    return share;
  }
}
