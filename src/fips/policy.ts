import type { JWK } from 'jose';

/**
 * FIPS-approved JOSE algorithms (FIPS 186-5 RSA-PSS and ECDSA P-256, SP 800-56B RSA-OAEP and
 * SP 800-56A ECDH over NIST curves, AES-GCM / AES-CBC-HMAC). EdDSA and X25519 are not approved by
 * the OpenSSL 3.0 FIPS provider and are refused in FIPS mode.
 * https://www.rfc-editor.org/rfc/rfc7518#section-3.1 (alg names)
 */
export const FIPS_SIGNING_ALGS: readonly string[] = ['PS256', 'ES256'];

/** Why a JWK (private or public, ours or the IdP's) cannot be used in FIPS mode, or undefined. */
export function fipsJwkProblem(jwk: Pick<JWK, 'kty' | 'crv' | 'alg'>): string | undefined {
  if (jwk.kty === 'OKP') {
    return `${jwk.crv ?? 'OKP'} keys${jwk.alg ? ` (${jwk.alg})` : ''} are not FIPS-approved (FIPS_MODE=true); use an RSA (PS256, RSA-OAEP-256) or P-256 (ES256, ECDH-ES) key`;
  }
  if (jwk.kty === 'EC' && jwk.crv !== undefined && !['P-256', 'P-384', 'P-521'].includes(jwk.crv)) {
    return `curve ${jwk.crv} is not FIPS-approved (FIPS_MODE=true)`;
  }
  return undefined;
}

/** Why a signing alg cannot be used in FIPS mode, or undefined. */
export function fipsAlgProblem(alg: string): string | undefined {
  return FIPS_SIGNING_ALGS.includes(alg) || alg.startsWith('RSA-OAEP') || alg.startsWith('ECDH-ES')
    ? undefined
    : `${alg} is not FIPS-approved (FIPS_MODE=true); use ${FIPS_SIGNING_ALGS.join(' or ')}`;
}

/**
 * The key's JWK parameters as far as they can be read without importing it (an import of a
 * non-approved key already fails under the FIPS provider, with a less useful message): a JWK, the
 * first key of a JWKS, or nothing for PEM.
 */
export function peekJwk(text: string): Pick<JWK, 'kty' | 'crv' | 'alg'>[] {
  const t = text.trim();
  if (!t.startsWith('{')) return [];
  try {
    const parsed = JSON.parse(t) as JWK & { keys?: JWK[] };
    return Array.isArray(parsed.keys) ? parsed.keys : [parsed];
  } catch {
    return [];
  }
}
