import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BffError } from '../errors.js';
import { hostCookie } from '../session/cookies.js';
import { checkCsrf } from '../session/csrf.js';
import type { LoadedSession } from '../session/session-manager.js';
import { type BffServices, servicesFor } from '../server/services.js';
import { currentSession } from '../session/current.js';

/**
 * The session inspector, development profile only (the demo SPA shows it): what the server did for
 * this session and holds for it, as facts about tokens — never a token, code, key or cookie value.
 *
 * GET /auth/inspect — the login's steps (PAR, JAR, response mode and JARM algs, client
 * authentication, DPoP key thumbprint, refreshes and rotations), the session cookie's attributes as
 * the server sets them, token expiries, and where the IdP's logout (which sends the back-channel
 * logout token) is.
 * POST /auth/inspect/refresh — CSRF-protected: refresh now, through the same single-flight,
 * cluster-locked path as a refresh before expiry.
 */
export function registerInspect(app: FastifyInstance, root: BffServices): void {
  app.get('/auth/inspect', async (request, reply) => {
    const s = servicesFor(request, root);
    const session = await required(s, request);
    return reply.header('cache-control', 'no-store').send(view(s, session));
  });

  app.post('/auth/inspect/refresh', async (request, reply) => {
    const s = servicesFor(request, root);
    const csrf = checkCsrf(request.headers, { ...s.config.csrf, publicOrigin: s.config.publicOrigin });
    if (csrf) throw csrf;
    const session = await required(s, request);
    const refreshed = await s.tokens.ensureFresh(session, true);
    return reply.header('cache-control', 'no-store').send(view(s, refreshed));
  });
}

async function required(s: BffServices, request: FastifyRequest): Promise<LoadedSession> {
  const session = await currentSession(s, request);
  if (!session) throw new BffError('BFF_SESSION_REQUIRED');
  return session;
}

function view(s: BffServices, session: LoadedSession) {
  const { data } = session;
  const now = s.clock();
  const endSession = s.idp.metadata.end_session_endpoint;
  let logoutEverywhere: string | null = null;
  if (typeof endSession === 'string') {
    // OIDC RP-Initiated Logout 1.0 §2 at the IdP itself: the IdP ends its session and notifies every
    // client by back-channel logout token (OIDC Back-Channel Logout 1.0 §2.5); the BFF takes no part.
    const url = new URL(endSession);
    url.searchParams.set('client_id', s.config.oidc.clientId);
    url.searchParams.set(
      'post_logout_redirect_uri',
      new URL(s.config.postLogoutRedirect, s.config.publicUrl).href,
    );
    logoutEverywhere = url.href;
  }
  return {
    serverTime: new Date(now).toISOString(),
    login: data.trace
      ? {
          ...data.trace,
          at: new Date(data.trace.at).toISOString(),
          lastRefreshAt: data.trace.lastRefreshAt ? new Date(data.trace.lastRefreshAt).toISOString() : null,
        }
      : null,
    cookie: {
      name: s.config.session.cookieName,
      // The exact header the server sends, with the value (an opaque MAC'd ticket) left out.
      setCookie: hostCookie(s.config.session.cookieName, 'VALUE', {
        sameSite: s.config.session.sameSite,
        path: s.config.session.cookiePath,
      }).replace(/^[^=]+=VALUE/, `${s.config.session.cookieName}=…`),
    },
    tokens: {
      tokenType: data.tokenType,
      accessTokenExpiresAt: new Date(data.accessTokenExpiresAt).toISOString(),
      refreshToken: data.refreshToken !== undefined,
      idToken: data.idToken !== undefined,
      dpopJkt: data.dpop?.jkt ?? null,
    },
    session: {
      createdAt: new Date(data.createdAt).toISOString(),
      idleExpiresAt: new Date(
        Math.min(now + s.config.session.idleTimeoutSec * 1000, data.absoluteExpiresAt),
      ).toISOString(),
      absoluteExpiresAt: new Date(data.absoluteExpiresAt).toISOString(),
    },
    logoutEverywhere,
  };
}
