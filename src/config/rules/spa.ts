import { realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SpaConfig } from '../types.js';
import type { RuleContext } from './context.js';
import type { PlainHttpPolicy } from './tls.js';

/** RFC 9110 §5.6.2 token: what a header name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5 field value: visible characters, spaces and tabs; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Headers MS_BFF_SPA_HEADERS may not set: they act on the origin rather than on the page (cookies,
 * storage wipe, navigation), the CSP has its own variable, and the rest describe the response itself
 * (its caching is the SPA module's policy, its framing the server's).
 */
const REFUSED = new Set([
  'set-cookie',
  'set-cookie2',
  'clear-site-data',
  'refresh',
  'location',
  'content-security-policy',
  'cache-control',
  'etag',
  'last-modified',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'trailer',
]);

/** RFC 6797: two years, subdomains included (the value /auth/** sends too). */
const HSTS = 'max-age=63072000; includeSubDomains';

/**
 * Serving the SPA: a directory of built files (MS_BFF_STATIC_DIR) or a frontend origin
 * (MS_BFF_FRONTEND_URL), never both; its CSP and security headers (MS_BFF_SPA_CSP,
 * MS_BFF_SPA_HEADERS). `publicUrl`: the frontend's public URL (HSTS only over https in production).
 */
export function spaSettings(
  ctx: RuleContext,
  http: PlainHttpPolicy,
  publicUrl: URL | undefined,
): SpaConfig | undefined {
  const v = ctx.values;
  const headers = spaHeaders(ctx, publicUrl);
  const dirText = v.MS_BFF_STATIC_DIR;
  const url = v.MS_BFF_FRONTEND_URL;
  // Each is checked even when both are set: every problem in one round.
  const dir = dirText === undefined ? undefined : staticDirectory(ctx, dirText);
  const origin = url === undefined ? undefined : frontendOrigin(ctx, http, url);
  if (dirText !== undefined && url !== undefined) {
    ctx.problem('MS_BFF_FRONTEND_URL', 'set either MS_BFF_STATIC_DIR or MS_BFF_FRONTEND_URL, not both');
    return undefined;
  }
  if (dir !== undefined) return { kind: 'static', dir, headers };
  if (origin !== undefined) return { kind: 'origin', url: origin, headers };
  return undefined;
}

/** The directory's real path, when it exists, is a directory and holds index.html. */
function staticDirectory(ctx: RuleContext, text: string): string | undefined {
  const path = resolve(text);
  let dir: string;
  try {
    dir = realpathSync(path);
    if (!statSync(dir).isDirectory()) {
      ctx.problem('MS_BFF_STATIC_DIR', `is not a directory (${path})`);
      return undefined;
    }
  } catch (err) {
    ctx.problem(
      'MS_BFF_STATIC_DIR',
      `cannot be read (${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
  try {
    if (!statSync(join(dir, 'index.html')).isFile()) throw new Error('not a file');
  } catch {
    // The fallback for client-side routes and the entry point itself (https://html.spec.whatwg.org/).
    ctx.problem('MS_BFF_STATIC_DIR', `holds no index.html (${dir})`);
    return undefined;
  }
  return dir;
}

/**
 * The frontend origin: https in production, except on loopback (the traffic never leaves the host:
 * a sidecar or a local development server) or on a host the operator allowed plain HTTP to.
 */
function frontendOrigin(ctx: RuleContext, http: PlainHttpPolicy, url: URL): URL | undefined {
  let ok = true;
  if (url.search || url.hash) {
    ctx.problem('MS_BFF_FRONTEND_URL', 'must not carry a query or fragment');
    ok = false;
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) http.check('MS_BFF_FRONTEND_URL', url);
  if (url.protocol === 'http:' && ctx.production && !isLoopback(url.hostname) && !http.allows(url.hostname))
    ok = false;
  if (!ok) return undefined;
  // Request paths are resolved against it: a base without a trailing slash would lose its last segment.
  const base = new URL(url.href);
  if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
  return base;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The CSP, the defaults, HSTS where it applies, then MS_BFF_SPA_HEADERS on top. */
function spaHeaders(ctx: RuleContext, publicUrl: URL | undefined): SpaConfig['headers'] {
  const v = ctx.values;
  const csp = v.MS_BFF_SPA_CSP;
  if (!FIELD_VALUE.test(csp)) ctx.problem('MS_BFF_SPA_CSP', 'must be one line of visible characters');
  // CSP Level 3 §6.1.1: 'unsafe-inline' and 'unsafe-eval' give injected script the page's rights.
  const scripts =
    /(?:^|;)\s*script-src\s+([^;]*)/i.exec(csp)?.[1] ??
    /(?:^|;)\s*default-src\s+([^;]*)/i.exec(csp)?.[1] ??
    '';
  if (/'unsafe-(inline|eval)'/i.test(scripts))
    ctx.warn("MS_BFF_SPA_CSP allows 'unsafe-inline' or 'unsafe-eval' scripts: injected script would run");
  const headers = new Map<string, string>([
    ['content-security-policy', csp],
    ['x-content-type-options', 'nosniff'],
    ['referrer-policy', 'no-referrer'],
    ['x-frame-options', 'DENY'],
    // https://html.spec.whatwg.org/multipage/browsers.html#cross-origin-opener-policies: no cross-origin window keeps a handle on the app.
    ['cross-origin-opener-policy', 'same-origin'],
    // https://fetch.spec.whatwg.org/#cross-origin-resource-policy-header: other sites cannot embed our files.
    ['cross-origin-resource-policy', 'same-origin'],
  ]);
  if (ctx.production && publicUrl?.protocol === 'https:') headers.set('strict-transport-security', HSTS);
  const raw = v.MS_BFF_SPA_HEADERS;
  if (raw !== undefined) {
    let extra: unknown;
    try {
      extra = JSON.parse(raw);
    } catch {
      ctx.problem('MS_BFF_SPA_HEADERS', 'is not valid JSON');
    }
    if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra))) {
      ctx.problem('MS_BFF_SPA_HEADERS', 'must be a JSON object of header name → value');
    } else if (extra !== undefined) {
      for (const [name, value] of Object.entries(extra as Record<string, unknown>)) {
        const lower = name.toLowerCase();
        if (!TOKEN.test(name))
          ctx.problem('MS_BFF_SPA_HEADERS', `${JSON.stringify(name)} is not a header name`);
        else if (
          REFUSED.has(lower) ||
          (lower.startsWith('content-') && lower !== 'content-security-policy-report-only')
        )
          ctx.problem('MS_BFF_SPA_HEADERS', `${name} may not be set here`);
        else if (typeof value !== 'string' || !FIELD_VALUE.test(value))
          ctx.problem('MS_BFF_SPA_HEADERS', `${name} must be a string of visible characters`);
        else if (value === '') headers.delete(lower);
        else headers.set(lower, value);
      }
    }
  }
  return [...headers];
}
