import { createHash, createHmac } from 'node:crypto';
import { context } from '@opentelemetry/api';
import { activeTraceIds, REQUEST_ID_KEY } from './tracing.js';

/**
 * Audit events: one JSON log line per occurrence with a stable `event` name and documented fields
 * (docs/audit.md is generated from this table). Never a token, code, cookie or key: only hashes of
 * session ids, the subject (hashed when MS_BFF_AUDIT_SUB=hash) and stable reason codes.
 */
export const AUDIT_EVENTS = {
  'login.succeeded': {
    description: 'A callback completed: tokens validated and a new session created.',
    fields: ['session', 'sub', 'token_type'],
  },
  'login.failed': {
    description:
      'A login could not start (stage start: PAR or transaction) or a callback was refused (stage callback).',
    fields: ['stage', 'code', 'reason'],
  },
  'session.refreshed': {
    description: "The session's access token was refreshed at the IdP (refresh_token grant).",
    fields: ['session', 'sub'],
  },
  'refresh.failed': {
    description:
      'A refresh_token grant failed; reason invalid_grant ends the session, other reasons keep a still-valid token.',
    fields: ['session', 'sub', 'code', 'reason'],
  },
  logout: {
    description: 'The user logged out (RP-initiated): session destroyed, refresh token revoked.',
    fields: ['session', 'sub', 'revocation'],
  },
  backchannel_logout: {
    description: 'The IdP ended sessions by a back-channel logout token (OIDC Back-Channel Logout 1.0).',
    fields: ['sub', 'sid', 'sessions_ended'],
  },
  'session.expired': {
    description: 'A session ended by time or by a refresh that can never succeed.',
    fields: ['session', 'sub', 'reason'],
  },
  'session.revoked': {
    description:
      'An operator ended the session with `fapi-bff sessions revoke` (every session of a subject); revocation is what happened to its refresh token at the IdP: revoked, failed, or skipped (--no-idp, or no revocation endpoint). Written by the command, as a JSON line on its standard error.',
    fields: ['session', 'sub', 'revocation', 'initiator'],
  },
  'csrf.refused': {
    description: 'A request failed the CSRF header or Fetch Metadata / Origin check.',
    fields: ['reason', 'method', 'path'],
  },
  'dpop.refused': {
    description: "A service caller's DPoP-bound request was refused (RFC 9449 §4.3, §7).",
    fields: ['reason', 'route'],
  },
  'key.rotated': {
    description:
      'Another key of ours became active: for signing (use sig: client assertions, request objects) when a next key has been published for MS_BFF_KEY_PREPUBLISH_SECONDS or a reload removed the active one; for JARM decryption (use enc) likewise. kid and thumbprint (RFC 7638, SHA-256) of the new active key, previous_kid of the one before; never key material. Session keys (MS_BFF_SESSION_KEYS) are read once at start and emit nothing.',
    fields: ['kid', 'use', 'thumbprint', 'previous_kid'],
  },
  'config.reloaded': {
    description:
      'The configuration was re-read (SIGHUP or MS_BFF_CONFIG changed) and applied, or refused when it did not validate or changed a setting that needs a restart (outcome applied, unchanged, invalid, refused, failed); frontends_changed lists the frontends added, changed or removed.',
    fields: ['outcome', 'reason', 'trigger', 'frontends_changed'],
  },
} as const satisfies Record<string, { description: string; fields: readonly string[] }>;

export type AuditEvent = keyof typeof AUDIT_EVENTS;

/** Fields every audit line carries besides its own. */
export const AUDIT_COMMON_FIELDS = {
  event: 'the event name (above)',
  audit: 'always true: selects audit lines from other log lines',
  frontend: 'the frontend that served the request (`default` with one frontend)',
  request_id: 'the request id (X-Request-Id) when the event happened during a request',
  trace_id: 'the W3C trace id of that request',
  span_id: 'the span active when the event happened',
} as const;

export interface AuditSink {
  info(obj: object, msg: string): void;
}

export interface AuditValues {
  /** A session's store key; logged only as a short hash. */
  sessionKey?: string | undefined;
  /** The subject; logged plain or hashed by configuration. */
  sub?: string | undefined;
  /** The IdP session id (back-channel logout); always hashed. */
  sid?: string | undefined;
  frontend?: string | undefined;
  [field: string]: string | number | boolean | undefined;
}

export interface AuditOptions {
  /** `plain` logs `sub` as is; `hash` logs HMAC-SHA-256(sub) so lines of one user still correlate. */
  readonly sub: 'plain' | 'hash';
  /** The HMAC key for hashed subjects. */
  readonly hashKey: Uint8Array;
  readonly frontend: string;
}

export class AuditLog {
  constructor(
    private readonly sink: AuditSink,
    private readonly options: AuditOptions,
    private readonly count: (event: AuditEvent) => void = () => undefined,
  ) {}

  emit(event: AuditEvent, values: AuditValues = {}): void {
    const { sessionKey, sub, sid, frontend, ...rest } = values;
    const ctx = context.active();
    const requestId = ctx.getValue(REQUEST_ID_KEY);
    const ids = activeTraceIds(ctx);
    const line: Record<string, unknown> = {
      audit: true,
      event,
      frontend: frontend ?? this.options.frontend,
      ...(typeof requestId === 'string' ? { request_id: requestId } : {}),
      ...(ids ? { trace_id: ids.trace_id, span_id: ids.span_id } : {}),
      ...(sessionKey !== undefined ? { session: sessionHash(sessionKey) } : {}),
      ...(sub !== undefined ? { sub: this.subject(sub) } : {}),
      ...(sid !== undefined ? { sid: sessionHash(sid) } : {}),
    };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) line[k] = v;
    this.count(event);
    this.sink.info(line, event);
  }

  subject(sub: string): string {
    if (this.options.sub === 'plain') return sub;
    return createHmac('sha256', this.options.hashKey).update(sub).digest('base64url').slice(0, 22);
  }
}

/** A short, stable, non-reversible id of a session for correlating audit lines. */
export function sessionHash(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 16);
}
