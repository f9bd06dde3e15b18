import * as oidc from 'openid-client';
import type { BffConfig } from '../config/types.js';
import { BffError } from '../errors.js';
import { KeyRing } from '../keys/key-ring.js';
import { type IdpMetadata, missingCapabilities } from './capabilities.js';
import { translateOAuthError } from './errors.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { KeyObject } from 'node:crypto';
import type { CryptoKey } from 'jose';
import type { DpopKey, DpopNonceCache } from '../dpop/client.js';
import { buildRequestObject } from './jar.js';
import { type IdpFetch, sizeCappedFetch, tlsDispatcher } from './http.js';
import { tracedFetch } from '../observability/traced-fetch.js';
import { withSpan } from '../observability/tracing.js';
import { IdpHealth } from './idp-health.js';
import { type IssuerEvents, type IssuerShare, IssuerShares } from './issuer-share.js';
import type { JwksCache } from './jwks-cache.js';
import { describeIdpFailure } from './diagnostics.js';

/** What the protocol core reports; implemented by observability, injected here (no prom-client in oauth/). */
export interface OAuthEvents extends IssuerEvents {
  parRequest(outcome: 'success' | 'failure'): void;
  jarRequestObjectCreated(alg: string): void;
  jarPushFailed(reason: string): void;
  /** Every authenticated call to the IdP, labelled with the one client authentication method. */
  idpRequest(
    endpoint: IdpEndpoint,
    authMethod: string,
    outcome: 'success' | 'failure',
    seconds: number,
  ): void;
}

/** Where the IdP's current request-object encryption key comes from (its JWKS, through the cache). */
export interface JarEncryptionKeys {
  encryptionKey(
    alg: string,
    opts: { fipsMode: boolean; refresh?: boolean },
  ): Promise<{ key: CryptoKey; kid: string | undefined }>;
}

export type IdpEndpoint = 'par' | 'token' | 'refresh' | 'revocation' | 'introspection' | 'client_credentials';

export interface OAuthLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

/** A validated token endpoint response, normalised. Never leaves the server. */
export interface TokenSet {
  accessToken: string;
  tokenType: 'bearer' | 'dpop';
  /** Seconds from receipt (the caller dates it with its own clock). */
  expiresIn: number;
  refreshToken: string | undefined;
  idToken: string | undefined;
  claims: Record<string, unknown> | undefined;
  scope: string | undefined;
}

export interface AuthorizationChecks {
  codeVerifier: string;
  state: string;
  nonce: string;
  /** OIDC Core §3.1.2.1 max_age that was requested: `auth_time` must be present and recent enough. */
  maxAge?: number | undefined;
}

/** Default lifetime when the token response omits `expires_in` (RFC 6749 §5.1 makes it optional). */
const DEFAULT_EXPIRES_IN_SEC = 300;
/** OIDC Core §3.1.3.7-10: we reject ID tokens issued too long ago, or too far in the future (FAPI 2.0: 10 s). */
const ID_TOKEN_MAX_AGE_SEC = 600;
const ID_TOKEN_FUTURE_SKEW_SEC = 10;

/**
 * The BFF's client of one IdP: discovery with capability checks, PAR, code exchange, refresh,
 * revocation and end-session, all through openid-client with FAPI 2.0 settings on. It keeps
 * serving on the last good metadata when a background refresh fails.
 */
export class IdpClient {
  private current: oidc.Configuration;
  private timer: NodeJS.Timeout | undefined;
  private nonces: DpopNonceCache | undefined;
  private encKeys: JarEncryptionKeys | undefined;
  /** Reachability as seen by this instance's own calls (readiness). */
  readonly health = new IdpHealth();
  private probing: Promise<boolean> | undefined;
  private readonly stopJwksEvents: () => void;

