import { BffError } from '../errors.js';
import { classifyPathSegment } from '../path-segments.js';

/** What of a request target is forwarded: the path below /api/<name>/ and the query, both raw. */
export interface ProxyTarget {
  /** Path below `<prefix>/api/<name>/`, without query, exactly as received (still percent-encoded). */
  readonly rest: string;
  /** Raw query string without '?', or ''. */
  readonly query: string;
  /** The origin-form target (`/path?query`), as the client's DPoP proof must name it. */
  readonly originForm: string;
}

/**
 * An absolute-form target (RFC 9112 §3.2.2) is routed by its path, as find-my-way does; the
 * authority names no upstream here, so only the path counts. Anything else but origin-form is refused.
 */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*(?=\/)/i;

function invalid(reason: string, detail: string): BffError {
  return new BffError('BFF_REQUEST_INVALID', { reason, detail });
}

/** The origin-form of a request target (RFC 9112 §3.2.1): absolute-form loses its scheme and authority. */
export function originForm(url: string): string {
  if (url.startsWith('/')) return url;
  const match = ABSOLUTE_FORM.exec(url);
  if (!match) throw invalid('request_target', 'the request target must be a path');
  return url.slice(match[0].length);
}

/**
 * Split the raw request target into the route's rest and the query by its raw segments, never by
 * the length of the decoded route name: `/api/%65cho/x` is route `echo` with rest `x`, not a path
 * shifted by the two extra characters. `mount` is the router's static segments before the route
 * name (`['api']`, or the embedding plugin's prefix plus `api`), compared after decoding, as the
 * router compared them; `route` is the name it matched.
 */
export function proxyTarget(url: string, mount: readonly string[], route: string): ProxyTarget {
  const target = originForm(url);
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const segments = path.split('/');
  // segments[0] is the empty string before the leading '/'.
  const named = segments.slice(1, mount.length + 2).map(decodeSegment);
  if (named.length !== mount.length + 1 || named.some((s, i) => s !== (mount[i] ?? route))) {
    throw invalid('request_target', 'the path does not name the route it was routed to');
  }
  return {
    rest: segments.slice(mount.length + 2).join('/'),
    query: q === -1 ? '' : target.slice(q + 1),
    originForm: target,
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalid('path_encoding', 'malformed percent-encoding in path');
  }
}

/**
 * Whether a raw path segment could be taken as a dot segment or a separator by the upstream (see
 * classifyPathSegment); malformed percent-encoding is refused as such.
 */
export function isUnsafeSegment(raw: string): boolean {
  const verdict = classifyPathSegment(raw);
  if (verdict === 'malformed') throw invalid('path_encoding', 'malformed percent-encoding in path');
  return verdict === 'unsafe';
}
