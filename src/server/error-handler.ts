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
export function renderError(
  err: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  s: { readonly metrics: Metrics; readonly audit: AuditLog },
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
        }),
      );
  }
  return reply.type('application/problem+json').send({
    type: 'about:blank',
    title: bff.title,
    status: bff.statusCode,
    code: bff.code,
    ...(bff.detail === undefined ? {} : { detail: bff.detail }),
    requestId: request.id,
  });
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

function describeCause(err: BffError): object | undefined {
  const cause = err.cause;
  if (!(cause instanceof Error)) return undefined;
  const inner = (cause as { cause?: unknown }).cause;
  return {
    name: cause.name,
    message: cause.message,
    code: (cause as { code?: unknown }).code,
    ...(inner instanceof Error
      ? { cause: { name: inner.name, message: inner.message, code: (inner as { code?: unknown }).code } }
      : {}),
  };
}
