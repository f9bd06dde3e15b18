/** How many times a segment is decoded looking for a hidden dot segment or separator. */
const MAX_DECODE_DEPTH = 3;

/**
 * What a raw (still percent-encoded) path segment could be taken for by some server behind us —
 * the API upstream a request is proxied to, or the file system / frontend origin an SPA is served from:
 * - `unsafe`: a dot segment or a separator:
 *   - `.` / `..` once decoded (RFC 3986 §3.3, §5.2.4), the classic traversal;
 *   - the same with path parameters (`..;x`, `.;x`; RFC 3986 §3.3 allows `;` in a segment): Tomcat,
 *     Jetty and Spring drop parameters before resolving dot segments, so `..;` is a parent segment there;
 *   - the same after decoding again (`%252e%252e`): a server or framework that decodes twice;
 *   - `/` or `\` inside a segment once decoded (`%2F`, `%5C`, and double-encoded): some servers split on them;
 *   - still encoded after MAX_DECODE_DEPTH levels.
 * - `malformed`: malformed percent-encoding at the first level (RFC 3986 §2.1). Deeper down a segment
 *   that fails to decode is plain data (`100%25` is `100%`).
 * - `safe`: none of these.
 * https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4
 */
export function classifyPathSegment(raw: string): 'safe' | 'unsafe' | 'malformed' {
  let current = raw;
  for (let depth = 0; depth <= MAX_DECODE_DEPTH; depth++) {
    const bare = current.split(';', 1)[0];
    if (bare === '.' || bare === '..') return 'unsafe';
    if (current.includes('\\') || (depth > 0 && current.includes('/'))) return 'unsafe';
    if (!current.includes('%')) return 'safe';
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return depth === 0 ? 'malformed' : 'safe';
    }
    if (next === current) return 'safe';
    current = next;
  }
  return 'unsafe';
}
