import { BffError } from '../errors.js';
import { JwtPolicyError, type KeyResolver, verifyJws } from '../jose/jwt-policy.js';

/**
 * ID tokens pass the same JOSE policy (https://www.rfc-editor.org/rfc/rfc8725#section-3) as every other JWT we accept (pinned alg, no
 * `jku`/`x5u`/`x5c`/`jwk`, no `crit`, key selection by kid and kty/alg/use, typing), on top of
 * openid-client's OIDC Core §3.1.3.7 checks. openid-client alone accepts an ID token whose header
 * carries `jku` or `typ: logout+jwt` (test/idp-misbehaviour/id-token.test.ts).
 */
export async function checkIdTokenPolicy(
  idToken: string,
  keys: KeyResolver,
  expect: { issuer: string; clientId: string; alg: string },
): Promise<void> {
  try {
    await verifyJws(idToken, keys, {
      algorithms: [expect.alg],
      issuer: expect.issuer,
      audience: expect.clientId,
      // An ID token typed as another kind of JWT (logout+jwt, at+jwt…) is refused (RFC 8725 §3.11, §3.12).
      typ: { allowed: ['JWT'], required: false },
      requiredClaims: ['iat', 'sub'],
    });
  } catch (err) {
    if (err instanceof JwtPolicyError)
      throw new BffError('BFF_ID_TOKEN_INVALID', { reason: err.reason, cause: err });
    throw err;
  }
}
