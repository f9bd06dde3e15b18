/**
 * The typed, validated, deep-frozen configuration tree (built by load.ts from variables.ts).
 *
 * Shape: settings that belong to one browser application (its OIDC client, scopes, flags, cookie,
 * routes, public URL) are grouped so that a `frontends` list of the MS_BFF_CONFIG file can give each
 * frontend its own copy (see `FrontendSettings`); the environment alone fills the single frontend
 * that the top level of `BffConfig` describes today. Process-wide settings (issuer, listener,
 * store, TLS trust, timeouts) stay at the top level.
 */
import type { InteropConfig } from './rules/interop.js';
import type { CryptoKey, JWK } from 'jose';
import type {
  FapiAlg,
  JarmMode,
  JweAlg,
  JweEnc,
  LogLevel,
  Profile,
  LoginParameter,
  ResponseMode,
  SameSite,
  ServiceTokenCheck,
  SigningAlg,
  TokenAuthMethod,
  TokenPolicy,
} from './enums.js';

export type { FapiAlg, JarmMode, JweAlg, JweEnc, Profile, SigningAlg, TokenAuthMethod, TokenPolicy };

export interface SigningKey {
  readonly alg: SigningAlg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** Public part only (no `d`, `p`, `q`, …), with kid, alg and use: 'sig'. */
  readonly publicJwk: Readonly<JWK>;
}

/** The IdP's public key that encrypts our request objects. */
export interface EncryptionKey {
  readonly key: CryptoKey;
  readonly kid: string | undefined;
}

/** Our private key that decrypts JARM responses. */
export interface DecryptionKey {
  readonly key: CryptoKey;
  readonly kid: string;
  /** Public part, published in our JWKS with use 'enc'. */
  readonly publicJwk: Readonly<JWK>;
}

export interface RouteConfig {
  readonly name: string;
  readonly url: URL;
  readonly token: TokenPolicy;
  /**
   * RFC 8707 §2 resource indicator for this route's tokens: the user's token is exchanged (refresh
   * grant with `resource`) for one restricted to this audience, and client tokens are asked for it.
   */
  readonly resource: string | undefined;
  /** Scope of the client-credentials token (`client`, `user-or-client`); undefined: the IdP's default. */
  readonly clientScope: string | undefined;
  readonly timeoutMs: number;
  /**
   * Also accept service callers presenting their own DPoP-bound access token (RFC 9449 §7) instead
   * of a session cookie; the token's audience must be this value.
   */
  readonly serviceAudience: string | undefined;
  /** How service callers' tokens are checked: JWT against the IdP's JWKS, or RFC 7662 introspection. */
  readonly serviceTokens: ServiceTokenCheck;
  /** Present the client certificate to this upstream: certificate-bound access tokens (RFC 8705 §3). */
  readonly mtls: boolean;
  /** Upstream response headers passed to the browser beyond the default allowlist (lower case). */
  readonly responseHeaders: readonly string[];
  /**
   * Caching of responses made with a credential: `no-store` (default: `private, no-store`), or
   * `private` (the upstream's freshness, made private, with `Vary: Cookie`).
   */
  readonly cache: 'no-store' | 'private';
  /**
   * Also proxy WebSocket upgrades (RFC 6455 §4) on this route: authenticated by the session cookie
   * and an exact Origin check, with the route's token on the upstream handshake.
   */
  readonly websocket: boolean;
  /** Close this route's WebSockets when the access token they were opened with expires. */
  readonly closeOnTokenExpiry: boolean;
  /** false: a kill switch; the route answers BFF_ROUTE_DISABLED (503) until a reload turns it on. */
  readonly enabled?: boolean;
}

/**
 * One browser application the BFF serves (the MS_BFF_CONFIG file's `frontends`; the environment
 * alone describes one, `default`). Requests are matched by Host (without port) and path prefix.
 */
export interface FrontendConfig {
  readonly name: string;
  /** Lower-case host name; undefined: any host. */
  readonly host: string | undefined;
  /** `/`, or `/segment/…/`: the frontend serves `<pathPrefix>auth/**` and `<pathPrefix>api/**`. */
  readonly pathPrefix: string;
  /**
   * Prefix of this frontend's keys in the shared store ('' for the environment's one frontend, so
   * its sessions are where they always were): a session of one frontend is absent for another.
   */
  readonly storeNamespace: string;
  /** The frontend's whole view: process-wide settings plus its own client, cookie, flags, routes. */
  readonly config: BffConfig;
}

