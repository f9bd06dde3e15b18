import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * Tracing through the OpenTelemetry API only: without an SDK every call here is a no-op apart from
 * W3C Trace Context propagation (https://www.w3.org/TR/trace-context/), which the BFF always does so
 * an incoming `traceparent` reaches the IdP and the upstreams with its trace id. The SDK and its
 * exporter are switched on by the standard `OTEL_*` variables (src/observability/otel-sdk.ts).
 */
export const tracer = trace.getTracer('fapi-bff');

export { SpanKind };

/** The request id of the request being served, for log lines written outside its logger. */
export const REQUEST_ID_KEY = createContextKey('fapi-bff.request_id');

/** Run `fn` in a new active span; the span records an exception and ends with `fn`. */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(err) });
      span.setAttribute('error.type', errorCode(err));
      throw err;
    } finally {
      span.end();
    }
  });
}

/** W3C trace context of the active span into outgoing headers (traceparent, tracestate). */
export function injectTraceContext(headers: Record<string, string | string[]>, ctx?: Context): void {
  propagation.inject(ctx ?? context.active(), headers);
}

/** Trace and span id of the active span, or undefined outside any trace. */
export function activeTraceIds(ctx?: Context): { trace_id: string; span_id: string } | undefined {
  const sc = trace.getSpanContext(ctx ?? context.active());
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

/** Stable code of an error for span status: our code, else the error's name. Never its message. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code)) return code;
  return err instanceof Error ? err.name : 'error';
}
