import {
  type CryptoKey,
  decodeProtectedHeader,
  errors,
  type JWSHeaderParameters,
  type JWTPayload,
  jwtVerify,
} from 'jose';

/**
 * One verification policy for every JWT the BFF accepts itself (JARM, logout tokens, service-caller
 * JWTs; ID tokens go through openid-client). The header is judged before any key is looked up, so a
 * hostile header can neither pick the algorithm nor point us at a key (RFC 8725 §3.1, §3.10).
 */

/** Bounded refusal reasons: they become metric labels, so never add free text here. */
export const JWT_REFUSALS = [
  'malformed',
  'alg',
  'alg_none',
  'untrusted_key_reference',
  'crit',
  'kid_missing',
  'kid_unknown',
  'kid_ambiguous',
  'key_invalid',
  'typ',
  'signature',
  'iss',
  'aud',
  'exp_missing',
  'expired',
  'nbf',
  'iat_future',
  'iat_too_old',
  'lifetime',
  'claim_missing',
] as const;

export type JwtRefusal = (typeof JWT_REFUSALS)[number];

export class JwtPolicyError extends Error {
  readonly reason: JwtRefusal;
  constructor(reason: JwtRefusal, options?: { cause?: unknown }) {
    super(`JWT refused: ${reason}`, options);
    this.name = 'JwtPolicyError';
    this.reason = reason;
  }
}

export interface JwtPolicy {
  /** Allowlist; 'none', HS* and RS* are refused even if listed (FAPI 2.0 SP §5.4.1, RFC 8725 §3.2). */
  algorithms: readonly string[];
  issuer: string;
  /** Exact match; an array `aud` must contain it (azp-style rules for several audiences are the caller's). */
  audience: string;
  /** Compared case-insensitively, with or without the 'application/' prefix (RFC 7515 §4.1.9). */
  typ?: { allowed: readonly string[]; required: boolean };
  /** Claims that must be present besides exp, iss and aud (which are always required). */
  requiredClaims?: readonly string[];
  /**
   * Accept a token without exp (an interop tolerance, e.g. MS_BFF_LOGOUT_TOKEN_REQUIRE_EXP=false);
   * callers must bound its use otherwise (iat age, single use). An exp that is present is still checked.
   */
  expOptional?: boolean;
  /** Tolerance for exp and nbf, and default for iat in the future. Default 30 s. */
  clockToleranceSec?: number;
  /** How far in the future iat may be; default clockToleranceSec. */
  maxIatFutureSec?: number;
  /** iat must be present and at most this many seconds in the past (no extra tolerance is added). */
  maxIatAgeSec?: number;
  /** exp - iat (or exp - now without iat) must not exceed this. */
  maxLifetimeSec?: number;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  clock?: () => number;
}

/** Picks the verification key for a header (kid + kty/alg/use/crv, FAPI 2.0 SP §5.4.3). */
export interface KeyResolver {
  resolve(header: JWSHeaderParameters): Promise<CryptoKey>;
}

const DEFAULT_CLOCK_TOLERANCE_SEC = 30;
/** No legitimate JWT we accept is near this; it bounds base64/JSON work on hostile input. */
export const MAX_JWT_LENGTH = 64 * 1024;

/** Header parameters that name a key or a place to fetch one: never trusted (RFC 8725 §3.10). */
const KEY_REFERENCE_HEADERS = ['jku', 'x5u', 'x5c', 'jwk'] as const;

/** Lower-case, without an 'application/' prefix (RFC 7515 §4.1.9 allows omitting it). */
export function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/** HS* (symmetric) and RS* (PKCS#1 v1.5) are outside FAPI 2.0 SP §5.4.1, whatever the allowlist says. */
function isForbiddenAlg(alg: string): boolean {
  return /^(HS|RS)\d+$/i.test(alg);
}

/** Header checks, in the order a reader of RFC 8725 expects; throws the first failure. */
export function checkHeader(header: JWSHeaderParameters, policy: JwtPolicy): string {
  const alg = header.alg;
  if (typeof alg !== 'string' || alg.length === 0) throw new JwtPolicyError('alg');
  if (alg.toLowerCase() === 'none') throw new JwtPolicyError('alg_none');
  if (isForbiddenAlg(alg) || !policy.algorithms.includes(alg)) throw new JwtPolicyError('alg');
  for (const name of KEY_REFERENCE_HEADERS) {
    if (Object.hasOwn(header, name)) throw new JwtPolicyError('untrusted_key_reference');
  }
  // We understand no critical extension. jose accepts `crit: ["b64"]` by default, so refuse any
  // `crit` here before jose sees it (RFC 7515 §4.1.11).
  if (Object.hasOwn(header, 'crit')) throw new JwtPolicyError('crit');
  if (typeof header.kid !== 'string' || header.kid.length === 0) throw new JwtPolicyError('kid_missing');
  if (policy.typ) {
    const typ: unknown = header.typ;
    if (typ === undefined) {
      if (policy.typ.required) throw new JwtPolicyError('typ');
    } else if (
      typeof typ !== 'string' ||
      !policy.typ.allowed.some((allowed) => normalizeTyp(allowed) === normalizeTyp(typ))
    ) {
      throw new JwtPolicyError('typ');
    }
  }
  return alg;
}

