import { parse, serialize } from 'cookie';

/**
 * Cookie helpers over the `cookie` package (RFC 6265 parsing and serialisation: never by hand).
 * Every cookie we set is Secure, HttpOnly (scripts, including an XSS payload, cannot read it) and
 * has no Domain: `__Host-`-compatible with Path=/ (RFC 6265bis §4.1.3.2), or, for a frontend served
 * under a path prefix, `__Secure-` with Path=<pathPrefix> (§4.1.3.1).
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  try {
    return parse(header)[name];
  } catch {
    return undefined;
  }
}

export function hostCookie(
  name: string,
  value: string,
  options: { sameSite: 'lax' | 'strict' | 'none'; maxAgeSec?: number; path?: string },
): string {
  return serialize(name, value, {
    httpOnly: true,
    secure: true,
    path: options.path ?? '/',
    sameSite: options.sameSite,
    ...(options.maxAgeSec === undefined ? {} : { maxAge: options.maxAgeSec }),
  });
}

export function clearedHostCookie(name: string, sameSite: 'lax' | 'strict' | 'none', path = '/'): string {
  return serialize(name, '', {
    httpOnly: true,
    secure: true,
    path,
    sameSite,
    maxAge: 0,
    expires: new Date(0),
  });
}
