import { isForbiddenResponseHeader } from '../config/response-headers.js';
import type { RouteConfig } from '../config/types.js';

/**
 * Which upstream response headers reach the browser, and how an authenticated response may be
 * cached. The browser sees an upstream's response on the BFF's origin, where our session cookie
 * lives: a header that acts on the origin (Set-Cookie, Clear-Site-Data, Refresh, CORS grants, HSTS,
 * Alt-Svc) would let an upstream act for us, so only an allowlist passes (docs in the README,
 * "Proxy behaviour").
 */

/**
 * Forwarded by default: the representation and its metadata (RFC 9110 §8), caching and validators
 * (RFC 9111, RFC 9110 §8.8), ranges, rate-limit hints, links, and the upstream's own security
 * headers, which apply to its content and are kept as sent (ours fill in only where it sent none).
 */
export const DEFAULT_RESPONSE_HEADERS: readonly string[] = [
  'content-type',
  'content-encoding',
  'content-language',
  'content-disposition',
  'content-range',
  'accept-ranges',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
  'vary',
  'age',
  'retry-after',
  'link',
  'location',
  'x-request-id',
  'ratelimit',
  'ratelimit-policy',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'content-security-policy',
  'content-security-policy-report-only',
  'x-content-type-options',
  'x-frame-options',
  'referrer-policy',
  'permissions-policy',
  'cross-origin-opener-policy',
  'cross-origin-embedder-policy',
  'cross-origin-resource-policy',
];

const DEFAULT_ALLOWED: ReadonlySet<string> = new Set(DEFAULT_RESPONSE_HEADERS);

/**
 * Every proxied response is sandboxed (CSP Level 3 `sandbox`, https://www.w3.org/TR/CSP3/#directive-sandbox):
 * an upstream's `text/html` (an error page, a reflected value, a compromised API) opened on our
 * origin runs as an opaque origin, with no access to our cookies, storage or same-origin API
 * calls. A separate header: with several policies every one is enforced (CSP3 §8.1), so an
 * upstream's own policy is kept and cannot relax this one. fetch() callers are unaffected.
 */
export const SANDBOX_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'";

export interface ResponsePolicyInput {
  readonly route: RouteConfig;
  /** The request carried a credential: a token the BFF attached (user or client), or a verified service caller. */
  readonly authenticated: boolean;
  /** Upstream headers after hop-by-hop removal. */
  readonly headers: Record<string, string | string[]>;
  /** `<prefix>/api/<name>` on our origin, for a Location pointing inside the route's base. */
  readonly publicBase: string;
}

/** The headers the browser receives for a proxied response. */
export function browserResponseHeaders(input: ResponsePolicyInput): Record<string, string | string[]> {
  const { route, headers } = input;
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isForbiddenResponseHeader(name)) continue;
    if (!DEFAULT_ALLOWED.has(name) && !route.responseHeaders.includes(name)) continue;
    out[name] = value;
  }
  const location = out.location;
  if (location !== undefined) {
    const mapped =
      typeof location === 'string' ? mapLocation(location, route.url, input.publicBase) : undefined;
    if (mapped === undefined) delete out.location;
    else out.location = mapped;
  }
  const csp = out['content-security-policy'];
  out['content-security-policy'] =
    csp === undefined ? SANDBOX_CSP : [...(Array.isArray(csp) ? csp : [csp]), SANDBOX_CSP];
  if (input.authenticated) applyPrivateCaching(out, route.cache);
  return out;
}

/**
 * A response made with a user's credential is for that user only (RFC 9111 §5.2.2.7 `private`):
 * by default never stored at all (`no-store`, §5.2.2.5), so a shared cache, a CDN or the next user
 * of the same browser profile never gets it; `Expires` and `Age` go with it. A route with
 * `cache: "private"` lets the browser's own cache keep it under the upstream's freshness
 * directives, made private (`public` and `s-maxage`, which are for shared caches, removed), and
 * `Vary: Cookie` so a different session never reuses it (§4.1).
 */
function applyPrivateCaching(out: Record<string, string | string[]>, cache: RouteConfig['cache']): void {
  if (cache === 'no-store') {
    out['cache-control'] = 'private, no-store';
    delete out.expires;
    delete out.age;
    return;
  }
  const upstream = out['cache-control'];
  const directives = (Array.isArray(upstream) ? upstream.join(',') : (upstream ?? ''))
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '' && !/^(public|private|s-maxage\s*=.*|proxy-revalidate)$/i.test(d));
  out['cache-control'] = ['private', ...(directives.length > 0 ? directives : ['no-cache'])].join(', ');
  const vary = out.vary;
  const varied = (Array.isArray(vary) ? vary.join(',') : (vary ?? ''))
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (!varied.some((v) => v === '*' || v.toLowerCase() === 'cookie')) varied.push('Cookie');
  out.vary = varied.join(', ');
}

/**
 * An upstream's Location (a 201's new resource, a redirect) names the upstream: inside the route's
 * base it becomes the same path on our origin; anywhere else it is dropped, so a proxied response
 * can never turn the BFF's origin into a redirector to another site. Relative references are
 * resolved against the upstream's base first (RFC 9110 §10.2.2).
 */
export function mapLocation(value: string, base: URL, publicBase: string): string | undefined {
  let target: URL;
  try {
    target = new URL(value, base);
  } catch {
    return undefined;
  }
  const basePath = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  if (target.origin !== base.origin) return undefined;
  if (target.pathname !== basePath.slice(0, -1) && !target.pathname.startsWith(basePath)) return undefined;
  const rest = target.pathname.slice(basePath.length - 1);
  return `${publicBase}${rest}${target.search}${target.hash}`;
}
