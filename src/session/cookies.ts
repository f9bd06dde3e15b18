import { parse, serialize } from 'cookie';

/**
 * Cookie helpers over the `cookie` package (RFC 6265 parsing and serialisation: never by hand).
 * Every cookie we set is `__Host-`-compatible: Secure, Path=/, no Domain (RFC 6265bis §4.1.3.2),
 * and HttpOnly so scripts, including an XSS payload, cannot read it.
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
  options: { sameSite: 'lax' | 'strict' | 'none'; maxAgeSec?: number },
): string {
  return serialize(name, value, {
    httpOnly: true,
    secure: true,
    path: '/',
    sameSite: options.sameSite,
    ...(options.maxAgeSec === undefined ? {} : { maxAge: options.maxAgeSec }),
  });
}

export function clearedHostCookie(name: string, sameSite: 'lax' | 'strict' | 'none'): string {
  return serialize(name, '', {
    httpOnly: true,
    secure: true,
    path: '/',
    sameSite,
    maxAge: 0,
    expires: new Date(0),
  });
}