  private constructor(
    private readonly config: BffConfig,
    initial: oidc.Configuration,
    private readonly events: OAuthEvents,
    private readonly logger: OAuthLogger,
    private readonly fetchImpl: IdpFetch,
    hooks: FetchHooks,
    /** Our key sets: the active signing key and every JARM decryption key (seed 002 §5). */
    readonly keys: KeyRing,
    /** The issuer's metadata and JWKS, shared with the other frontends of this issuer. */
    private readonly share: IssuerShare,
  ) {
    this.current = initial;
    hooks.onNonce = (origin, nonce) => void this.nonces?.set(origin, nonce);
    // JWKS fetches count for the IdP's reachability too (readiness).
    this.stopJwksEvents = share.onJwks({
      refreshed: () => this.health.record('jwks', true),
      refreshFailed: () => this.health.record('jwks', false),
    });
  }

  /**
   * `shares`: the process's issuer shares, so frontends of one issuer discover it once and keep one
   * JWKS cache (absent: this client's own). `baseFetch`: how to reach the IdP (tests), default
   * size-capped with the configured TLS settings.
   */
  static async create(
    config: BffConfig,
    events: OAuthEvents,
    logger: OAuthLogger,
    baseFetch?: IdpFetch,
    shares: IssuerShares = new IssuerShares(events),
  ): Promise<IdpClient> {
    const hooks: FetchHooks = {};
    const share = shares.for(config, baseFetch);
    const fetchImpl = dpopAwareFetch(
      tracedFetch(baseFetch ?? sizeCappedFetch(undefined, tlsDispatcher(config.tls))),
      hooks,
    );
    const keys = await KeyRing.open({
      ...(config.signingKey
        ? { signing: { path: config.keys.signingPath, fixed: config.signingKey, alg: config.signingKey.alg } }
        : {}),
      ...(config.jarm.encryption
        ? {
            decryption: {
              path: config.keys.jarmPath,
              fixed: config.jarm.encryption.key,
              alg: config.jarm.encryption.alg,
            },
          }
        : {}),
      prepublishSec: config.keys.prepublishSec,
      fipsMode: config.fipsMode,
      log: { info: (o, m) => logger.info(o, m), error: (o, m) => logger.warn(o, m) },
    });
    const configuration = await discover(config, share, freshEnough(config), fetchImpl, keys);
    return new IdpClient(config, configuration, events, logger, fetchImpl, hooks, keys, share);
  }

  /**
   * Time, count, trace (span `idp.<endpoint>`) and log an authenticated IdP call under the
   * configured client authentication method: at debug when it succeeds, at warn with the
   * diagnostics when it fails.
   */
  private timed<T>(endpoint: IdpEndpoint, call: () => Promise<T>): Promise<T> {
    const authMethod = this.config.oidc.tokenAuthMethod;
    return withSpan(`idp.${endpoint}`, { 'oauth.client_auth_method': authMethod }, async () => {
      const started = performance.now();
      const url = endpointUrl(this.current, endpoint);
      try {
        // RFC 7523 §3 style audience for IdPs that want it (MS_BFF_CLIENT_ASSERTION_AUD=endpoint).
        const result = await assertionAudience.run(url, call);
        const seconds = (performance.now() - started) / 1000;
        this.health.record(endpoint, true);
        this.events.idpRequest(endpoint, authMethod, 'success', seconds);
        this.logger.debug?.(
          { idp_endpoint: endpoint, outcome: 'success', duration_ms: Math.round(seconds * 10000) / 10 },
          `IdP ${endpoint} call`,
        );
        return result;
      } catch (err) {
        this.health.record(endpoint, reachedIdp(err, endpoint));
        this.events.idpRequest(endpoint, authMethod, 'failure', (performance.now() - started) / 1000);
        this.logger.warn(
          {
            idp_endpoint: endpoint,
            idp: describeIdpFailure(err, {
              endpoint,
              url,
              authMethod,
              clientAssertionAud: this.config.interop.clientAssertionAud,
              dpop: this.config.oidc.dpopEnabled,
            }),
          },
          `IdP ${endpoint} request failed`,
        );
        throw err;
      }
    });
  }

  /** Share the AS's DPoP nonces through the store (RFC 9449 §8): another instance skips the 400 round trip. */
  useDpopNonces(cache: DpopNonceCache): void {
    this.nonces = cache;
  }

