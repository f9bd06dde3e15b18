/**
 * The smallest RSA modulus accepted anywhere: our own keys, the IdP's, service callers' DPoP keys
 * (https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.4.1).
 */
export const MIN_RSA_BITS = 2048;

/**
 * Bit length of an RSA modulus given as a JWK `n` (base64url, big-endian; leading zero octets do not
 * count). FAPI 2.0 Security Profile §5.4.1 requires at least 2048 bits for every RSA key we accept.
 */
export function rsaModulusBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  const first = bytes[i];
  return first === undefined ? 0 : (bytes.length - i - 1) * 8 + (32 - Math.clz32(first));
}
