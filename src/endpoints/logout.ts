import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BffError } from '../errors.js';
import { constantTimeEqual } from '../session/constant-time.js';
import { clearedHostCookie } from '../session/cookies.js';
import { checkCsrf } from '../session/csrf.js';
import type { LoadedSession } from '../session/session-manager.js';
import { type BffServices, servicesFor } from '../server/services.js';
import { currentSession } from '../session/current.js';

/**
 * POST /auth/logout (CSRF-protected) and GET /auth/logout?sid=… (a navigation; the session's sid
 * in the URL is the CSRF guard, as only the signed-in SPA can read it from /auth/session).
 * Both revoke the refresh token (RFC 7009), destroy the session, clear the cookie and send the
 * browser to the IdP's end_session_endpoint (OIDC RP-Initiated Logout 1.0 §2).
 */
export function registerLogout(app: FastifyInstance, root: BffServices): void {
  app.post('/auth/logout', async (request, reply) => {
    const s = servicesFor(request, root);
    const csrf = checkCsrf(request.headers, { ...s.config.csrf, publicOrigin: s.config.publicOrigin });
    if (csrf) throw csrf;
    const session = await currentSession(s, request);
    const target = await endSession(s, request, session);
    clearCookie(s, reply);
    // A fetch() cannot follow a cross-origin redirect usefully: JSON callers get the URL to navigate to.
    if (wantsJson(request)) return reply.header('cache-control', 'no-store').send({ redirectTo: target });
    return reply.code(302).header('cache-control', 'no-store').header('location', target).send();
  });

  app.get<{ Querystring: { sid?: string } }>(
    '/auth/logout',
    { config: { errorFormat: 'html' } },
    async (request, reply) => {
      const s = servicesFor(request, root);
      const session = await currentSession(s, request);
      if (session) {
        const sid = typeof request.query.sid === 'string' ? request.query.sid : '';
        if (!constantTimeEqual(sid, session.data.sid)) throw new BffError('BFF_LOGOUT_SID_MISMATCH');
      }
      const target = await endSession(s, request, session);
      clearCookie(s, reply);
      return reply.code(302).header('cache-control', 'no-store').header('location', target).send();
    },
  );
}

async function endSession(
  s: BffServices,
  request: FastifyRequest,
  session: LoadedSession | undefined,
): Promise<string> {
  const postLogout = new URL(s.config.postLogoutRedirect, s.config.publicUrl).href;
  if (!session) return postLogout;
  // Local state goes regardless of the revocation result (our policy: a dead IdP must not keep a session alive); a failed revocation is logged and counted.
  // What the store held when the session was removed: a refresh that finished after `session` was
  // read has stored a rotated refresh token, and that one is the token to revoke. A refresh still
  // in flight finds no session to store its result in and revokes its own (proxy/access-token.ts).
  const removed = (await s.sessions.take(session.key)) ?? session;
  s.metrics.session('ended', s.frontend);
  const token = removed.data.refreshToken ?? removed.data.accessToken;
  const hint = removed.data.refreshToken ? 'refresh_token' : 'access_token';
  let revocation: 'success' | 'failure' | 'skipped' = 'skipped';
  if (s.idp.metadata.revocation_endpoint) {
    try {
      await s.idp.revoke(
        token,
        hint,
        removed.data.dpop ? await s.dpopKeys.get(removed.data.dpop) : undefined,
      );
      revocation = 'success';
    } catch (err) {
      revocation = 'failure';
      request.log.warn(
        { code: (err as BffError).code, reason: (err as BffError).reason },
        'token revocation at logout failed',
      );
    }
  }
  s.metrics.revocation(revocation, s.frontend);
  s.audit.emit('logout', { sessionKey: session.key, sub: session.data.sub, revocation });
  return s.idp.endSessionUrl(session.data.idToken, postLogout)?.href ?? postLogout;
}

function clearCookie(s: BffServices, reply: FastifyReply): void {
  reply.header(
    'set-cookie',
    clearedHostCookie(s.config.session.cookieName, s.config.session.sameSite, s.config.session.cookiePath),
  );
}

function wantsJson(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('application/json');
}