  /**
   * An openid-client DPoP handle for this key whose first proof to each AS origin carries the last
   * nonce the AS sent any instance (RFC 9449 §8), through the public `modifyAssertion` hook. A nonce
   * the handle learned itself (from a `use_dpop_nonce` answer in this call) is already in the payload
   * and wins; a stale shared one costs the one retry openid-client makes anyway.
   */
  private async handle(key: DpopKey): Promise<oidc.DPoPHandle> {
    const shared = new Map<string, string>();
    if (this.nonces) {
      const md = this.current.serverMetadata();
      const aliases = md.mtls_endpoint_aliases;
      for (const endpoint of [
        md.pushed_authorization_request_endpoint,
        md.token_endpoint,
        aliases?.pushed_authorization_request_endpoint,
        aliases?.token_endpoint,
      ]) {
        if (typeof endpoint !== 'string') continue;
        const origin = new URL(endpoint).origin;
        const nonce = shared.has(origin) ? undefined : await this.nonces.get(origin);
        if (nonce) shared.set(origin, nonce);
      }
    }
    if (shared.size === 0) return oidc.getDPoPHandle(this.current, key.keyPair);
    return oidc.getDPoPHandle(this.current, key.keyPair, {
      [oidc.modifyAssertion]: (_header, payload) => {
        if (payload.nonce !== undefined || typeof payload.htu !== 'string') return;
        const nonce = shared.get(new URL(payload.htu).origin);
        if (nonce) payload.nonce = nonce;
      },
    });
  }

  /** The IdP's JWKS (its discovered jwks_uri), one cache for every frontend of this issuer. */
  get jwks(): JwksCache {
    return this.share.jwks;
  }

  /** Keep the JWKS fresh in the background (JARM, unpinned JAR encryption) until stop(). */
  startJwksRefresh(): void {
    this.share.startJwks(this);
  }

  get configuration(): oidc.Configuration {
    return this.current;
  }

  get metadata(): Readonly<oidc.ServerMetadata> {
    return this.current.serverMetadata();
  }

  /** Milliseconds since metadata was last fetched successfully. */
  metadataAgeMs(): number {
    return Date.now() - this.health.snapshot().metadataRefreshedAt;
  }

  /**
   * Re-check the IdP (a metadata refresh) when no call reached or tried it for `quietMs`: readiness
   * then reflects an outage even while no user logs in. Single-flight; never rejects.
   */
  probeIfQuiet(quietMs: number): void {
    const last = this.health.snapshot().lastCall?.at ?? this.health.snapshot().lastSuccessAt;
    if (this.probing || Date.now() - last < quietMs) return;
    // Another frontend's probe of the same issuer within this window answers for this one too.
    this.probing = this.refreshMetadata(quietMs / 2).finally(() => {
      this.probing = undefined;
    });
  }

