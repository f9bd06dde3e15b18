import type { default as OidcProvider } from 'oidc-provider';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MtlsAliasedEndpoint } from './mtls.js';

/** The dev IdP's public options and handle. */

export interface DevIdpUser {
  id: string;
  username: string;
  password: string;
  claims: Record<string, unknown>;
}

export interface DevIdpOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** oidc-provider client metadata, passed through unchanged. */
  clients: Record<string, unknown>[];
  /** Default: alice / 'alice-password'. */
  users?: DevIdpUser[];
  /** Default 300. */
  accessTokenTtlSec?: number;
  /** Wraps the IdP's HTTP handler (tests: delay or observe responses, e.g. a slow token endpoint). */
  wrapHandler?: (
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ) => (req: IncomingMessage, res: ServerResponse) => void;
  /** Default 86400. Also the IdP session and grant lifetime. */
  refreshTokenTtlSec?: number;
  /** Default true: `pushedAuthorizationRequests.requirePushedAuthorizationRequests`. */
  requirePar?: boolean;
  /**
   * When set, access tokens are JWTs (RFC 9068) with this audience, via resource indicators
   * (`defaultResource` + `useGrantedResource`). Must be an absolute URI (RFC 8707 §2).
   */
  resourceAudience?: string;
  /** Further resource servers (same scopes and token format), asked for by RFC 8707 `resource`. */
  moreResourceAudiences?: string[];
  /** Scopes the resource server defines (space separated); default 'api:read'. Only with resourceAudience. */
  resourceScope?: string;
  /** Clients (protected resources, e.g. the BFF) allowed to introspect other clients' tokens (RFC 7662 §2.1). */
  introspectors?: string[];
  /** DPoP (RFC 9449): require server nonces at PAR and token (default false). */
  dpop?: { requireNonce?: boolean };
  /** Enable JWE: encrypted request objects and encrypted JARM responses (the IdP gets enc keys). */
  encryption?: boolean;
  /** Koa middleware run before oidc-provider's own (tests: inspect requests as they arrive). */
  middleware?: Parameters<OidcProvider['use']>[0][];
  /** The IdP's private key set (oidc-provider `jwks`), e.g. to restart it with rotated keys; default generated. */
  jwks?: { keys: Record<string, unknown>[] };
  /** Default 'auto': first-party consent granted right after login. 'form' shows a consent page. */
  consent?: 'auto' | 'form';
  /**
   * Serve over HTTPS (issuer `https://<host>:<port>`) with this PEM certificate and key. Client
   * certificates are requested but not required (`requestCert: true, rejectUnauthorized: false`);
   * `ca` (PEM) decides whether a presented one counts as verified (`tls_client_auth`).
   */
  tls?: { cert: string; key: string; ca: string };
  /**
   * RFC 8705 mutual TLS (needs `tls`). A second HTTPS port serves the mTLS endpoint aliases (token,
   * PAR, revocation, introspection, userinfo), advertised as `mtls_endpoint_aliases`; introspection
   * is enabled too. Client certificates count only on that port unless `certificatesOnIssuerPort`,
   * so a client that calls the issuer's own token or PAR endpoint with mTLS auth or binding fails,
   * as the FAPI conformance suite fails it (https://www.rfc-editor.org/rfc/rfc8705#section-5; https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.2.2.1).
   */
  mtls?: {
    tlsClientAuth?: boolean;
    selfSignedTlsClientAuth?: boolean;
    certificateBoundAccessTokens?: boolean;
    /** Default false: also accept client certificates presented on the issuer's port. */
    certificatesOnIssuerPort?: boolean;
  };
  /** Called for every request the IdP receives, on either port (e.g. to prove a client used the aliases). */
  onRequest?: (request: DevIdpRequest) => void;
  /**
   * RFC 7591 dynamic registration and RFC 7592 management. `initialAccessToken`: the token a
   * registration request must carry (absent: open registration).
   */
  registration?: { initialAccessToken?: string };
}

/** What `onRequest` reports. */
export interface DevIdpRequest {
  /** The origin of the port it arrived on: the issuer's, or `mtlsOrigin`. */
  origin: string;
  method: string;
  /** Path and query. */
  url: string;
  /** True when it arrived on the mTLS alias port. */
  mtlsAlias: boolean;
  /** True when the TLS client presented a certificate on this connection. */
  clientCertificate: boolean;
  /** The W3C trace context the caller sent, if any. */
  traceparent: string | undefined;
}

export interface DevIdp {
  issuer: string;
  provider: OidcProvider;
  /** With `mtls`: the origin of the mTLS alias port, e.g. `https://127.0.0.1:40123`. */
  mtlsOrigin?: string;
  /** With `mtls`: the advertised `mtls_endpoint_aliases` (RFC 8705 §5). */
  mtlsEndpointAliases?: Readonly<Record<MtlsAliasedEndpoint, string>>;
  close(): Promise<void>;
}

export const DEFAULT_DEV_USERS: readonly DevIdpUser[] = Object.freeze([
  {
    id: 'alice',
    username: 'alice',
    password: 'alice-password',
    claims: {
      name: 'Alice Example',
      given_name: 'Alice',
      family_name: 'Example',
      preferred_username: 'alice',
      email: 'alice@example.com',
      email_verified: true,
    },
  },
]);
