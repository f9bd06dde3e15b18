import { BffError } from '../errors.js';

export interface CsrfPolicy {
  readonly enabled: boolean;
  /** Lower-case header name; its value must be exactly "1". */
  readonly headerName: string;
  readonly publicOrigin: string;
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/**
 * CSRF defence for `/api/**` and state-changing `/auth/**` requests, in two layers:
 * 1. a custom header (`X-CSRF: 1`): a cross-site page cannot send it without a CORS preflight,
 *    which we never approve, so a forged form post or image load is refused;
 * 2. Fetch Metadata (`Sec-Fetch-Site`) or, when a browser does not send it, `Origin`, must say
 *    same-origin: defends even if a CORS misconfiguration upstream ever approved the preflight.
 * Non-browser callers send neither Sec-Fetch-Site nor Origin and are judged by the header alone.
 *
 * @see https://w3c.github.io/webappsec-fetch-metadata/ §5.1 (Sec-Fetch-Site)
 * @see RFC 6454 §7 (Origin)
 */
export function checkCsrf(headers: Headers, policy: CsrfPolicy): BffError | undefined {
  if (!policy.enabled) return undefined;
  if (first(headers[policy.headerName]) !== '1') {
    return new BffError('BFF_CSRF_FAILED', { reason: 'header', detail: 'missing or wrong CSRF header' });
  }
  return checkSameOrigin(headers, policy, false);
}

/**
 * Same-origin check alone, for navigations that cannot carry a custom header (GET /auth/login).
 * `allowNavigation` also accepts `Sec-Fetch-Site: none` (the user typed the URL or used a bookmark).
 */
export function checkSameOrigin(
  headers: Headers,
  policy: CsrfPolicy,
  allowNavigation: boolean,
): BffError | undefined {
  if (!policy.enabled) return undefined;
  const site = first(headers['sec-fetch-site']);
  if (site !== undefined) {
    if (site === 'same-origin' || (allowNavigation && site === 'none')) return undefined;
    return new BffError('BFF_CSRF_FAILED', {
      reason: 'fetch_site',
      detail: `Sec-Fetch-Site: ${sanitize(site)}`,
    });
  }
  const origin = first(headers.origin);
  if (origin !== undefined && origin !== policy.publicOrigin) {
    return new BffError('BFF_CSRF_FAILED', { reason: 'origin', detail: 'cross-origin request' });
  }
  return undefined;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sanitize(v: string): string {
  return v.replace(/[^a-z-]/gi, '').slice(0, 20);
}