function checkPolicy(policy: JwtPolicy): void {
  if (!Array.isArray(policy.algorithms) || policy.algorithms.length === 0)
    throw new TypeError('JwtPolicy.algorithms must be a non-empty array');
  if (typeof policy.issuer !== 'string' || policy.issuer.length === 0)
    throw new TypeError('JwtPolicy.issuer must be a non-empty string');
  if (typeof policy.audience !== 'string' || policy.audience.length === 0)
    throw new TypeError('JwtPolicy.audience must be a non-empty string');
  for (const name of ['clockToleranceSec', 'maxIatFutureSec', 'maxIatAgeSec', 'maxLifetimeSec'] as const) {
    const value = policy[name];
    if (value !== undefined && !(Number.isFinite(value) && value >= 0))
      throw new TypeError(`JwtPolicy.${name} must be a finite number >= 0`);
  }
}

/** Maps jose's errors onto our bounded reasons; anything unexpected is rethrown as is. */
function translate(err: unknown): never {
  if (err instanceof errors.JWSSignatureVerificationFailed)
    throw new JwtPolicyError('signature', { cause: err });
  if (err instanceof errors.JWTExpired) throw new JwtPolicyError('expired', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'invalid') throw new JwtPolicyError('malformed', { cause: err });
    const missing = err.reason === 'missing';
    switch (err.claim) {
      case 'iss':
        throw new JwtPolicyError('iss', { cause: err });
      case 'aud':
        throw new JwtPolicyError('aud', { cause: err });
      case 'nbf':
        throw new JwtPolicyError('nbf', { cause: err });
      case 'exp':
        throw new JwtPolicyError(missing ? 'exp_missing' : 'expired', { cause: err });
      default:
        throw new JwtPolicyError(missing ? 'claim_missing' : 'malformed', { cause: err });
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) throw new JwtPolicyError('alg', { cause: err });
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid)
    throw new JwtPolicyError('malformed', { cause: err });
  // jose raises TypeError when the resolved key does not fit the alg (wrong type, RSA < 2048 bits).
  if (err instanceof TypeError || err instanceof errors.JOSENotSupported)
    throw new JwtPolicyError('key_invalid', { cause: err });
  throw err;
}

/** Decodes the protected header of a compact JWS without trusting it; 'malformed' on any defect. */
export function peekJwsHeader(token: string): JWSHeaderParameters {
  if (typeof token !== 'string' || token.length > MAX_JWT_LENGTH || token.split('.').length !== 3)
    throw new JwtPolicyError('malformed');
  try {
    return decodeProtectedHeader(token) as JWSHeaderParameters;
  } catch (cause) {
    throw new JwtPolicyError('malformed', { cause });
  }
}

/**
 * Verify a compact JWS JWT against the policy: header rules first, then the key from the resolver,
 * then signature and claims via jose, then the timing rules jose does not express (iat bounds,
 * lifetime). Throws JwtPolicyError with a bounded reason; resolver errors (e.g. the IdP's JWKS
 * cannot be fetched) pass through unchanged.
 */
export async function verifyJws(
  token: string,
  keys: KeyResolver,
  policy: JwtPolicy,
): Promise<{ payload: JWTPayload; header: JWSHeaderParameters }> {
  checkPolicy(policy);
  const header = peekJwsHeader(token);
  const alg = checkHeader(header, policy);
  const key = await keys.resolve(header);

  const clockToleranceSec = policy.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  const nowMs = (policy.clock ?? Date.now)();
  const required = new Set([...(policy.expOptional ? [] : ['exp']), ...(policy.requiredClaims ?? [])]);
  // An age bound applies to an iat that is there; whether iat must be there is requiredClaims' call
  // (JARM §2.1 does not require it, and a FAPI 2.0 IdP such as oidc-provider omits it).
  let verified: Awaited<ReturnType<typeof jwtVerify>>;
  try {
    verified = await jwtVerify(token, key, {
      algorithms: [alg],
      issuer: policy.issuer,
      audience: policy.audience,
      requiredClaims: [...required],
      clockTolerance: clockToleranceSec,
      currentDate: new Date(nowMs),
    });
  } catch (err) {
    translate(err);
  }
  const { payload, protectedHeader } = verified;

  // Same rounding as jose, so the two halves of the check agree on "now".
  const now = Math.floor(nowMs / 1000);
  const iat = payload.iat;
  const exp = payload.exp;
  // backstop: jose already required it
  if (typeof exp !== 'number' && !(exp === undefined && policy.expOptional))
    throw new JwtPolicyError('exp_missing');
  if (iat !== undefined) {
    if (iat > now + (policy.maxIatFutureSec ?? clockToleranceSec)) throw new JwtPolicyError('iat_future');
    if (policy.maxIatAgeSec !== undefined && now - iat > policy.maxIatAgeSec)
      throw new JwtPolicyError('iat_too_old');
  }
  if (
    policy.maxLifetimeSec !== undefined &&
    typeof exp === 'number' &&
    exp - (iat ?? now) > policy.maxLifetimeSec
  )
    throw new JwtPolicyError('lifetime');
  return { payload, header: protectedHeader };
}
