import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CompactEncrypt, type CryptoKey, SignJWT } from 'jose';
import { JWE_ALGS, JWE_ENCS, SIGNING_ALGS, type SigningAlg } from '../config/enums.js';
import type { SigningKey } from '../config/types.js';

/**
 * Signed (optionally signed-then-encrypted) request objects (https://www.rfc-editor.org/rfc/rfc9101) as FAPI 2.0
 * Message Signing requires them (https://openid.net/specs/fapi-message-signing-2_0-final.html#section-5.3.2). The object is pushed via PAR, so only
 * `client_id` and `request_uri` ever reach the browser.
 */

export interface RequestObjectOptions {
  clientId: string;
  /** The AS issuer identifier, as a string (Message Signing §5.3.2). */
  audience: string;
  signingKey: SigningKey;
  alg: SigningAlg;
  /** MS_BFF_JAR_ALGS_ALLOWED. */
  allowedAlgs: readonly string[];
  /** Default 60, at most 60 (short-lived: Message Signing §5.3.2 allows 60 min, we need seconds). */
  lifetimeSec?: number;
  clock?: () => number;
  /** Nested JWT: sign, then encrypt (https://www.rfc-editor.org/rfc/rfc9101#section-4), cty 'JWT'. */
  encryption?: { key: CryptoKey | KeyObject; kid?: string; alg: string; enc: string };
}

const TYP = 'oauth-authz-req+jwt'; // https://www.rfc-editor.org/rfc/rfc9101#section-10.8
const MAX_LIFETIME_SEC = 60;
const STRONG_ENC_ALGS: readonly string[] = JWE_ALGS;
const STRONG_ENC_ENCS: readonly string[] = JWE_ENCS;
/** Claims the builder owns; a caller-supplied value would silently change the object's meaning. */
const RESERVED = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'sub']);
/** https://www.rfc-editor.org/rfc/rfc9101#section-4. */
const FORBIDDEN = new Set(['request', 'request_uri']);
/** Parameters whose claim is a JSON number (https://www.rfc-editor.org/rfc/rfc9101#section-4). */
const NUMERIC_PARAMS = new Set(['max_age']);
/** Parameters whose claim is a JSON object or array (OIDC Core §5.5, RFC 9396). */
const JSON_PARAMS = new Set(['claims', 'authorization_details']);
/** Parameters that may be given more than once, as a JSON array claim (RFC 8707 §2.1 `resource`). */
const MULTI_PARAMS = new Set(['resource']);
/** Top-level parameters that legitimately sit beside a request object. */
const TRANSPORT_PARAMS = new Set(['request', 'request_uri']);

/** The claim a top-level parameter value becomes (RFC 9101 §4: numbers as numbers, JSON as JSON). */
function toClaim(name: string, value: string): unknown {
  if (NUMERIC_PARAMS.has(name)) {
    if (!/^(0|[1-9]\d{0,9})$/.test(value))
      throw new Error(`request object: ${name} must be a non-negative integer`);
    return Number(value);
  }
  if (JSON_PARAMS.has(name)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new Error(`request object: ${name} must be JSON`);
    }
    if (parsed === null || typeof parsed !== 'object')
      throw new Error(`request object: ${name} must be a JSON object or array`);
    return parsed;
  }
  return value;
}

function checkOptions(opts: RequestObjectOptions): number {
  if (opts.alg === ('none' as string) || !opts.allowedAlgs.includes(opts.alg))
    throw new Error(
      `request object: alg ${String(opts.alg)} is not allowed (allowed: ${opts.allowedAlgs.join(', ')})`,
    );
  // https://openid.net/specs/fapi-security-profile-2_0-final.html#section-5.4.1
  if (!(SIGNING_ALGS as readonly string[]).includes(opts.alg))
    throw new Error(`request object: alg ${String(opts.alg)} is not a FAPI 2.0 algorithm`);
  if (opts.signingKey.alg !== opts.alg)
    throw new Error(`request object: the signing key is for ${opts.signingKey.alg}, not ${opts.alg}`);
  if (typeof opts.clientId !== 'string' || opts.clientId.length === 0)
    throw new Error('request object: clientId is required');
  if (typeof opts.audience !== 'string' || opts.audience.length === 0)
    throw new Error('request object: audience (the issuer) is required');
  const lifetime = opts.lifetimeSec ?? MAX_LIFETIME_SEC;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_LIFETIME_SEC)
    throw new Error(`request object: lifetimeSec must be an integer in [1, ${MAX_LIFETIME_SEC}]`);
  if (opts.encryption) {
    const { alg, enc } = opts.encryption;
    if (!STRONG_ENC_ALGS.includes(alg))
      throw new Error(
        `request object: encryption alg ${alg} refused (allowed: ${STRONG_ENC_ALGS.join(', ')})`,
      );
    if (!STRONG_ENC_ENCS.includes(enc))
      throw new Error(
        `request object: encryption enc ${enc} refused (allowed: ${STRONG_ENC_ENCS.join(', ')})`,
      );
  }
  return lifetime;
}

