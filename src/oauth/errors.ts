import * as oidc from 'openid-client';
import { BffError, type ErrorCode, isBffError } from '../errors.js';
import { ResponseTooLargeError } from './http.js';

/** oauth4webapi codes raised while validating JWTs in a token response. */
const ID_TOKEN_CODES = new Set([
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_KEY_SELECTION_FAILED',
]);

const NOT_A_PROTOCOL_RESPONSE = new Set([
  'OAUTH_RESPONSE_IS_NOT_CONFORM',
  'OAUTH_RESPONSE_IS_NOT_JSON',
  'OAUTH_PARSE_ERROR',
]);

/**
 * Whether a token-endpoint failure concerns the ID token (the only JWT a token response carries for
 * us). Decided from oauth4webapi's public error shape, never from messages: its JWT codes, or the
 * structured `cause` it attaches to JWT failures (the JWT's `header`, its `claims`, or its
 * `signature`), along the error's cause chain.
 */
function concernsIdToken(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && ID_TOKEN_CODES.has(code)) return true;
    const cause = (current as { cause?: unknown }).cause;
    if (
      cause !== null &&
      typeof cause === 'object' &&
      !(cause instanceof Error) &&
      ('header' in cause || 'claims' in cause || 'signature' in cause)
    )
      return true;
    current = cause;
  }
  return false;
}

export type OAuthPhase = 'discovery' | 'par' | 'token' | 'refresh' | 'revoke';

/**
 * Translate a library or network failure into our error hierarchy at the boundary. The library's
 * message stays in `cause` (logged, never shown): it can echo IdP-controlled text.
 */
export function translateOAuthError(err: unknown, phase: OAuthPhase): BffError {
  if (isBffError(err)) return err;
  if (isNetworkError(err)) {
    return new BffError('BFF_IDP_UNAVAILABLE', { cause: err, status: 503, reason: 'unreachable' });
  }
  if (err instanceof ResponseTooLargeError) {
    return new BffError('BFF_IDP_ERROR', { cause: err, reason: 'response_too_large' });
  }
  if (err instanceof oidc.ResponseBodyError) {
    // An OAuth error from the IdP (RFC 6749 §5.2). Its `error` code is an enum-like token: safe to show.
    const code: ErrorCode =
      phase === 'refresh' && err.error === 'invalid_grant' ? 'BFF_REFRESH_FAILED' : 'BFF_IDP_ERROR';
    const status = err.status >= 500 ? 503 : undefined;
    return new BffError(code, {
      cause: err,
      detail: safeToken(err.error),
      reason: safeToken(err.error) ?? 'error',
      ...(status === undefined ? {} : { status }),
    });
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return new BffError('BFF_CALLBACK_ACCESS_DENIED', {
      cause: err,
      detail: safeToken(err.error),
      reason: 'authorization_error',
    });
  }
  if (err instanceof oidc.ClientError) {
    const code = (err as { code?: string }).code ?? 'invalid';
    if (code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT') {
      return new BffError('BFF_IDP_UNAVAILABLE', { cause: err, status: 503, reason: 'timeout' });
    }
    // The IdP answered with something that is not a protocol response (wrong status, not JSON).
    if (NOT_A_PROTOCOL_RESPONSE.has(code)) return new BffError('BFF_IDP_ERROR', { cause: err, reason: code });
    if (phase === 'token' || phase === 'refresh') {
      const aboutIdToken = concernsIdToken(err);
      return new BffError(aboutIdToken ? 'BFF_ID_TOKEN_INVALID' : 'BFF_TOKEN_RESPONSE_INVALID', {
        cause: err,
        reason: code,
      });
    }
    if (phase === 'discovery') {
      return new BffError('BFF_IDP_CAPABILITY_MISSING', {
        cause: err,
        detail: 'invalid discovery document',
        reason: 'metadata',
      });
    }
    return new BffError('BFF_IDP_ERROR', { cause: err, reason: code });
  }
  return new BffError('BFF_IDP_ERROR', { cause: err, reason: 'unexpected' });
}

function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return true;
  // Fetch Standard (https://fetch.spec.whatwg.org/#fetch-method): a network error rejects fetch with a
  // TypeError; undici attaches the socket/TLS error as its cause. (Argument errors carry no cause.)
  if (err instanceof TypeError && err.cause instanceof Error) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^(ECONN|ENOTFOUND|EAI_|ETIMEDOUT|EHOSTUNREACH|UND_ERR)/.test(code);
}

/** OAuth error codes are `%x20-21 / %x23-5B / %x5D-7E` (RFC 6749 §5.2); keep a conservative subset. */
function safeToken(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(value) ? value : undefined;
}
