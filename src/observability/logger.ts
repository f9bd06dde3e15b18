import { Writable } from 'node:stream';
import { context } from '@opentelemetry/api';
import type { LoggerOptions } from 'pino';
import { activeTraceIds, REQUEST_ID_KEY } from './tracing.js';

/**
 * Set on a request's own logger (which has request_id and trace_id bound): the mixin below then
 * adds nothing. pino children inherit it through their prototype.
 */
export const REQUEST_BOUND = Symbol.for('fapi-bff.request-bound-logger');

/**
 * Set on a request's own logger instead of binding its trace fields with a child: `trace_id` and
 * `span_id` of the request, which the mixin below writes into every line of that logger (and of
 * its children, which inherit it through their prototype). A pino child per request costs ~3.5 µs
 * with our redaction paths (each binding goes through the redaction serialiser at creation), paid
 * on every request although most requests write no line at all; the mixin costs only when a line
 * is written. Only for loggers made from `loggerOptions` (see `carriesRequestFields`).
 */
export const REQUEST_FIELDS = Symbol.for('fapi-bff.request-fields');

export interface RequestFields {
  readonly trace_id: string;
  readonly span_id: string;
}

/**
 * Lines written by shared loggers (IdP client, store) while a request is being served carry that
 * request's id and trace id, read from the active OpenTelemetry context.
 */
function contextFields(_obj: object, _level: number, logger: unknown): object {
  const own = (logger as Record<symbol, RequestFields | undefined>)[REQUEST_FIELDS];
  // A new object each time: pino merges the line's own fields into what the mixin returns.
  if (own !== undefined) return { trace_id: own.trace_id, span_id: own.span_id };
  if ((logger as Record<symbol, unknown>)[REQUEST_BOUND]) return {};
  const ctx = context.active();
  const requestId = ctx.getValue(REQUEST_ID_KEY);
  const ids = activeTraceIds(ctx);
  if (typeof requestId !== 'string' && !ids) return {};
  return { ...(typeof requestId === 'string' ? { request_id: requestId } : {}), ...ids };
}

/**
 * pino options with redaction: credentials never reach a log line. The paths cover
 * Fastify's request/response serialisers and our own structured fields; `censor` keeps the key so
 * an operator sees that a value was present.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers.dpop',
  'req.headers["x-csrf"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers.dpop',
  'headers["set-cookie"]',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.client_secret',
  '*.client_assertion',
  '*.code_verifier',
  '*.code',
  '*.logout_token',
  '*.password',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'accessToken',
  'refreshToken',
  'idToken',
  '*.accessToken',
  '*.refreshToken',
  '*.idToken',
];

/** Whether a Fastify `logger` option is (built from) `loggerOptions`: its lines get REQUEST_FIELDS. */
export function carriesRequestFields(logger: unknown): boolean {
  return typeof logger === 'object' && logger !== null && (logger as LoggerOptions).mixin === contextFields;
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    mixin: contextFields,
    serializers: {
      // Only the path: query strings can carry `code`, `state` and `response` JWTs.
      req(req: { method?: string; url?: string; id?: string }) {
        return { method: req.method, path: (req.url ?? '').split('?')[0], id: req.id };
      },
    },
  };
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields the readable format shows in its own place, or not at all. */
const SHOWN_APART = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'audit', 'event', 'access']);

/**
 * MS_BFF_LOG_FORMAT=pretty: one readable line per pino line, for a developer's terminal, e.g.
 * `12:01:02 INFO  login.succeeded sub=alice session=3kq… request_id=… trace_id=…`. The input is
 * already redacted JSON; this only re-lays it out (values are JSON-encoded unless plain words).
 */
export function prettyStream(out: NodeJS.WritableStream = process.stdout): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (line) out.write(`${prettyLine(line)}\n`);
      }
      done();
    },
  });
}

export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = new Date(typeof o.time === 'number' ? o.time : Date.now()).toISOString().slice(11, 19);
  const level = (LEVELS[Number(o.level)] ?? String(o.level)).padEnd(5);
  const fields = Object.entries(o)
    .filter(([k]) => !SHOWN_APART.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[\w.:/@-]*$/.test(v) ? v : JSON.stringify(v)}`);
  return [time, level, String(o.msg ?? ''), ...fields].join(' ');
}