  startBackgroundRefresh(): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => void this.refreshMetadata(freshEnough(this.config)),
      this.config.oidc.discoveryRefreshSec * 1000,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.share.stopJwks(this);
    this.stopJwksEvents();
  }

  /**
   * Re-discover; on any failure keep the last good metadata (and say so in logs and metrics).
   * Metadata another frontend of this issuer fetched less than `maxAgeMs` ago counts as fresh.
   */
  async refreshMetadata(maxAgeMs = 0): Promise<boolean> {
    try {
      this.current = await discover(this.config, this.share, maxAgeMs, this.fetchImpl, this.keys);
      this.health.record('metadata', true);
      return true;
    } catch (err) {
      this.health.record('metadata', false);
      this.logger.warn(
        { err: describe(err) },
        'IdP metadata refresh failed; serving on the last good metadata',
      );
      return false;
    }
  }

  /**
   * Build the authorization redirect. With PAR (RFC 9126) every parameter goes to the IdP over the
   * back channel and the browser carries only `client_id` and `request_uri` (FAPI 2.0 §5.3.3.2-6).
   */
  async authorizationUrl(params: {
    state: string;
    nonce: string;
    codeChallenge: string;
    dpop?: DpopKey | undefined;
    /** Validated acr_values / max_age / prompt from the SPA (OIDC Core §3.1.2.1). */
    extra?: Readonly<Record<string, string>> | undefined;
    /**
     * RFC 8707 §2.1 (https://www.rfc-editor.org/rfc/rfc8707#section-2.1): the resources the user's
     * token will later be exchanged for (refresh grant with `resource`, §2.2), so the grant covers them.
     */
    resources?: readonly string[] | undefined;
  }): Promise<URL> {
    const parameters: Record<string, string> = {
      ...params.extra,
      redirect_uri: this.config.redirectUri,
      scope: this.config.oidc.scopes,
      state: params.state,
      nonce: params.nonce,
      code_challenge: params.codeChallenge,
      code_challenge_method: 'S256',
    };
    // JARM: the mode goes inside the pushed request (https://openid.net/specs/fapi-message-signing-2_0-final.html#section-5.4.2); openid-client's
    // useJwtResponseMode would force plain `jwt`, so it is set here for every mode.
    if (this.config.jarm.enabled) parameters.response_mode = this.config.jarm.mode;
    // https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html#FormPostResponseMode
    else if (this.config.oidc.responseMode === 'form_post') parameters.response_mode = 'form_post';
    // RFC 9449 §10: bind the authorization code to the session's DPoP key (also proven at PAR below).
    if (params.dpop) parameters.dpop_jkt = params.dpop.jkt;
    const jar = this.config.jar;
    const signingKey = this.keys.signingKey() ?? this.config.signingKey;
    const jarOn = jar.enabled && signingKey !== undefined;
    const resources = params.resources ?? [];
    const build = async (refreshEncKey: boolean): Promise<URLSearchParams | Record<string, string>> => {
      if (!jarOn || !signingKey) {
        if (resources.length === 0) return parameters;
        // RFC 8707 §2.1: one `resource` parameter per resource.
        const search = new URLSearchParams(parameters);
        for (const resource of resources) search.append('resource', resource);
        return search;
      }
      // RFC 9101 §4 / FAPI 2.0 Message Signing §5.3.2-1: every parameter inside the signed object; the
      // PAR body (or the URL without PAR) then carries only client_id and request (https://www.rfc-editor.org/rfc/rfc9126#section-3).
      const encryption = jar.encryption ? await this.jarEncryptionKey(refreshEncKey) : undefined;
      const object = await buildRequestObject(
        {
          ...parameters,
          ...(resources.length > 0 ? { resource: resources } : {}),
          response_type: 'code',
          client_id: this.config.oidc.clientId,
        },
        {
          clientId: this.config.oidc.clientId,
          audience: this.current.serverMetadata().issuer,
          signingKey,
          alg: jar.signingAlg,
          allowedAlgs: jar.algsAllowed,
          ...(encryption ? { encryption } : {}),
        },
      );
      this.events.jarRequestObjectCreated(jar.signingAlg);
      return { request: object };
    };
    const request = await build(false);
    if (!this.config.oidc.parEnabled) return oidc.buildAuthorizationUrl(this.current, request);
    const push = async (body: URLSearchParams | Record<string, string>) => {
      const options = params.dpop ? { DPoP: await this.handle(params.dpop) } : undefined;
      return this.timed('par', () => oidc.buildAuthorizationUrlWithPAR(this.current, body, options));
    };
    try {
      let url: URL;
      try {
        url = await push(request);
      } catch (err) {
        // The IdP could not decrypt: it has rotated its encryption key away from the one we cached.
        // Refetch its JWKS once (rate-limited) and push a fresh object (RFC 9101 §6.1).
        if (!this.unpinnedJarEncryption() || !isInvalidRequestObject(err)) throw err;
        url = await push(await build(true));
      }
      this.events.parRequest('success');
      return url;
    } catch (err) {
      this.events.parRequest('failure');
      const translated = translateOAuthError(err, 'par');
      if (jar.enabled) this.events.jarPushFailed(translated.reason ?? 'error');
      throw translated;
    }
  }

  /** JWKS-backed encryption keys for request objects (used unless BFF_JAR_ENC_KEY pins one). */
  useJarEncryptionKeys(source: JarEncryptionKeys): void {
    this.encKeys = source;
  }

  private unpinnedJarEncryption(): boolean {
    return this.config.jar.encryption !== undefined && this.config.jar.encryption.key === undefined;
  }

  /** The pinned key, or the IdP's current `use: enc` key from its JWKS. */
  private async jarEncryptionKey(
    refresh: boolean,
  ): Promise<{ key: CryptoKey | KeyObject; kid?: string; alg: string; enc: string }> {
    const { alg, enc, key: pinned } = this.config.jar.encryption!;
    if (pinned) return { key: pinned.key, ...(pinned.kid ? { kid: pinned.kid } : {}), alg, enc };
    if (!this.encKeys)
      throw new BffError('BFF_IDP_CAPABILITY_MISSING', { status: 502, reason: 'jar_encryption_key_missing' });
    const found = await this.encKeys.encryptionKey(alg, { fipsMode: this.config.fipsMode, refresh });
    return { key: found.key, ...(found.kid ? { kid: found.kid } : {}), alg, enc };
  }

  /**
   * Exchange the code (PKCE verifier, state and nonce checked by openid-client; the ID token
   * signature too, because non-repudiation checks are on: FAPI 2.0 Message Signing §5.6.2).
   */
  async exchangeCode(
    callback: URL | Request,
    checks: AuthorizationChecks,
    dpop?: DpopKey,
  ): Promise<TokenSet> {
    let response: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      const options = dpop ? { DPoP: await this.handle(dpop) } : undefined;
      response = await this.timed('token', () =>
        oidc.authorizationCodeGrant(
          this.current,
          callback,
          {
            pkceCodeVerifier: checks.codeVerifier,
            expectedState: checks.state,
            expectedNonce: checks.nonce,
            ...(checks.maxAge !== undefined ? { maxAge: checks.maxAge } : {}),
            idTokenExpected: true,
          },
          undefined,
          options,
        ),
      );
    } catch (err) {
      throw translateOAuthError(err, 'token');
    }
    const tokens = normalise(response, dpop !== undefined);
    if (!tokens.claims) throw new BffError('BFF_ID_TOKEN_INVALID', { reason: 'missing' });
    checkIdTokenFreshness(tokens.claims);
    return tokens;
  }

  /**
   * refresh_token grant. A refreshed ID token must keep the original identity (OIDC Core §12.2).
   * With `resource` (RFC 8707 §2.2, https://www.rfc-editor.org/rfc/rfc8707#section-2.2) the access
   * token is asked for that resource only (audience-restricted to it).
   */
  async refresh(
    refreshToken: string,
    original: Record<string, unknown>,
    dpop?: DpopKey,
    resource?: string,
  ): Promise<TokenSet> {
    let response: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
    try {
      const options = dpop ? { DPoP: await this.handle(dpop) } : undefined;
      const parameters = resource ? { resource } : undefined;
      response = await this.timed('refresh', () =>
        oidc.refreshTokenGrant(this.current, refreshToken, parameters, options),
      );
    } catch (err) {
      throw translateOAuthError(err, 'refresh');
    }
    const tokens = normalise(response, dpop !== undefined);
    if (tokens.claims) {
      for (const claim of ['iss', 'sub', 'aud', 'azp', 'auth_time']) {
        if (JSON.stringify(tokens.claims[claim]) !== JSON.stringify(original[claim])) {
          throw new BffError('BFF_ID_TOKEN_INVALID', { reason: `refresh_${claim}_changed` });
        }
      }
    }
    return tokens;
  }

  /**
   * The BFF's own token (RFC 6749 §4.4), for routes whose upstream wants the client, not the user.
   * `resource` is an RFC 8707 §2 resource indicator: the token is then audience-restricted to it.
   * With a DPoP key the token is bound to it (RFC 9449 §5); a Bearer answer is a downgrade.
   */
  async clientCredentials(
    target: { scope: string | undefined; resource: string | undefined },
    dpop?: DpopKey,
  ): Promise<TokenSet> {
    const parameters: Record<string, string> = {};
    if (target.scope) parameters.scope = target.scope;
    if (target.resource) parameters.resource = target.resource;
    let response: Awaited<ReturnType<typeof oidc.clientCredentialsGrant>>;
    try {
      const options = dpop ? { DPoP: await this.handle(dpop) } : undefined;
      response = await this.timed('client_credentials', () =>
        oidc.clientCredentialsGrant(this.current, parameters, options),
      );
    } catch (err) {
      throw translateOAuthError(err, 'token');
    }
    return normalise(response, dpop !== undefined);
  }

  /** RFC 7009 §2.1. Throws on failure; the caller deletes local state regardless (our policy). */
  async revoke(token: string, hint: 'refresh_token' | 'access_token', dpop?: DpopKey): Promise<void> {
    if (!this.current.serverMetadata().revocation_endpoint) {
      throw new BffError('BFF_IDP_ERROR', { reason: 'no_revocation_endpoint' });
    }
    try {
      // openid-client takes no DPoP handle here; the fetch adds a proof for this call only.
      const run = () => oidc.tokenRevocation(this.current, token, { token_type_hint: hint });
      await this.timed('revocation', () =>
        dpop ? revocationProof.run({ key: dpop, nonces: this.nonces }, run) : run(),
      );
    } catch (err) {
      throw translateOAuthError(err, 'revoke');
    }
  }

  /**
   * RFC 7662 §2: introspect a service caller's opaque token, with our client authentication and, with
   * a client certificate, through the mTLS alias (RFC 8705 §5). Outages throw; `active` is the caller's.
   */
  async introspect(token: string): Promise<Record<string, unknown>> {
    if (!this.current.serverMetadata().introspection_endpoint) {
      throw new BffError('BFF_IDP_CAPABILITY_MISSING', { reason: 'no_introspection_endpoint' });
    }
    try {
      return (await this.timed('introspection', () =>
        oidc.tokenIntrospection(this.current, token),
      )) as Record<string, unknown>;
    } catch (err) {
      throw translateOAuthError(err, 'revoke');
    }
  }

  /** OIDC RP-Initiated Logout 1.0 §2; undefined when the IdP has no end_session_endpoint. */
  endSessionUrl(idTokenHint: string | undefined, postLogoutRedirectUri: string): URL | undefined {
    if (!this.current.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = {
      post_logout_redirect_uri: postLogoutRedirectUri,
      client_id: this.config.oidc.clientId,
    };
    if (idTokenHint) params.id_token_hint = idTokenHint;
    return oidc.buildEndSessionUrl(this.current, params);
  }
}

