import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { REQUEST_BOUND, REQUEST_FIELDS, type RequestFields } from '../observability/logger.js';
import { randomHex } from '../random.js';
import { REQUEST_ID_KEY, tracer } from '../observability/tracing.js';

/**
 * An incoming X-Request-Id is kept when it is well formed (a load balancer's id then matches ours);
 * anything else, including a value that could forge a log line, gets a fresh UUID.
 */
const REQUEST_ID = /^[A-Za-z0-9._:@-]{8,128}$/;

export function requestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `false`: the route reads no body through a parser and runs nothing in its request or reply
     * stream events that needs the request's context (the API proxy), so the request and reply
     * emitters are not bound to it. Binding wraps every listener Fastify, undici and the stream
     * pipeline add: ~25–35 µs of CPU per proxied call (bench/RESULTS.md).
     */
    bindEmitters?: boolean;
  }
  interface FastifyRequest {
    /** The server span of this request (a non-recording one without an SDK). */
    bffSpan?: Span;
  }
}

export interface RequestContextOptions {
  /** One line per request at info (MS_BFF_ACCESS_LOG). */
  readonly accessLog: boolean;
  /**
   * The app's logger was made from `loggerOptions` (its mixin writes REQUEST_FIELDS): the trace
   * fields are set on the request's logger rather than bound by a child logger per request. Any
   * other logger (an embedding application's) gets the child.
   */
  readonly requestFieldsMixin?: boolean;
}

/**
 * Per request: the W3C trace context (an incoming `traceparent` continued, else a new trace), a
 * server span, the request id in the OpenTelemetry context (so audit lines and IdP-call lines
 * written by shared loggers carry it), `trace_id` on the request's logger, and `X-Request-Id` on the
 * response. Without an SDK the trace id is still made and propagated, so the IdP's and upstreams'
 * logs correlate with ours (https://www.w3.org/TR/trace-context/).
 */
export function registerRequestContext(app: FastifyInstance, options: RequestContextOptions): void {
  app.addHook('onRequest', (request, reply, done) => {
    const parent = propagation.extract(context.active(), request.headers);
    let span = tracer.startSpan(
      `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          ...(request.routeOptions.url ? { 'http.route': request.routeOptions.url } : {}),
          'url.path': request.url.split('?')[0] ?? '/',
        },
      },
      parent,
    );
    if (!trace.isSpanContextValid(span.spanContext())) {
      // No SDK and no incoming trace: a trace id of our own, not sampled (nobody records it).
      span = trace.wrapSpanContext({
        traceId: randomHex(16),
        spanId: randomHex(8),
        traceFlags: TraceFlags.NONE,
      });
    }
    request.bffSpan = span;
    const ctx = trace.setSpan(parent, span).setValue(REQUEST_ID_KEY, request.id);
    const { traceId, spanId } = span.spanContext();
    if (options.requestFieldsMixin) {
      // Fastify's logger of this request (a child made for it, with request_id bound), so the
      // fields are this request's only.
      const fields: RequestFields = { trace_id: traceId, span_id: spanId };
      (request.log as unknown as Record<symbol, RequestFields>)[REQUEST_FIELDS] = fields;
    } else {
      request.log = request.log.child({ trace_id: traceId, span_id: spanId });
      (request.log as unknown as Record<symbol, boolean>)[REQUEST_BOUND] = true;
      reply.log = request.log;
    }
    reply.header('x-request-id', request.id);
    // Body parsing and stream events run in the socket's async context: bind them to the request's
    // (unless the route says it needs neither; its handler still runs inside `context.with` below).
    if (request.routeOptions.config?.bindEmitters !== false) {
      context.bind(ctx, request.raw);
      context.bind(ctx, reply.raw);
    }
    context.with(ctx, done);
  });

  app.addHook('onResponse', (request, reply, done) => {
    endSpan(request, reply);
    if (options.accessLog) {
      request.log.info(
        {
          access: true,
          method: request.method,
          path: request.url.split('?')[0],
          route: request.routeOptions.url,
          status: reply.statusCode,
          duration_ms: Math.round(reply.elapsedTime * 10) / 10,
        },
        `${request.method} ${request.url.split('?')[0]} ${reply.statusCode}`,
      );
    }
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    request.bffSpan?.setStatus({ code: SpanStatusCode.ERROR, message: 'aborted' });
    request.bffSpan?.end();
    request.bffSpan = undefined;
    done();
  });
}

function endSpan(request: FastifyRequest, reply: FastifyReply): void {
  const span = request.bffSpan;
  if (!span) return;
  request.bffSpan = undefined;
  span.setAttribute('http.response.status_code', reply.statusCode);
  if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
