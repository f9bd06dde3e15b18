import { SpanKind } from '@opentelemetry/api';
import type { CustomFetch } from 'openid-client';
import { injectTraceContext, withSpan } from './tracing.js';

/**
 * The IdP fetch with a client span per HTTP call and W3C trace context on the request, so the IdP's
 * own traces join ours. The span shows the URL without its query (a query can carry a code).
 */
export function tracedFetch(base: CustomFetch, name = 'idp.http'): CustomFetch {
  return (url, init) => {
    const target = new URL(url);
    const method = init.method ?? 'GET';
    return withSpan(
      name,
      {
        'http.request.method': method,
        'url.full': `${target.origin}${target.pathname}`,
        'server.address': target.hostname,
      },
      async (span) => {
        const headers = init.headers as Record<string, string>;
        injectTraceContext(headers);
        const response = await base(url, init);
        span.setAttribute('http.response.status_code', response.status);
        return response;
      },
      SpanKind.CLIENT,
    );
  };
}
