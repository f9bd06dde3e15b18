import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, importJWK, importPKCS8, type JWK } from 'jose';
import { MIN_RSA_BITS, rsaModulusBits } from '../jose/key-size.js';
import type { SigningAlg } from './enums.js';
import type { SigningKey } from './types.js';

/**
 * Load the client's private signing key from PKCS#8 PEM, a JWK or a JWKS (first signing key).
 * Returns a problem message instead of throwing so config loading can report everything at once.
 *
 * @see FAPI 2.0 Security Profile §5.4.1 (PS256, ES256, EdDSA with Ed25519; RSA ≥ 2048 bits)
 */
export async function loadSigningKey(
  text: string,
  requestedAlg: SigningAlg | undefined,
): Promise<SigningKey | string> {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{')) {
      const parsed = JSON.parse(trimmed) as { keys?: JWK[] } & JWK;
      const jwk = Array.isArray(parsed.keys)
        ? parsed.keys.find((k) => k.d !== undefined && (k.use === undefined || k.use === 'sig'))
        : parsed;
      if (!jwk) return 'the JWKS holds no private signing key';
      if (jwk.d === undefined) return 'the JWK is a public key; a private key is required';
      const alg = requestedAlg ?? algForJwk(jwk);
      if (typeof alg !== 'string') return alg.problem;
      if (jwk.alg !== undefined && jwk.alg !== alg)
        return `the key says alg ${jwk.alg} but ${alg} is configured`;
      const privateKey = await importJWK({ ...jwk, alg }, alg, { extractable: true });
      if (privateKey instanceof Uint8Array) return 'symmetric keys are not accepted';
      return finish(privateKey, alg, jwk.kid);
    }
    if (trimmed.includes('-----BEGIN')) {
      if (!trimmed.includes('BEGIN PRIVATE KEY')) return 'PEM keys must be PKCS#8 ("BEGIN PRIVATE KEY")';
      const alg = requestedAlg ?? (await guessPemAlg(trimmed));
      const privateKey = await importPKCS8(trimmed, alg, { extractable: true });
      return finish(privateKey, alg, undefined);
    }
    return 'not a PKCS#8 PEM, JWK or JWKS';
  } catch (err) {
    return `the key could not be imported (${(err as Error).message})`;
  }
}

function algForJwk(jwk: JWK): SigningAlg | { problem: string } {
  if (jwk.kty === 'RSA') return 'PS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return {
    problem: `unsupported key type ${jwk.kty}${jwk.crv ? `/${jwk.crv}` : ''} (RSA for PS256, P-256 for ES256, Ed25519 for EdDSA)`,
  };
}

async function guessPemAlg(pem: string): Promise<SigningAlg> {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    try {
      await importPKCS8(pem, alg);
      return alg;
    } catch {
      // not this key type
    }
  }
  return 'PS256';
}

async function finish(
  privateKey: SigningKey['privateKey'],
  alg: SigningAlg,
  kid: string | undefined,
): Promise<SigningKey | string> {
  const full = await exportJWK(privateKey);
  if (alg === 'PS256') {
    const bits = rsaModulusBits(full.n ?? '');
    if (bits < MIN_RSA_BITS) return `RSA keys must have at least ${MIN_RSA_BITS} bits (this one has ${bits})`;
    if (full.kty !== 'RSA') return 'PS256 needs an RSA key';
  } else if (alg === 'EdDSA') {
    if (full.kty !== 'OKP' || full.crv !== 'Ed25519') return 'EdDSA needs an Ed25519 (OKP) key';
  } else if (full.kty !== 'EC' || full.crv !== 'P-256') {
    return 'ES256 needs a P-256 EC key';
  }
  const publicJwk = publicJwkOf(full);
  const resolvedKid = kid ?? (await calculateJwkThumbprint(publicJwk, 'sha256'));
  return Object.freeze({
    alg,
    kid: resolvedKid,
    privateKey,
    publicJwk: Object.freeze({ ...publicJwk, kid: resolvedKid, alg, use: 'sig' }),
  });
}

/** The public members of an RSA, EC or OKP JWK (RFC 7518 §6): what may be published in our JWKS. */
export function publicJwkOf(full: JWK): JWK {
  const publicJwk: JWK = { kty: full.kty };
  for (const field of ['crv', 'x', 'y', 'n', 'e'] as const) {
    if (full[field] !== undefined) publicJwk[field] = full[field];
  }
  return publicJwk;
}

/** Decode `MS_BFF_SESSION_KEYS`: base64url 32-byte keys. */
export function parseSessionKeys(value: string): { keys: Uint8Array[]; problems: string[] } {
  const keys: Uint8Array[] = [];
  const problems: string[] = [];
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  parts.forEach((part, i) => {
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(part)) {
      problems.push(`key #${i + 1} is not base64url`);
      return;
    }
    const bytes = Buffer.from(part, 'base64url');
    if (bytes.length !== 32) problems.push(`key #${i + 1} decodes to ${bytes.length} bytes; 32 are required`);
    else keys.push(new Uint8Array(bytes));
  });
  if (parts.length === 0) problems.push('no key given');
  const seen = new Set(keys.map((k) => createHash('sha256').update(k).digest('hex')));
  if (seen.size !== keys.length) problems.push('the same key is listed twice');
  return { keys, problems };
}
