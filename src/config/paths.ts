/** Same-origin relative path: one leading slash, no scheme, no `//` or `/\` (open-redirect tricks). */
export function isSafeRelativePath(value: string): boolean {
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return false;
  // Refusing control characters (header injection) is the point.
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return false;
  try {
    const base = new URL('https://bff.invalid');
    return new URL(value, base).origin === base.origin;
  } catch {
    return false;
  }
}

/**
 * A same-origin relative path in the form it can be sent in a `Location` header: the WHATWG URL
 * serialisation (RFC 3986 §2.1 percent-encoding of everything outside ASCII, dot segments
 * resolved), which must itself still be a safe relative path (resolving `/a/..//x` gives `//x`).
 * Undefined when the value is not safe. `/€` becomes `/%E2%82%AC`: a header value carries no
 * character outside Latin-1 (RFC 9110 §5.5), and Node refuses to send one.
 */
export function safeRedirectPath(value: string): string | undefined {
  if (!isSafeRelativePath(value)) return undefined;
  const url = new URL(value, 'https://bff.invalid');
  const normalised = `${url.pathname}${url.search}${url.hash}`;
  return isSafeRelativePath(normalised) && /^[\x21-\x7e]+$/.test(normalised) ? normalised : undefined;
}