/**
 * How the SPA is served (src/spa/): its built files from a directory, or streamed from a frontend
 * origin; undefined in `BffConfig.spa` when neither is configured (the BFF then serves no pages).
 */
export type SpaConfig = (
  | {
      /** The directory's real path (symlinks resolved): files must resolve inside it. */
      readonly kind: 'static';
      readonly dir: string;
    }
  | {
      /** The origin and base path (ending in `/`) that request paths are resolved against. */
      readonly kind: 'origin';
      readonly url: URL;
    }
) & {
  /** Content-Security-Policy and the other security headers of every SPA response, lower-case names. */
  readonly headers: readonly (readonly [name: string, value: string])[];
};

/** TLS client identity and trust for outgoing connections (RFC 8705). */
export interface TlsConfig {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
}

export interface BffConfig {
  readonly profile: Profile;
  readonly publicUrl: URL;
  /** `scheme://host:port` of publicUrl, compared against Origin headers. */
  readonly publicOrigin: string;
  readonly redirectUri: string;
  readonly host: string;
  readonly port: number;
  readonly allowHttpHosts: readonly string[];
  /**
   * Peers (addresses, CIDRs, loopback/linklocal/uniquelocal) whose X-Forwarded-For/-Proto/-Host are
   * believed (Fastify trustProxy); empty: none. The client address upstreams and rate limits see.
   */
  readonly trustedProxies: readonly string[];
  readonly oidc: {
    readonly issuer: URL;
    readonly clientId: string;
    readonly clientSecret: string | undefined;
    /** Registered with `fapi-bff register` (RFC 7591): the file and the RFC 7592 management URI. */
    readonly registration: { readonly file: string; readonly clientUri: string | undefined } | undefined;
    readonly scopes: string;
    readonly authorizationUrl: URL | undefined;
    readonly tokenUrl: URL | undefined;
    readonly tokenAuthMethod: TokenAuthMethod;
    readonly idTokenAlg: FapiAlg;
    readonly parEnabled: boolean;
    /** Response mode of plain (non-JARM) authorization responses. */
    readonly responseMode: ResponseMode;
    /** Authorization request parameters /auth/login passes through from the SPA. */
    readonly loginParamsAllowed: readonly LoginParameter[];
    readonly dpopEnabled: boolean;
    readonly dpopAlg: 'ES256' | 'PS256' | 'EdDSA';
    readonly timeoutMs: number;
    readonly discoveryRefreshSec: number;
    /** http:// allowed for this issuer (development, or host in MS_BFF_ALLOW_HTTP_HOSTS). */
    readonly allowInsecureIssuer: boolean;
  };
  readonly signingKey: SigningKey | undefined;
  /** Key sets re-read at runtime (file or directory paths; undefined when given inline), seed 002 §5. */
  readonly keys: {
    readonly prepublishSec: number;
    readonly signingPath: string | undefined;
    readonly jarmPath: string | undefined;
  };
  /** Signed (and optionally encrypted) request objects, https://www.rfc-editor.org/rfc/rfc9101. */
  readonly jar: {
    readonly enabled: boolean;
    readonly signingAlg: SigningAlg;
    readonly algsAllowed: readonly string[];
    /** `key`: the BFF_JAR_ENC_KEY pin; absent, the IdP's current enc key from its JWKS is used. */
    readonly encryption:
      { readonly alg: JweAlg; readonly enc: JweEnc; readonly key: EncryptionKey | undefined } | undefined;
  };
  /** JWT-secured authorization responses, https://openid.net/specs/oauth-v2-jarm-final.html. */
  readonly jarm: {
    readonly enabled: boolean;
    readonly mode: JarmMode;
    /** Signing algs accepted on JARM responses (FAPI 2.0 §5.4.1). */
    readonly algsAllowed: readonly string[];
    readonly encryption:
      { readonly alg: JweAlg; readonly enc: JweEnc; readonly key: DecryptionKey } | undefined;
  };
  readonly session: {
    readonly keys: readonly Uint8Array[];
    readonly cookieName: string;
    /** `/`, or the frontend's pathPrefix (then the cookie is `__Secure-`, not `__Host-`). */
    readonly cookiePath: string;
    readonly sameSite: SameSite;
    readonly idleTimeoutSec: number;
    readonly absoluteTimeoutSec: number;
    readonly loginTimeoutSec: number;
    readonly refreshSkewSec: number;
    readonly memoryMaxSessions: number;
  };
  readonly csrf: { readonly enabled: boolean; readonly headerName: string };
  /** @deprecated standalone URL only; use `redis`. */
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
  /** The Redis session store (any topology); undefined: the in-memory store. */
  readonly redis: RedisConfig | undefined;
  /** Worker processes sharing the port (MS_BFF_WORKERS; 1: no cluster primary). */
  readonly workers: number;
  readonly tls: TlsConfig;
  /** Secret for stateless DPoP nonces demanded from service callers; undefined: no challenge. */
  readonly dpopNonceSecret: Uint8Array | undefined;
  readonly routes: ReadonlyMap<string, RouteConfig>;
  readonly upstreamTimeoutMs: number;
  /** Period of a proxied WebSocket's check that its session still exists (ended on another instance). */
  readonly websocketRecheckSec: number;
  /** GET /readyz answers 503 while the IdP is down (observability/readiness.ts). */
  readonly readyRequiresIdp: boolean;
  /** Minimum spacing of refreshes triggered by an upstream 401 invalid_token, per session. */
  readonly refreshOn401MinIntervalSec: number;
  readonly postLogoutRedirect: string;
  /** The SPA this frontend serves (MS_BFF_STATIC_DIR or MS_BFF_FRONTEND_URL); undefined: none. */
  readonly spa: SpaConfig | undefined;
  readonly fipsMode: boolean;
  readonly logLevel: LogLevel;
  readonly observability: ObservabilityConfig;
  /** Tolerances for known IdP deviations (interop switches, MS_BFF_IDP_PRESET). */
  readonly interop: InteropConfig;
  /** Loud startup warnings (unsafe-but-allowed settings), logged once at start. */
  readonly warnings: readonly string[];
  /**
   * Every frontend (at least one). The top level of this object is the first frontend's view; a
   * frontend's own `config` has an empty `frontends`.
   */
  readonly frontends: readonly FrontendConfig[];
}

