import { decodeProtectedHeader } from 'jose';
import type { BffConfig } from '../config/types.js';

/**
 * What the server did during a session's login, and since (refreshes): protocol facts only, no
 * token, code or key material. Kept in the sealed session record; shown by the development-only
 * session inspector so a newcomer can see each FAPI 2.0 step as it ran.
 */
export interface LoginTrace {
  /** Epoch ms of the completed callback. */
  readonly at: number;
  /** Pushed Authorization Request (RFC 9126): the browser carried only client_id and request_uri. */
  readonly par: boolean;
  /** PKCE method (RFC 7636); FAPI 2.0 §5.3.2.2-5 allows S256 only. */
  readonly pkce: 'S256';
  /** Signed request object (RFC 9101): its alg, and the JWE alg/enc when it was encrypted. */
  readonly jar: { readonly alg: string; readonly encryption: string | null } | null;
  /** How the authorization response came back: `query`, or the JARM mode with the algs seen. */
  readonly response: {
    readonly mode: string;
    readonly signedAlg: string | null;
    readonly encryption: string | null;
  };
  /** RFC 9207 `iss`: checked before anything else in every response. */
  readonly issChecked: true;
  /** Client authentication at the token endpoint. */
  readonly tokenEndpointAuth: { readonly method: string; readonly alg: string | null };
  /** The ID token's pinned signing alg. */
  readonly idTokenAlg: string;
  /** RFC 9449 DPoP: the session key's RFC 7638 thumbprint (the token's `cnf.jkt`); null for Bearer. */
  readonly dpopJkt: string | null;
  /** Token type the IdP issued. */
  readonly tokenType: string;
  readonly scope: string | null;
  /** Refreshes since the login, how many rotated the refresh token, and when the last one ran. */
  readonly refreshes: number;
  readonly rotations: number;
  readonly lastRefreshAt: number | null;
}

/** The trace of a login that just completed, from the configuration it ran under and what arrived. */
export function loginTrace(
  config: BffConfig,
  at: number,
  seen: {
    jarmResponse: string | undefined;
    dpopJkt: string | undefined;
    tokenType: string;
    scope: string | undefined;
  },
): LoginTrace {
  const jar = config.jar;
  const auth = config.oidc.tokenAuthMethod;
  return {
    at,
    par: config.oidc.parEnabled,
    pkce: 'S256',
    jar: jar.enabled
      ? {
          alg: jar.signingAlg,
          encryption: jar.encryption ? `${jar.encryption.alg} / ${jar.encryption.enc}` : null,
        }
      : null,
    response: seen.jarmResponse
      ? jarmSeen(config.jarm.mode, seen.jarmResponse)
      : { mode: 'query', signedAlg: null, encryption: null },
    issChecked: true,
    tokenEndpointAuth: {
      method: auth,
      alg: auth === 'private_key_jwt' ? (config.signingKey?.alg ?? null) : null,
    },
    idTokenAlg: config.oidc.idTokenAlg,
    dpopJkt: seen.dpopJkt ?? null,
    tokenType: seen.tokenType,
    scope: seen.scope ?? null,
    refreshes: 0,
    rotations: 0,
    lastRefreshAt: null,
  };
}

/** The JARM response's algs as they arrived (it was verified before this runs). */
function jarmSeen(mode: string, response: string): LoginTrace['response'] {
  const outer = decodeProtectedHeader(response);
  // RFC 7516 §9: five segments is a JWE (encrypted), three a JWS.
  const encrypted = response.split('.').length === 5;
  return {
    mode,
    signedAlg: encrypted ? null : (outer.alg ?? null),
    encryption: encrypted ? `${outer.alg} / ${outer.enc}` : null,
  };
}

/** The trace after a refresh: counted, and a rotation when the IdP sent a new refresh token. */
export function afterRefresh(
  trace: LoginTrace | undefined,
  at: number,
  rotated: boolean,
): LoginTrace | undefined {
  if (!trace) return undefined;
  return {
    ...trace,
    refreshes: trace.refreshes + 1,
    rotations: trace.rotations + (rotated ? 1 : 0),
    lastRefreshAt: at,
  };
}
