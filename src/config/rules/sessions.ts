import { randomBytes } from 'node:crypto';
import { parseSessionKeys } from '../keys.js';
import type { BffConfig } from '../types.js';
import type { RuleContext } from './context.js';

let ephemeralKey: Uint8Array | undefined;

/**
 * Sessions and their cookie: keys (required in production, ephemeral with a warning in
 * development), a `__Host-` cookie name (https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1.3.2),
 * CSRF protection on in production, an absolute lifetime no shorter than the idle one.
 */
export function sessionSettings(ctx: RuleContext): {
  session: BffConfig['session'];
  csrf: BffConfig['csrf'];
} {
  const v = ctx.values;
  let keys: Uint8Array[] = [];
  if (v.MS_BFF_SESSION_KEYS === undefined) {
    if (ctx.production)
      ctx.problem(
        'MS_BFF_SESSION_KEYS',
        'is required in production (comma-separated base64url 32-byte keys)',
      );
    else {
      // One ephemeral key per process: every frontend, and every reload, seals with the same one.
      ephemeralKey ??= new Uint8Array(randomBytes(32));
      keys = [ephemeralKey];
      ctx.warn('MS_BFF_SESSION_KEYS is not set: using an ephemeral key; sessions end on restart');
    }
  } else {
    const parsed = parseSessionKeys(v.MS_BFF_SESSION_KEYS);
    for (const p of parsed.problems) ctx.problem('MS_BFF_SESSION_KEYS', p);
    keys = parsed.keys;
  }

  const cookieName = v.MS_BFF_COOKIE_NAME;
  // A frontend served under a path prefix scopes its cookie to that path, which __Host- forbids:
  // it is __Secure- (RFC 6265bis §4.1.3.1) with Path=<pathPrefix>.
  const cookiePath = ctx.pathPrefix;
  if (cookiePath === '/' && !cookieName.startsWith('__Host-')) {
    ctx.problem(
      'MS_BFF_COOKIE_NAME',
      'must start with __Host- (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2)',
    );
  }
  if (cookiePath !== '/' && !cookieName.startsWith('__Secure-')) {
    ctx.problem(
      'MS_BFF_COOKIE_NAME',
      `must start with __Secure- under pathPrefix ${cookiePath} (Path=${cookiePath}; __Host- needs Path=/, RFC 6265bis §4.1.3.2)`,
    );
  }
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName))
    ctx.problem('MS_BFF_COOKIE_NAME', 'is not a valid cookie name');

  if (!v.MS_BFF_CSRF_ENABLED) {
    if (ctx.production)
      ctx.problem('MS_BFF_CSRF_ENABLED', 'disabling CSRF protection is refused in production');
    else ctx.warn('MS_BFF_CSRF_ENABLED=false: cross-site requests are not refused');
  }

  if (v.MS_BFF_SESSION_ABSOLUTE_TIMEOUT < v.MS_BFF_SESSION_IDLE_TIMEOUT) {
    ctx.problem('MS_BFF_SESSION_ABSOLUTE_TIMEOUT', 'must not be shorter than MS_BFF_SESSION_IDLE_TIMEOUT');
  }
  return {
    session: {
      keys,
      cookieName,
      cookiePath,
      sameSite: v.MS_BFF_COOKIE_SAMESITE,
      idleTimeoutSec: v.MS_BFF_SESSION_IDLE_TIMEOUT,
      absoluteTimeoutSec: v.MS_BFF_SESSION_ABSOLUTE_TIMEOUT,
      loginTimeoutSec: v.MS_BFF_LOGIN_TIMEOUT,
      refreshSkewSec: v.MS_BFF_REFRESH_SKEW,
      memoryMaxSessions: v.MS_BFF_MEMORY_MAX_SESSIONS,
    },
    csrf: { enabled: v.MS_BFF_CSRF_ENABLED, headerName: v.MS_BFF_CSRF_HEADER.toLowerCase() },
  };
}