/**
 * Whether a failed call still got an answer from the IdP: an OAuth error response (RFC 6749 §5.2) or
 * a malformed one means the IdP is up; no answer, a timeout or a 5xx means it is not (readiness).
 */
function reachedIdp(err: unknown, endpoint: IdpEndpoint): boolean {
  const phase =
    endpoint === 'revocation' || endpoint === 'introspection'
      ? 'revoke'
      : endpoint === 'client_credentials'
        ? 'token'
        : endpoint;
  if (translateOAuthError(err, phase).code === 'BFF_IDP_UNAVAILABLE') return false;
  // oauth4webapi: ResponseBodyError carries `status`; a non-conform response is the error's `cause`.
  const status =
    err instanceof oidc.ResponseBodyError
      ? err.status
      : (err as { cause?: { status?: unknown } } | undefined)?.cause?.status;
  return !(typeof status === 'number' && status >= 500);
}

/** The URL of the IdP endpoint a client-authenticated call in flight is addressed to. */
const assertionAudience = new AsyncLocalStorage<string | undefined>();

/** The endpoint URL openid-client will call: the mTLS alias when configured (RFC 8705 §5). */
function endpointUrl(configuration: oidc.Configuration, endpoint: IdpEndpoint): string | undefined {
  const md = configuration.serverMetadata();
  const name = (
    {
      par: 'pushed_authorization_request_endpoint',
      token: 'token_endpoint',
      refresh: 'token_endpoint',
      client_credentials: 'token_endpoint',
      revocation: 'revocation_endpoint',
      introspection: 'introspection_endpoint',
    } as const
  )[endpoint];
  const aliases = configuration.clientMetadata().use_mtls_endpoint_aliases
    ? md.mtls_endpoint_aliases
    : undefined;
  const url = aliases?.[name] ?? md[name];
  return typeof url === 'string' ? url : undefined;
}