/**
 * The settings each frontend of the config file will own (the multi-application issue): its OIDC
 * client, scopes and flags, cookie and session lifetimes, routes and URLs. The environment alone
 * describes exactly one frontend: the top level of `BffConfig`.
 */
export type FrontendSettings = Pick<
  BffConfig,
  | 'publicUrl'
  | 'publicOrigin'
  | 'redirectUri'
  | 'signingKey'
  | 'jar'
  | 'jarm'
  | 'routes'
  | 'postLogoutRedirect'
  | 'spa'
> & {
  readonly oidc: Pick<
    BffConfig['oidc'],
    | 'clientId'
    | 'clientSecret'
    | 'scopes'
    | 'tokenAuthMethod'
    | 'idTokenAlg'
    | 'parEnabled'
    | 'responseMode'
    | 'dpopEnabled'
    | 'dpopAlg'
  >;
  readonly session: Pick<
    BffConfig['session'],
    'cookieName' | 'sameSite' | 'idleTimeoutSec' | 'absoluteTimeoutSec'
  >;
};

/** Admin listener, logs, audit and abuse limits. */
export interface ObservabilityConfig {
  /** A separate listener for /metrics and the detailed readiness report; port undefined: none. */
  readonly admin: { readonly host: string; readonly port: number | undefined };
  /** One log line per request (method, path without query, status, duration). */
  readonly accessLog: boolean;
  /** `pretty`: readable one-line logs (development); `json`: pino JSON lines. */
  readonly logFormat: 'json' | 'pretty';
  /** How audit lines show the subject: as is, or as an HMAC-SHA-256 keyed by the session key. */
  readonly auditSub: 'plain' | 'hash';
  /** Per client address per minute (0: off), and the global PAR budget per minute across instances. */
  readonly limits: {
    readonly loginPerMinute: number;
    readonly callbackPerMinute: number;
    readonly backchannelPerMinute: number;
    readonly parBudgetPerMinute: number;
    readonly loginTransactionsPerBrowser: number;
  };
}

export interface RedisEndpointConfig {
  readonly host: string;
  readonly port: number;
}

export interface RedisConfig {
  readonly topology:
    | { readonly kind: 'standalone'; readonly url: string }
    | {
        readonly kind: 'sentinel';
        readonly sentinels: readonly RedisEndpointConfig[];
        readonly masterName: string;
        readonly sentinelUsername: string | undefined;
        readonly sentinelPassword: string | undefined;
      }
    | { readonly kind: 'cluster'; readonly nodes: readonly RedisEndpointConfig[] };
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls:
    | {
        readonly ca: string | undefined;
        readonly cert: string | undefined;
        readonly key: string | undefined;
        readonly servername: string | undefined;
      }
    | undefined;
  readonly keyPrefix: string;
  readonly durableReplicas: number;
}
