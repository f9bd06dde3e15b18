import type { CryptoKey, JWK } from 'jose';
import type { DecryptionKey, EncryptionKey, JweAlg, JweEnc } from './enc-keys.js';

export type Profile = 'production' | 'development';

export type TokenAuthMethod =
  | 'private_key_jwt'
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth';

/** FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA for every JWT created or accepted. */
export type FapiAlg = 'PS256' | 'ES256' | 'EdDSA';

export interface SigningKey {
  readonly alg: 'PS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** Public part only (no `d`, `p`, `q`, …), with kid, alg and use: 'sig'. */
  readonly publicJwk: Readonly<JWK>;
}

export type TokenPolicy = 'user' | 'none';

export type JarmMode = 'jwt' | 'query.jwt' | 'fragment.jwt' | 'form_post.jwt';

export interface RouteConfig {
  readonly name: string;
  readonly url: URL;
  readonly token: TokenPolicy;
  readonly timeoutMs: number;
  /**
   * Also accept service callers presenting their own DPoP-bound access token (RFC 9449 §7) instead
   * of a session cookie; the token's audience must be this value.
   */
  readonly serviceAudience: string | undefined;
  /** How service callers' tokens are checked: JWT against the IdP's JWKS, or RFC 7662 introspection. */
  readonly serviceTokens: 'jwt' | 'introspection';
  /** Present the client certificate to this upstream: certificate-bound access tokens (RFC 8705 §3). */
  readonly mtls: boolean;
}

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
  readonly oidc: {
    readonly issuer: URL;
    readonly clientId: string;
    readonly clientSecret: string | undefined;
    readonly scopes: string;
    readonly authorizationUrl: URL | undefined;
    readonly tokenUrl: URL | undefined;
    readonly tokenAuthMethod: TokenAuthMethod;
    readonly idTokenAlg: FapiAlg;
    readonly parEnabled: boolean;
    readonly dpopEnabled: boolean;
    readonly dpopAlg: 'ES256' | 'PS256';
    readonly timeoutMs: number;
    readonly discoveryRefreshSec: number;
    /** http:// allowed for this issuer (development, or host in MS_BFF_ALLOW_HTTP_HOSTS). */
    readonly allowInsecureIssuer: boolean;
  };
  readonly signingKey: SigningKey | undefined;
  /** Signed (and optionally encrypted) request objects, RFC 9101 (seed 002 §1). */
  readonly jar: {
    readonly enabled: boolean;
    readonly signingAlg: 'PS256' | 'ES256';
    readonly algsAllowed: readonly string[];
    readonly encryption:
      { readonly alg: JweAlg; readonly enc: JweEnc; readonly key: EncryptionKey } | undefined;
  };
  /** JWT-secured authorization responses (seed 002 §2, Appendix A). */
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
    readonly sameSite: 'lax' | 'strict';
    readonly idleTimeoutSec: number;
    readonly absoluteTimeoutSec: number;
    readonly loginTimeoutSec: number;
    readonly refreshSkewSec: number;
    readonly memoryMaxSessions: number;
  };
  readonly csrf: { readonly enabled: boolean; readonly headerName: string };
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
  readonly tls: TlsConfig;
  /** Secret for stateless DPoP nonces demanded from service callers; undefined: no challenge. */
  readonly dpopNonceSecret: Uint8Array | undefined;
  readonly routes: ReadonlyMap<string, RouteConfig>;
  readonly upstreamTimeoutMs: number;
  readonly postLogoutRedirect: string;
  readonly fipsMode: boolean;
  readonly logLevel: string;
  readonly observability: ObservabilityConfig;
  /** Loud startup warnings (unsafe-but-allowed settings), logged once at start. */
  readonly warnings: readonly string[];
}

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