interface FetchHooks {
  onNonce?: (origin: string, nonce: string) => void;
}

/** The DPoP key (and nonces) of a revocation call in flight, for the fetch below. */
const revocationProof = new AsyncLocalStorage<{ key: DpopKey; nonces: DpopNonceCache | undefined }>();

/**
 * Every IdP call goes through here: records each `DPoP-Nonce` the AS sends (RFC 9449 §8.2: also on
 * success), and adds a proof to a revocation call made inside `revocationProof`.
 */
function dpopAwareFetch(base: IdpFetch, hooks: FetchHooks): IdpFetch {
  return async (url, init) => {
    const ctx = revocationProof.getStore();
    const headers = init.headers as Record<string, string>;
    if (ctx && !headers.dpop) {
      const target = new URL(url);
      const nonce = await ctx.nonces?.get(target.origin);
      headers.dpop = await ctx.key.proof({ htm: init.method ?? 'POST', htu: target, nonce });
    }
    const response = await base(url, init);
    const nonce = response.headers.get('dpop-nonce');
    if (nonce) hooks.onNonce?.(new URL(url).origin, nonce);
    return response;
  };
}

/**
 * A result this much younger than the refresh interval is reused: each frontend's timer fires once
 * per interval, and the frontends of one issuer then fetch once between them.
 */
