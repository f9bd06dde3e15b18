import { hasChallengeError } from '../oauth/www-authenticate.js';

/**
 * True when a resource server's 401 asks for a DPoP nonce (RFC 9449 §9,
 * https://www.rfc-editor.org/rfc/rfc9449#section-9: `WWW-Authenticate: DPoP error="use_dpop_nonce"`,
 * the scheme case-insensitive, possibly among other challenges).
 */
export function isUseDpopNonceChallenge(wwwAuthenticate: string | readonly string[] | undefined): boolean {
  return hasChallengeError(wwwAuthenticate, ['dpop'], 'use_dpop_nonce');
}

/**
 * True when a resource server refuses the access token itself (RFC 6750 §3.1,
 * https://www.rfc-editor.org/rfc/rfc6750#section-3.1: `error="invalid_token"`, under the Bearer or
 * the DPoP scheme, RFC 9449 §7.1): expired, revoked or otherwise not accepted any more.
 */
export function isInvalidTokenChallenge(wwwAuthenticate: string | readonly string[] | undefined): boolean {
  return hasChallengeError(wwwAuthenticate, ['bearer', 'dpop'], 'invalid_token');
}
