import type { RouteConfig } from '../config/types.js';
import { BffError } from '../errors.js';
import type { DpopKey } from '../dpop/client.js';
import type { BffServices } from '../server/services.js';
import { cachedSession, currentSession } from '../session/current.js';
import type { LoadedSession } from '../session/session-manager.js';
import type { UpstreamDpop, UpstreamRefresh } from './forward.js';

/** What goes upstream with a proxied call: nothing, a Bearer header, or a DPoP-bound token and its proofs. */
export interface UpstreamCredential {
  readonly kind: 'user' | 'client' | 'none';
  readonly authorization: string | undefined;
  readonly dpop: UpstreamDpop | undefined;
  /** For the user's token: renew it when the upstream refuses it as invalid_token (RFC 6750 §3.1). */
  readonly refresh?: UpstreamRefresh | undefined;
  /** The (fresh) session whose token this is, for holders that outlive the request (WebSockets). */
  readonly session?: LoadedSession | undefined;
  /** Epoch ms: when a per-resource token expires (otherwise the session's main token is the one sent). */
  readonly expiresAt?: number | undefined;
}

/** The parts of an incoming request the policy reads (framework-free: proxy/ is not the edge). */
export interface CredentialRequest {
  readonly headers: { readonly cookie?: string | undefined };
  readonly log: { warn(obj: object, msg: string): void };
}

const NONE: UpstreamCredential = { kind: 'none', authorization: undefined, dpop: undefined };

/**
 * The route's token policy (Duende BFF's RequiredTokenType): `user` needs a session; `client` always
 * sends the BFF's own client-credentials token; `user-or-client` and `user-or-none` send the user's
 * token when there is a session and otherwise the client's token or nothing; `none` sends nothing.
 * A cookie that opens no session counts as no session here (it is answered like no cookie).
 *
 * Not a promise when nothing has to be awaited (no credential; or the session at hand in memory,
 * its token fresh and any DPoP key imported): the usual API call then makes no promise here.
 */
export function upstreamCredential(
  s: BffServices,
  route: RouteConfig,
  request: CredentialRequest,
): UpstreamCredential | Promise<UpstreamCredential> {
  if (route.token === 'none') return NONE;
  if (route.token !== 'client' && route.resource === undefined) {
    const cached = cachedSession(s, request);
    if (cached && s.tokens.isFresh(cached)) {
      const user = userCredential(s, route, request, cached);
      if (!(user instanceof Promise))
        return { ...user, refresh: userRefresh(s, route, request, cached), session: cached };
    }
  }
  return loadCredential(s, route, request);
}

async function loadCredential(
  s: BffServices,
  route: RouteConfig,
  request: CredentialRequest,
): Promise<UpstreamCredential> {
  if (route.token !== 'client') {
    const loaded = await currentSession(s, request);
    if (loaded) {
      // Its own token per resource: the session's main token is neither sent nor refreshed for it.
      if (route.resource !== undefined) return resourceCredential(s, route, route.resource, request, loaded);
      // A fresh token (nearly every call) needs no refresh and no extra await.
      const session = s.tokens.isFresh(loaded) ? loaded : await s.tokens.ensureFresh(loaded);
      const refresh = userRefresh(s, route, request, session);
      const user = userCredential(s, route, request, session);
      return { ...(user instanceof Promise ? await user : user), refresh, session };
    }
    if (route.token === 'user') throw new BffError('BFF_SESSION_REQUIRED');
    if (route.token === 'user-or-none') return NONE;
  }
  const token = await s.clientTokens.get({ scope: route.clientScope, resource: route.resource });
  if (token.tokenType === 'dpop' && token.dpopKey) {
    return withDpop(s, route, request, 'client', token.accessToken, token.dpopKey);
  }
  return bearer('client', token.accessToken);
}

/** Renewal of the session's main token when the upstream refuses it (RFC 6750 §3.1). */
function userRefresh(
  s: BffServices,
  route: RouteConfig,
  request: CredentialRequest,
  session: LoadedSession,
): UpstreamRefresh {
  return {
    renew: async () => {
      const renewed = await s.tokens.renewRejected(session, s.config.refreshOn401MinIntervalSec);
      return renewed ? await userCredential(s, route, request, renewed) : undefined;
    },
    skipped: (reason) => s.metrics.upstreamInvalidToken(reason),
  };
}

/**
 * The user's token for the route's RFC 8707 resource (https://www.rfc-editor.org/rfc/rfc8707#section-2.2):
 * a separate, audience-restricted token per resource, kept in the session (AccessTokens.forResource).
 */
async function resourceCredential(
  s: BffServices,
  route: RouteConfig,
  resource: string,
  request: CredentialRequest,
  loaded: LoadedSession,
): Promise<UpstreamCredential> {
  const fresh = s.tokens.freshResourceToken(loaded, resource);
  const grant = fresh ? { session: loaded, token: fresh } : await s.tokens.forResource(loaded, resource);
  const refresh: UpstreamRefresh = {
    renew: async () => {
      const renewed = await s.tokens.renewRejectedResource(
        grant.session,
        resource,
        grant.token.accessToken,
        s.config.refreshOn401MinIntervalSec,
      );
      return renewed ? await userCredential(s, route, request, renewed.session, renewed.token) : undefined;
    },
    skipped: (reason) => s.metrics.upstreamInvalidToken(reason),
  };
  const user = await userCredential(s, route, request, grant.session, grant.token);
  return { ...user, refresh, session: grant.session, expiresAt: grant.token.expiresAt };
}

/** Synchronous unless a DPoP key still has to be imported (once per session and process). */
function userCredential(
  s: BffServices,
  route: RouteConfig,
  request: CredentialRequest,
  session: LoadedSession,
  token: { accessToken: string; tokenType: 'bearer' | 'dpop' } = session.data,
): UpstreamCredential | Promise<UpstreamCredential> {
  const stored = session.data.dpop;
  const accessToken = token.accessToken;
  if (stored && token.tokenType === 'dpop') {
    const key = s.dpopKeys.imported(stored);
    if (key) return withDpop(s, route, request, 'user', accessToken, key);
    return s.dpopKeys.get(stored).then((k) => withDpop(s, route, request, 'user', accessToken, k));
  }
  return bearer('user', accessToken);
}

/** RFC 6750 §2.1 (FAPI 2.0 §5.3.3.1-3: only ever in the Authorization header). */
function bearer(kind: 'user' | 'client', accessToken: string): UpstreamCredential {
  return { kind, authorization: `Bearer ${accessToken}`, dpop: undefined };
}

/** RFC 9449 §7: a fresh proof per request, with `ath`, and the upstream's nonce when it asks for one. */
function withDpop(
  s: BffServices,
  route: RouteConfig,
  request: CredentialRequest,
  kind: 'user' | 'client',
  accessToken: string,
  key: DpopKey,
): UpstreamCredential {
  return {
    kind,
    authorization: undefined,
    dpop: {
      accessToken,
      proof: (htm, htu, nonce) => key.proof({ htm, htu, nonce, accessToken }),
      nonce: (origin) => s.dpopNonces.get(origin),
      rememberNonce: (origin, nonce) => void s.dpopNonces.set(origin, nonce),
      retrySkipped: () => {
        s.metrics.dpopRetrySkipped();
        request.log.warn(
          { route: route.name },
          'DPoP nonce retry skipped: the request body cannot be replayed',
        );
      },
    },
  };
}