function freshEnough(config: BffConfig): number {
  return (config.oidc.discoveryRefreshSec * 1000) / 2;
}

/** This client's configuration over the issuer's (shared) metadata, checked for what this client needs. */
async function discover(
  config: BffConfig,
  share: IssuerShare,
  maxAgeMs: number,
  fetchImpl: IdpFetch,
  keys: KeyRing,
): Promise<oidc.Configuration> {
  const clientAuth = clientAuthentication(config, keys);
  const metadata: Partial<oidc.ClientMetadata> = {
    // BCP-1 / OIDC-V7: pin the one accepted ID token alg, so `none` or RS256 in the IdP's list never matters.
    id_token_signed_response_alg: config.oidc.idTokenAlg,
  };
  if (config.signingKey && config.oidc.tokenAuthMethod === 'private_key_jwt') {
    metadata.token_endpoint_auth_signing_alg = config.signingKey.alg;
  }
  // RFC 8705 §5 / FAPI 2.0 §5.2.2.1: with a client certificate, use the IdP's mTLS aliases.
  if (config.tls.cert) metadata.use_mtls_endpoint_aliases = true;
  const server = await share.metadata(maxAgeMs);
  const missing = missingCapabilities(config, server as IdpMetadata);
  if (missing.length > 0) {
    throw new BffError('BFF_IDP_CAPABILITY_MISSING', { detail: missing.join('; '), reason: 'capability' });
  }
  const overridden = {
    ...server,
    ...(config.oidc.authorizationUrl ? { authorization_endpoint: config.oidc.authorizationUrl.href } : {}),
    ...(config.oidc.tokenUrl ? { token_endpoint: config.oidc.tokenUrl.href } : {}),
  };
  const configuration = new oidc.Configuration(overridden, config.oidc.clientId, metadata, clientAuth);
  if (config.oidc.allowInsecureIssuer) oidc.allowInsecureRequests(configuration);
  configuration[oidc.customFetch] = fetchImpl;
  configuration.timeout = Math.ceil(config.oidc.timeoutMs / 1000);
  // FAPI 2.0 Message Signing §5.6.2: verify ID token signatures even from the token endpoint.
  oidc.enableNonRepudiationChecks(configuration);
  return configuration;
}

