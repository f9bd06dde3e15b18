import { readCookie } from './cookies.js';
import type { LoadedSession, SessionManager } from './session-manager.js';

/**
 * The session named by a request's session cookie, or undefined; store outages propagate (503).
 * Shared by `/auth/**` handlers and the API proxy, so it lives with sessions, not with either.
 */
export function currentSession(
  s: {
    readonly sessions: Pick<SessionManager, 'load'>;
    readonly config: { readonly session: { readonly cookieName: string } };
  },
  request: { readonly headers: { readonly cookie?: string | undefined } },
): Promise<LoadedSession | undefined> {
  return s.sessions.load(readCookie(request.headers.cookie, s.config.session.cookieName));
}

/** The request's session when it is at hand without waiting (SessionManager.cached), else undefined. */
export function cachedSession(
  s: {
    readonly sessions: Pick<SessionManager, 'cached'>;
    readonly config: { readonly session: { readonly cookieName: string } };
  },
  request: { readonly headers: { readonly cookie?: string | undefined } },
): LoadedSession | undefined {
  return s.sessions.cached(readCookie(request.headers.cookie, s.config.session.cookieName));
}