/** Builds the claims of a request object from authorization parameters (exported for tests and PAR). */
export function buildRequestObjectClaims(
  params: Readonly<Record<string, string | readonly string[]>>,
  clientId: string,
): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) {
    if (FORBIDDEN.has(name))
      throw new Error(`request object: ${name} must not appear inside a request object`);
    if (RESERVED.has(name)) throw new Error(`request object: ${name} is set by the builder, not a parameter`);
    if (Array.isArray(value) && MULTI_PARAMS.has(name) && value.every((v) => typeof v === 'string')) {
      claims[name] = value.length === 1 ? value[0] : [...(value as readonly string[])];
      continue;
    }
    if (typeof value !== 'string') throw new Error(`request object: ${name} must be a string parameter`);
    claims[name] = toClaim(name, value);
  }
  if (claims.client_id !== undefined && claims.client_id !== clientId)
    throw new Error('request object: client_id parameter differs from the client id');
  claims.client_id = clientId;
  return claims;
}

/** Sign (and optionally encrypt) a request object. Throws a plain Error with a clear message on misuse. */
export async function buildRequestObject(
  params: Readonly<Record<string, string | readonly string[]>>,
  opts: RequestObjectOptions,
): Promise<string> {
  const lifetime = checkOptions(opts);
  const claims = buildRequestObjectClaims(params, opts.clientId);
  const iat = Math.floor((opts.clock ?? Date.now)() / 1000);
  const jws = await new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg, kid: opts.signingKey.kid, typ: TYP })
    .setIssuer(opts.clientId) // RFC 9101 §4; never `sub` (RFC 9101 §10.8)
    .setAudience(opts.audience) // a string, the issuer (Message Signing §5.3.2)
    .setIssuedAt(iat)
    .setNotBefore(iat) // Message Signing §5.3.2
    .setExpirationTime(iat + lifetime) // Message Signing §5.3.2: at most 60 minutes
    .setJti(randomBytes(32).toString('base64url')) // 256 bits (FAPI 2.0 SP §5.4.1-4)
    .sign(opts.signingKey.privateKey);
  if (!opts.encryption) return jws;
  const { key, kid, alg, enc } = opts.encryption;
  return new CompactEncrypt(new TextEncoder().encode(jws))
    .setProtectedHeader({ alg, enc, cty: 'JWT', ...(kid === undefined ? {} : { kid }) })
    .encrypt(key);
}

function sameValue(topLevel: string, claim: unknown): boolean {
  if (typeof claim === 'string') return claim === topLevel;
  if (typeof claim === 'number') return String(claim) === topLevel;
  if (claim !== null && typeof claim === 'object') {
    try {
      return JSON.stringify(JSON.parse(topLevel)) === JSON.stringify(claim);
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * Duplicate rule (https://www.rfc-editor.org/rfc/rfc9101#section-5, OpenID Connect Core §6.1): every top-level parameter sent beside a request object must be
 * absent from it or equal to it exactly, so the IdP cannot see two different requests. `request` and
 * `request_uri` are transport; `client_id` must also match when the object carries one (RFC 9101 §5).
 */
export function checkTopLevelDuplicates(
  topLevel: Record<string, string>,
  requestObjectClaims: Record<string, unknown>,
): void {
  for (const [name, value] of Object.entries(topLevel)) {
    if (TRANSPORT_PARAMS.has(name) || !Object.hasOwn(requestObjectClaims, name)) continue;
    if (!sameValue(value, requestObjectClaims[name]))
      throw new Error(`top-level parameter ${name} differs from the request object`);
  }
}
