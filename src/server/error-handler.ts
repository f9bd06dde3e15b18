import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BffError, isBffError } from '../errors.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { errorPage, STRICT_PAGE_CSP } from './pages.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `html`: errors of this route are rendered as a page (browser navigations), not problem+json. */
    errorFormat?: 'html';
  }
}

/**
 * The one place errors become responses: problem+json (RFC 9457) for API calls, an HTML page for
 * browser navigations (routes with `config.errorFormat = 'html'`). Bodies carry the stable code, a
 * safe detail and the request id; never a library message, stack or token.
 */
/** Where the application lives, for the links and hints of error pages. */
export interface PageSite {
  /** The public URL of the application (MS_BFF_PUBLIC_URL). */
  readonly publicUrl: URL;
  /** The login endpoint's path (with the plugin's prefix, if any). */
  readonly loginPath: string;
}

export function renderError(
  err: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  s: { readonly metrics: Metrics; readonly audit: AuditLog },
  site?: PageSite,
): FastifyReply {
  const bff = toBffError(err);
  s.metrics.error(bff.code);
  if (bff.code === 'BFF_RATE_LIMITED') s.metrics.rateLimit(bff.reason ?? 'other');
  if (bff.code === 'BFF_CSRF_FAILED') {
    s.audit.emit('csrf.refused', {
      reason: bff.reason ?? 'other',
      method: request.method,
      path: request.url.split('?')[0],
    });
  }
  const level = bff.statusCode >= 500 ? 'error' : 'info';
  request.log[level]({ code: bff.code, reason: bff.reason, err: describeCause(bff) }, bff.title);
  if (bff.headers) reply.headers(bff.headers);
  reply.code(bff.statusCode).header('cache-control', 'no-store');
  const html = request.routeOptions.config?.errorFormat === 'html';
  if (html) {
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', STRICT_PAGE_CSP)
      .send(
        errorPage({
          status: bff.statusCode,
          code: bff.code,
          title: bff.title,
          ...(bff.detail === undefined ? {} : { detail: bff.detail }),
          requestId: request.id,
          ...(site ? pageGuidance(bff.code, site) : {}),
        }),
      );
  }
  return reply.type('application/problem+json').send({
    type: 'about:blank',
    title: bff.title,
    status: bff.statusCode,
    code: bff.code,
    ...(bff.detail === undefined ? {} : { detail: bff.detail }),
    ...bff.extensions,
    requestId: request.id,
  });
}

/** What the user should do next, for the errors where the remedy is not obvious. */
function pageGuidance(
  code: string,
  site: PageSite,
): { homeUrl: string; loginUrl?: string; hint?: string; calm?: boolean } {
  const homeUrl = site.publicUrl.href;
  const loginUrl = new URL(site.loginPath, site.publicUrl).href;
  switch (code) {
    case 'BFF_CALLBACK_STATE_MISMATCH':
      // Cookies are per host name (RFC 6265 §5.3): a login started on another name than the public URL
      // (127.0.0.1 vs localhost) returns here without the browser's login binding.
      return {
        homeUrl,
        loginUrl,
        hint: `Open ${homeUrl} and sign in from there. This happens when the sign-in was started at another address (for example an IP address instead of the host name in ${homeUrl}), in another browser, or after cookies were cleared.`,
      };
    case 'BFF_LOGIN_CANCELLED':
      return { homeUrl, loginUrl, calm: true };
    case 'BFF_CALLBACK_TRANSACTION_EXPIRED':
    case 'BFF_CALLBACK_INVALID':
    case 'BFF_CALLBACK_ISS_MISMATCH':
    case 'BFF_CALLBACK_ACCESS_DENIED':
      return { homeUrl, loginUrl };
    default:
      return { homeUrl };
  }
}

function toBffError(err: unknown): BffError {
  if (isBffError(err)) return err;
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new BffError('BFF_REQUEST_INVALID', {
      cause: err,
      status: fe.statusCode,
      reason: fe.code ?? 'invalid',
    });
  }
  return new BffError('BFF_INTERNAL', { cause: err });
}

/**
 * The cause for the log line. Library codes go out as `library_code`: the logger redacts every `code`
 * field (it may be an authorization code), and OAUTH_RESPONSE_IS_NOT_JSON is what an operator needs.
 */
function describeCause(err: BffError): object | undefined {
  const cause = err.cause;
  if (!(cause instanceof Error)) return undefined;
  const inner = (cause as { cause?: unknown }).cause;
  return {
    name: cause.name,
    message: cause.message,
    library_code: (cause as { code?: unknown }).code,
    ...(inner instanceof Error
      ? {
          cause: {
            name: inner.name,
            message: inner.message,
            library_code: (inner as { code?: unknown }).code,
          },
        }
      : {}),
    ...(inner instanceof Response ? { status: inner.status } : {}),
  };
}
