import type { JweAlg } from './enums.js';
import { MIN_RSA_BITS, rsaModulusBits } from '../jose/key-size.js';
import { publicJwkOf } from './keys.js';
import type { DecryptionKey, EncryptionKey } from './types.js';
import {
  calculateJwkThumbprint,
  exportJWK,
  importJWK,
  importPKCS8,
  importSPKI,
  type CryptoKey,
  type JWK,
} from 'jose';

export { JWE_ALGS, JWE_ENCS, type JweAlg, type JweEnc } from './enums.js';
export type { DecryptionKey, EncryptionKey } from './types.js';

function keyTypeFits(alg: JweAlg, kty: string | undefined): boolean {
  return alg === 'RSA-OAEP-256' ? kty === 'RSA' : kty === 'EC' || kty === 'OKP';
}

/**
 * The IdP's public key that encrypts our request objects (RFC 9101 §6.1): SPKI PEM, JWK or JWKS
 * (the first `use: enc` key fitting the alg). Returns a problem message instead of throwing.
 */
export async function loadEncryptionPublicKey(text: string, alg: JweAlg): Promise<EncryptionKey | string> {
  const t = text.trim();
  try {
    if (t.startsWith('{')) {
      const parsed = JSON.parse(t) as JWK & { keys?: JWK[] };
      const jwk = Array.isArray(parsed.keys)
        ? parsed.keys.find(
            (k) =>
              (k.use === 'enc' || k.use === undefined) &&
              keyTypeFits(alg, k.kty) &&
              (!k.alg || k.alg === alg),
          )
        : parsed;
      if (!jwk) return `no encryption key for ${alg} in the JWKS`;
      if (jwk.d !== undefined) return 'a private key was given; the IdP public key is expected';
      if (!keyTypeFits(alg, jwk.kty)) return `key type ${jwk.kty} does not fit ${alg}`;
      const key = await importJWK({ ...jwk, alg }, alg);
      if (key instanceof Uint8Array) return 'symmetric keys are not accepted';
      return { key, kid: jwk.kid };
    }
    if (t.includes('BEGIN PUBLIC KEY')) return { key: await importSPKI(t, alg), kid: undefined };
    return 'not an SPKI PEM, JWK or JWKS public key';
  } catch (err) {
    return `the key could not be imported (${(err as Error).message})`;
  }
}

/**
 * Our private key that decrypts JARM responses
 * (https://openid.net/specs/oauth-v2-jarm-final.html#section-2.2): PKCS#8 PEM or JWK.
 */
export async function loadDecryptionKey(text: string, alg: JweAlg): Promise<DecryptionKey | string> {
  const t = text.trim();
  try {
    let key: CryptoKey;
    let kid: string | undefined;
    if (t.startsWith('{')) {
      const parsed = JSON.parse(t) as JWK & { keys?: JWK[] };
      // A JWKS (a key directory): the first private key for encryption that fits the alg.
      const jwk = Array.isArray(parsed.keys)
        ? (parsed.keys.find(
            (k) => k.d !== undefined && (k.use ?? 'enc') === 'enc' && keyTypeFits(alg, k.kty),
          ) ?? {})
        : parsed;
      if (jwk.d === undefined) return 'a public key was given; the private decryption key is expected';
      if (!keyTypeFits(alg, jwk.kty)) return `key type ${jwk.kty} does not fit ${alg}`;
      const imported = await importJWK({ ...jwk, alg, use: 'enc', key_ops: undefined }, alg, {
        extractable: true,
      });
      if (imported instanceof Uint8Array) return 'symmetric keys are not accepted';
      key = imported;
      kid = jwk.kid;
    } else if (t.includes('BEGIN PRIVATE KEY')) {
      key = await importPKCS8(t, alg, { extractable: true });
    } else {
      return 'not a PKCS#8 PEM or JWK private key';
    }
    const full = await exportJWK(key);
    if (!keyTypeFits(alg, full.kty)) return `key type ${full.kty} does not fit ${alg}`;
    if (full.kty === 'RSA' && rsaModulusBits(full.n ?? '') < MIN_RSA_BITS) {
      return `RSA keys must have at least ${MIN_RSA_BITS} bits`;
    }
    const publicJwk = publicJwkOf(full);
    const resolvedKid = kid ?? (await calculateJwkThumbprint(publicJwk, 'sha256'));
    return {
      key,
      kid: resolvedKid,
      publicJwk: Object.freeze({ ...publicJwk, kid: resolvedKid, alg, use: 'enc' }),
    };
  } catch (err) {
    return `the key could not be imported (${(err as Error).message})`;
  }
}
