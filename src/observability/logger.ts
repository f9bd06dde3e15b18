import type { LoggerOptions } from 'pino';

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

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // Only the path: query strings can carry `code`, `state` and `response` JWTs.
      req(req: { method?: string; url?: string; id?: string }) {
        return { method: req.method, path: (req.url ?? '').split('?')[0], id: req.id };
      },
    },
  };
}