function clientAuthentication(config: BffConfig, keys: KeyRing): oidc.ClientAuth {
  switch (config.oidc.tokenAuthMethod) {
    case 'private_key_jwt': {
      if (!config.signingKey)
        throw new BffError('BFF_CONFIG_INVALID', { detail: 'BFF_JWT_SIGNING_KEY missing' });
      const endpointAud = config.interop.clientAssertionAud === 'endpoint';
      const options = {
        [oidc.modifyAssertion]: (header: Record<string, unknown>, payload: Record<string, unknown>) => {
          // openid-client labels an Ed25519 signature with RFC 9864's fully-specified "Ed25519"; FAPI
          // 2.0 (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.4.1) and the
          // IdP's token_endpoint_auth_signing_alg_values_supported (checked at startup) name it
          // EdDSA (https://www.rfc-editor.org/rfc/rfc8037#section-3.1). Same signature, other label.
          if (header.alg === 'Ed25519') header.alg = 'EdDSA';
          // MS_BFF_CLIENT_ASSERTION_AUD=endpoint: the URL of the endpoint being called (RFC 7523 §3),
          // set per call by IdpClient.timed; the issuer remains the fallback outside a timed call.
          if (!endpointAud) return;
          const url = assertionAudience.getStore();
          if (url) payload.aud = url;
        },
      };
      // The key is looked up per call: the active key of the set changes on rotation (seed 002 §5).
      return (as, client, body, headers) => {
        const active = keys.signingKey() ?? config.signingKey;
        if (!active) throw new BffError('BFF_CONFIG_INVALID', { detail: 'no signing key' });
        return oidc.PrivateKeyJwt({ key: active.privateKey, kid: active.kid }, options)(
          as,
          client,
          body,
          headers,
        );
      };
    }
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(config.oidc.clientSecret);
    case 'client_secret_post':
      return oidc.ClientSecretPost(config.oidc.clientSecret);
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
      // RFC 8705 §2: the TLS client certificate authenticates; the body carries only client_id.
      return oidc.TlsClientAuth();
    default:
      throw new BffError('BFF_CONFIG_INVALID', { detail: `${config.oidc.tokenAuthMethod} is not available` });
  }
}

function normalise(
  response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  expectDpop: boolean,
): TokenSet {
  const tokenType = String(response.token_type).toLowerCase();
  if (tokenType !== 'bearer' && tokenType !== 'dpop') {
    throw new BffError('BFF_TOKEN_RESPONSE_INVALID', { reason: 'token_type' });
  }
  // https://www.rfc-editor.org/rfc/rfc9449#section-5: after a proof, anything but a DPoP token is a downgrade.
  if (expectDpop && tokenType !== 'dpop') {
    throw new BffError('BFF_TOKEN_RESPONSE_INVALID', {
      reason: 'dpop_downgrade',
      detail: 'a Bearer token was issued for a DPoP request',
    });
  }
  return {
    accessToken: response.access_token,
    tokenType,
    expiresIn: response.expiresIn() ?? DEFAULT_EXPIRES_IN_SEC,
    refreshToken: response.refresh_token,
    idToken: response.id_token,
    claims: response.claims() as Record<string, unknown> | undefined,
    scope: response.scope,
  };
}

function checkIdTokenFreshness(claims: Record<string, unknown>): void {
  const iat = claims.iat;
  const now = Math.floor(Date.now() / 1000);
  if (typeof iat !== 'number') throw new BffError('BFF_ID_TOKEN_INVALID', { reason: 'iat_missing' });
  if (iat > now + ID_TOKEN_FUTURE_SKEW_SEC)
    throw new BffError('BFF_ID_TOKEN_INVALID', { reason: 'iat_future' });
  if (iat < now - ID_TOKEN_MAX_AGE_SEC) throw new BffError('BFF_ID_TOKEN_INVALID', { reason: 'iat_too_old' });
}

function describe(err: unknown): { name?: string; error_code?: string; message?: string } {
  if (err instanceof BffError)
    return { name: err.name, error_code: err.code, message: err.detail ?? err.message };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return {};
}

/** An OAuth `invalid_request_object` error response (RFC 9101 §6.2 / RFC 9126 §2.3). */
function isInvalidRequestObject(err: unknown): boolean {
  return err instanceof oidc.ResponseBodyError && err.error === 'invalid_request_object';
}
