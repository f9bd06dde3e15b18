import * as oidc from 'openid-client';
import { isBffError } from '../errors.js';

/**
 * What an operator needs to fix an interop failure from one log line: which IdP endpoint, the HTTP
 * status, the OAuth `error` and `error_description` (RFC 6749 §5.2) when the IdP sent them, the
 * library's error code, and a hint when the pattern is a known one. Never a token, assertion or
 * secret: only the response's status and its error members are read.
 */
export interface IdpFailure {
  endpoint: string;
  url: string | undefined;
  status: number | undefined;
  error: string | undefined;
  error_description: string | undefined;
  /** openid-client / oauth4webapi code, e.g. OAUTH_RESPONSE_IS_NOT_JSON (logged as is, not redacted). */
  library_code: string | undefined;
  hint: string | undefined;
}

export interface FailureContext {
  endpoint: string;
  url: string | undefined;
  authMethod: string;
  clientAssertionAud: 'issuer' | 'endpoint';
  dpop: boolean;
}

/** IdP-controlled text: printable, one line, bounded (it still goes only to logs). */
function clean(value: unknown, max = 300): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const text = value.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.WWWAuthenticateChallengeError) {
    return err.status;
  }
  // openid-client puts the Response in `cause` for an unexpected status or content type.
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Response) return cause.status;
  if (isBffError(err)) return statusOf(err.cause);
  return undefined;
}

function oauthError(err: unknown): { error?: string; error_description?: string } {
  if (err instanceof oidc.ResponseBodyError) {
    return {
      error: err.error,
      ...(err.error_description ? { error_description: err.error_description } : {}),
    };
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const challenge = err.cause[0];
    const error = challenge?.parameters.error;
    const description = challenge?.parameters.error_description;
    return { ...(error ? { error } : {}), ...(description ? { error_description: description } : {}) };
  }
  if (isBffError(err)) return oauthError(err.cause);
  return {};
}

function libraryCode(err: unknown): string | undefined {
  const inner = isBffError(err) ? err.cause : err;
  const code = (inner as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Known patterns, each one seen against a real IdP (docs/interop/). */
function hintFor(f: Omit<IdpFailure, 'hint'>, ctx: FailureContext): string | undefined {
  const clientAuthEndpoint = ['par', 'token', 'refresh', 'revocation', 'introspection'].includes(
    ctx.endpoint,
  );
  const unauthenticated = f.status === 401 || f.error === 'invalid_client';
  if (clientAuthEndpoint && unauthenticated && ctx.authMethod === 'private_key_jwt') {
    return ctx.clientAssertionAud === 'issuer'
      ? 'the IdP refused the client assertion: it may expect the endpoint URL as client assertion audience (see MS_BFF_CLIENT_ASSERTION_AUD), or it may not know our key (is our /.well-known/jwks.json registered as the client jwks_uri?)'
      : 'the IdP refused the client assertion: check the client jwks_uri registered at the IdP and BFF_JWT_SIGNING_ALG; with MS_BFF_CLIENT_ASSERTION_AUD=endpoint the audience is the endpoint URL, try issuer';
  }
  if (clientAuthEndpoint && unauthenticated && ctx.authMethod.startsWith('client_secret')) {
    return 'the IdP refused the client credentials: check OIDC_CLIENT_ID/OIDC_CLIENT_SECRET and that the client may use this authentication method; some IdPs do not URL-decode HTTP Basic credentials (RFC 6749 §2.3.1), so ids or secrets with characters other than letters and digits fail';
  }
  if (f.error === 'use_dpop_nonce' || f.error === 'invalid_dpop_proof') {
    return 'the IdP refused the DPoP proof (RFC 9449): check that it accepts MS_BFF_DPOP_ALG and that clocks agree';
  }
  if (f.error === 'invalid_request_object') {
    return 'the IdP refused the request object (RFC 9101): check MS_BFF_JAR_SIGNING_ALG and the client jwks_uri registered at the IdP';
  }
  if (f.error === 'unauthorized_client') {
    return 'the client is not allowed this grant, response type or authentication method at the IdP: check its registration';
  }
  if (f.error === 'invalid_grant' && ctx.endpoint === 'refresh') {
    return 'the refresh token is expired, revoked or was already used (rotation): the session ends';
  }
  if (f.error === 'invalid_grant' && ctx.endpoint === 'token') {
    return 'the code was refused: expired, already used, or redirect_uri / PKCE verifier / DPoP key do not match the authorization request';
  }
  if (f.error === 'invalid_scope')
    return 'a scope in OIDC_SCOPES is unknown to the IdP or not allowed for this client';
  if (f.status !== undefined && f.status >= 500) return 'the IdP failed (5xx): retry later or check its logs';
  if (f.library_code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
    return 'the IdP answered without a JSON body: an error status with an empty body usually means it refused client authentication; check the endpoint URL and the client registration';
  }
  if (f.library_code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
    return 'the IdP answered with an unexpected HTTP status for this endpoint';
  }
  return undefined;
}

export function describeIdpFailure(err: unknown, ctx: FailureContext): IdpFailure {
  const { error, error_description } = oauthError(err);
  const failure = {
    endpoint: ctx.endpoint,
    url: ctx.url,
    status: statusOf(err),
    error: clean(error, 64),
    error_description: clean(error_description),
    library_code: libraryCode(err),
  };
  return { ...failure, hint: hintFor(failure, ctx) };
}
