import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  type CryptoKey,
  decodeProtectedHeader,
  errors,
  importJWK,
  type JWK,
  type JWSHeaderParameters,
  jwtVerify,
} from 'jose';
import { BffError } from '../errors.js';
import {
  type JwtPolicy,
  JwtPolicyError,
  type KeyResolver,
  MAX_JWT_LENGTH,
  verifyJws,
} from '../jose/jwt-policy.js';
import type { KeyValueStore } from '../store/store.js';
import { MIN_RSA_BITS, rsaModulusBits } from '../jose/key-size.js';

/**
 * Validation of a service caller that presents its own DPoP-bound access token (RFC 9449 §7)
 * instead of a session cookie. Framework-free: the caller passes the method, the absolute URL it
 * was reached at, and the two headers; a refusal is a BffError('BFF_SESSION_REQUIRED') (401) with
 * the WWW-Authenticate challenge of RFC 9449 §7.1 (and DPoP-Nonce when asking for a nonce, §9).
 *
 * Order is by cost and by what an unauthenticated caller may make us do: string checks on the
 * headers, then one signature with the key the proof carries, then claims, then the access token
 * (possibly a network call to the IdP) and its binding to the proof key, and only then the replay
 * cache: nothing an unauthenticated caller sends is ever written to the store.
 */

/** Bounded refusal reasons: they become the `reason` label of dpop_validation_failures_total. */
export const DPOP_FAILURE_REASONS = [
  'missing_authorization',
  'wrong_scheme',
  'missing_proof',
  'multiple_proofs',
  'malformed_proof',
  'typ',
  'alg',
  'jwk',
  'signature',
  'htm',
  'htu',
  'iat',
  'jti_missing',
  'replay',
  'ath',
  'nonce_required',
  'nonce_invalid',
  'token_invalid',
  'token_inactive',
  'cnf_missing',
  'jkt_mismatch',
] as const;

export type DpopFailureReason = (typeof DPOP_FAILURE_REASONS)[number];

export interface DpopValidationEvents {
  /** Called exactly once per refusal; never for outages (store or IdP unreachable), which propagate. */
  failure(reason: DpopFailureReason): void;
}

export interface AccessTokenVerifier {
  /**
   * The token's claims (a DPoP-bound token carries cnf.jkt, RFC 9449 §6). Throws AccessTokenError
   * (or JwtPolicyError) when the token is invalid or inactive; any other error is an outage and
   * propagates unchanged, so an unreachable IdP is a 5xx and never a misleading 401.
   */
  verify(token: string): Promise<Record<string, unknown>>;
}

/** A verifier's refusal of the access token itself. */
export class AccessTokenError extends Error {
  readonly reason: 'token_invalid' | 'token_inactive';
  constructor(reason: 'token_invalid' | 'token_inactive', options?: { cause?: unknown }) {
    super(`access token refused: ${reason}`, options);
    this.name = 'AccessTokenError';
    this.reason = reason;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JWT access tokens (RFC 9068) verified through the shared JOSE policy. RFC 9068 §4 requires
 * `typ` at+jwt; plain `JWT` is accepted too because common IdPs still label access tokens so (an
 * ID token cannot pass for one: its `aud` is the client, not us). `aud` is required: without it a
 * token minted for any other API of the same IdP would be accepted here (RFC 9068 §4, RFC 8725
 * §3.9), so a missing audience is a configuration error, not a silent skip.
 */
export function jwtAccessTokenVerifier(opts: {
  issuer: string;
  audience?: string;
  keys: KeyResolver;
  algorithms: readonly string[];
  clock?: () => number;
}): AccessTokenVerifier {
  if (typeof opts.audience !== 'string' || opts.audience.length === 0)
    throw new TypeError('jwtAccessTokenVerifier: audience is required (RFC 9068 §4)');
  const policy: JwtPolicy = {
    algorithms: opts.algorithms,
    issuer: opts.issuer,
    audience: opts.audience,
    typ: { allowed: ['at+jwt', 'JWT'], required: true },
    ...(opts.clock ? { clock: opts.clock } : {}),
  };
  return {
    async verify(token: string): Promise<Record<string, unknown>> {
      try {
        const { payload } = await verifyJws(token, opts.keys, policy);
        return payload as Record<string, unknown>;
      } catch (err) {
        if (err instanceof JwtPolicyError)
          throw new AccessTokenError(err.reason === 'expired' ? 'token_inactive' : 'token_invalid', {
            cause: err,
          });
        // A resolver built on jose's JWKS sets says "no such key" with its own errors.
        if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
          throw new AccessTokenError('token_invalid', { cause: err });
        throw err;
      }
    },
  };
}

/**
 * Opaque tokens through token introspection (RFC 7662 §2.2): only `active: true` counts. The
 * response carries cnf.jkt for a DPoP-bound token (RFC 9449 §6.2). Errors of `introspect` itself
 * (IdP unreachable) propagate as outages.
 */
export function introspectionVerifier(
  introspect: (token: string) => Promise<Record<string, unknown>>,
): AccessTokenVerifier {
  return {
    async verify(token: string): Promise<Record<string, unknown>> {
      const response: unknown = await introspect(token);
      if (!isRecord(response) || response.active !== true) throw new AccessTokenError('token_inactive');
      return response;
    },
  };
}

const NONCE_CONTEXT = 'fapi-bff/dpop-nonce/v1:';
const MIN_NONCE_SECRET_BYTES = 32;

/**
 * Stateless server nonces for the RFC 9449 §9 challenge: HMAC(secret, time window), so every
 * instance that shares the secret issues and accepts the same nonces with no shared state. A
 * nonce is accepted in its own window and the next one, so it lives between one and two windows:
 * that bounds how long a proof made with it can be pre-computed (§11.2).
 */
export class DpopNonces {
  readonly #secret: Buffer;
  readonly #windowMs: number;
  readonly #clock: () => number;

  constructor(opts: { secret: Uint8Array; windowSec?: number; clock?: () => number }) {
    if (!(opts.secret instanceof Uint8Array) || opts.secret.byteLength < MIN_NONCE_SECRET_BYTES)
      throw new TypeError(`DpopNonces: secret must be at least ${MIN_NONCE_SECRET_BYTES} bytes`);
    const windowSec = opts.windowSec ?? 60;
    if (!Number.isFinite(windowSec) || windowSec <= 0)
      throw new TypeError('DpopNonces: windowSec must be a finite number > 0');
    // A copy: a caller zeroing or reusing its buffer must not change what we accept.
    this.#secret = Buffer.from(opts.secret);
    this.#windowMs = windowSec * 1000;
    this.#clock = opts.clock ?? Date.now;
  }

  current(): string {
    return this.#nonceFor(this.#window());
  }

  /** Current or previous window; both candidates are always compared, each in constant time. */
  isValid(nonce: string): boolean {
    if (typeof nonce !== 'string') return false;
    const given = Buffer.from(nonce);
    const w = this.#window();
    let ok = false;
    for (const candidate of [this.#nonceFor(w), this.#nonceFor(w - 1)]) {
      const expected = Buffer.from(candidate);
      // Lengths are public (every nonce has the same one); only the bytes need constant time.
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
    }
    return ok;
  }

  #window(): number {
    return Math.floor(this.#clock() / this.#windowMs);
  }

  #nonceFor(window: number): string {
    return createHmac('sha256', this.#secret).update(`${NONCE_CONTEXT}${window}`).digest('base64url');
  }
}

export interface DpopValidationOptions {
  verifier: AccessTokenVerifier;
  /** Proof algs we accept; only the asymmetric algs of PROOF_KEYS count (never none, HS*, RS*). */
  proofAlgorithms: readonly string[];
  /** jti replay cache (RFC 9449 §11.1); shared between instances when it is Redis. */
  replay: KeyValueStore;
  events: DpopValidationEvents;
  /** When set, proofs must carry a valid nonce (RFC 9449 §9). */
  nonces?: DpopNonces;
  /** How old a proof's iat may be; default 60 s. */
  iatWindowSec?: number;
  clock?: () => number;
}

export interface DpopRequest {
  method: string;
  /** The absolute URL the caller used: our public origin + path + query. */
  url: string;
  authorization: string | undefined;
  dpop: string | string[] | undefined;
}

const DEFAULT_IAT_WINDOW_SEC = 60;
/** How far in the future a proof's iat may be (clock skew between caller and us). */
const IAT_FUTURE_SKEW_SEC = 5;
/** A proof with a 4096-bit RSA jwk is under 2 KiB; anything much larger is not a proof. */
const MAX_PROOF_LENGTH = 8 * 1024;
/** Bounds the cost of one verification an unauthenticated caller can make us do (RFC 9449 §11). */
const MAX_RSA_BITS = 4096;
const MAX_RSA_EXPONENT_BYTES = 8;

/**
 * The key each accepted proof alg needs (RFC 9449 §4.3 step 5: asymmetric only). The table is the
 * allowlist's upper bound: none, HS* and RS* have no entry, so listing them enables nothing.
 */
const PROOF_KEYS: Readonly<Record<string, { kty: 'EC' | 'RSA' | 'OKP'; crv?: string }>> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
};

/** Private or symmetric key material: a proof key must be public (RFC 9449 §4.3 step 7). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** RFC 9110 §11.2 token68 (the DPoP scheme carries the access token as token68, RFC 9449 §7.1). */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
/** RFC 9110 §11.6.2 credentials: auth-scheme [ 1*SP token68 ]. */
const CREDENTIALS = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

type ErrorCode = 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_token' | undefined;

/**
 * The challenge for each reason. No error code when the caller sent no DPoP credentials at all
 * (RFC 6750 §3.1, which RFC 9449 §7.1 builds on: "lacks any authentication information ... or
 * attempted using an unsupported authentication method"). Descriptions are static: they never echo
 * the token or the proof.
 */
const CHALLENGES: Readonly<Record<DpopFailureReason, { error: ErrorCode; description: string }>> = {
  missing_authorization: { error: undefined, description: 'A DPoP-bound access token is required' },
  wrong_scheme: { error: undefined, description: 'Use the DPoP authorization scheme' },
  missing_proof: { error: 'invalid_dpop_proof', description: 'A DPoP proof is required' },
  multiple_proofs: { error: 'invalid_dpop_proof', description: 'Exactly one DPoP proof is allowed' },
  malformed_proof: { error: 'invalid_dpop_proof', description: 'The DPoP proof is not a valid JWS' },
  typ: { error: 'invalid_dpop_proof', description: 'The DPoP proof typ must be dpop+jwt' },
  alg: { error: 'invalid_dpop_proof', description: 'The DPoP proof alg is not allowed' },
  jwk: { error: 'invalid_dpop_proof', description: 'The DPoP proof jwk must be a supported public key' },
  signature: { error: 'invalid_dpop_proof', description: 'The DPoP proof signature is invalid' },
  htm: { error: 'invalid_dpop_proof', description: 'The DPoP proof htm does not match the request' },
  htu: { error: 'invalid_dpop_proof', description: 'The DPoP proof htu does not match the request' },
  iat: { error: 'invalid_dpop_proof', description: 'The DPoP proof is too old or from the future' },
  jti_missing: { error: 'invalid_dpop_proof', description: 'The DPoP proof has no jti' },
  replay: { error: 'invalid_dpop_proof', description: 'The DPoP proof was already used' },
  ath: { error: 'invalid_dpop_proof', description: 'The DPoP proof ath does not match the access token' },
  nonce_required: { error: 'use_dpop_nonce', description: 'Resource server requires nonce in DPoP proof' },
  nonce_invalid: { error: 'use_dpop_nonce', description: 'The DPoP proof nonce is invalid or expired' },
  token_invalid: { error: 'invalid_token', description: 'The access token is invalid' },
  token_inactive: { error: 'invalid_token', description: 'The access token is expired or inactive' },
  cnf_missing: { error: 'invalid_token', description: 'The access token is not DPoP-bound' },
  jkt_mismatch: { error: 'invalid_token', description: 'Invalid DPoP key binding' },
};

function wwwAuthenticate(reason: DpopFailureReason, algs: string): string {
  const { error, description } = CHALLENGES[reason];
  const params = error === undefined ? [] : [`error="${error}"`, `error_description="${description}"`];
  // RFC 9449 §7.1: `algs` tells the caller which proof algs we accept.
  params.push(`algs="${algs}"`);
  return `DPoP ${params.join(', ')}`;
}

/** Outcome of reading the Authorization header (RFC 9449 §7.1). */
function readAuthorization(value: string | undefined): { token: string } | { refusal: DpopFailureReason } {
  const trimmed = value?.trim() ?? '';
  if (trimmed.length === 0) return { refusal: 'missing_authorization' };
  const match = CREDENTIALS.exec(trimmed);
  if (!match) return { refusal: 'wrong_scheme' };
  // Scheme names are case-insensitive (RFC 9110 §11.1). Bearer is refused outright: a DPoP-bound
  // token presented as a bearer token must not be accepted (RFC 9449 §7.2), and we take no others.
  if (match[1]?.toLowerCase() !== 'dpop') return { refusal: 'wrong_scheme' };
  const token = match[2] ?? '';
  if (token.length > MAX_JWT_LENGTH || !TOKEN68.test(token)) return { refusal: 'token_invalid' };
  return { token };
}

/** Exactly one DPoP header (RFC 9449 §4.3 step 1). */
function readProof(value: string | string[] | undefined): { proof: string } | { refusal: DpopFailureReason } {
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
  if (values.length > 1) return { refusal: 'multiple_proofs' };
  const proof = values[0]?.trim() ?? '';
  if (proof.length === 0) return { refusal: 'missing_proof' };
  // Node joins a repeated header into one value with ", " (RFC 9110 §5.3); a JWS has no comma.
  if (proof.includes(',')) return { refusal: 'multiple_proofs' };
  // Strict base64url segments: jose decodes leniently (whitespace, padding), and a proof has one spelling.
  if (proof.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(proof)) return { refusal: 'malformed_proof' };
  return { proof };
}

/**
 * The proof's `jwk` reduced to the RFC 7638 required members, or undefined when it is not a
 * public key fit for `alg`. Importing only those members means `key_ops`, `ext` and the like
 * cannot change what we verify with, and the thumbprint is of exactly the key that verified.
 */
function publicProofJwk(value: unknown, alg: string): JWK | undefined {
  const need = PROOF_KEYS[alg];
  if (!need || !isRecord(value)) return undefined;
  if (PRIVATE_MEMBERS.some((member) => Object.hasOwn(value, member))) return undefined;
  if (value.kty !== need.kty) return undefined;
  if (value.alg !== undefined && value.alg !== alg) return undefined; // RFC 7517 §4.4
  if (value.use !== undefined && value.use !== 'sig') return undefined; // RFC 7517 §4.2
  const { x, y, n, e, crv } = value;
  if (need.kty === 'EC') {
    if (crv !== need.crv || typeof x !== 'string' || typeof y !== 'string') return undefined;
    if (!BASE64URL.test(x) || !BASE64URL.test(y)) return undefined;
    return { kty: 'EC', crv: need.crv, x, y };
  }
  if (need.kty === 'OKP') {
    if (crv !== need.crv || typeof x !== 'string' || !BASE64URL.test(x)) return undefined;
    return { kty: 'OKP', crv: need.crv, x };
  }
  if (typeof n !== 'string' || typeof e !== 'string' || !BASE64URL.test(n) || !BASE64URL.test(e))
    return undefined;
  const bits = rsaModulusBits(n);
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) return undefined;
  if (Buffer.from(e, 'base64url').length > MAX_RSA_EXPONENT_BYTES) return undefined;
  return { kty: 'RSA', n, e };
}

/**
 * Scheme, host, port and path in normal form (RFC 3986 §6.2.2-6.2.3): the WHATWG parser lower-cases
 * scheme and host, drops default ports, turns an empty path into "/" and removes dot segments;
 * percent-encodings are then upper-cased and unreserved characters decoded. Query and fragment are
 * dropped (RFC 9449 §4.3 step 9). Undefined when not an absolute http(s) URI without userinfo.
 */
export function normalizeHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (escape) => {
    const char = String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    return UNRESERVED.test(char) ? char : escape.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

/**
 * RFC 7638 §3 thumbprint of a reduced jwk: SHA-256 over its required members in lexicographic
 * order, which is the order publicProofJwk builds them in (crv, kty, x, y / e, kty, n). Synchronous
 * and without the WebCrypto round trip jose's calculateJwkThumbprint takes.
 */
function thumbprint(jwk: JWK): string {
  const members =
    jwk.kty === 'RSA'
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : jwk.kty === 'EC'
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/**
 * Imported proof keys by alg and thumbprint. Importing an EC jwk (point validation) costs about as
 * much as verifying with it, and a service caller reuses its key for many requests. The thumbprint
 * covers every member we import, so one entry can never stand for another key. Bounded, oldest
 * first: a flood of fresh keys only lowers the hit rate. Failed imports are not kept.
 */
class ProofKeyCache {
  readonly #keys = new Map<string, Promise<CryptoKey>>();
  constructor(readonly max: number) {}

  get(jwk: JWK, alg: string, jkt: string): Promise<CryptoKey> {
    const id = `${alg}:${jkt}`;
    let key = this.#keys.get(id);
    if (!key) {
      if (this.#keys.size >= this.max) this.#keys.delete(this.#keys.keys().next().value as string);
      key = importJWK(jwk, alg) as Promise<CryptoKey>;
      key.catch(() => this.#keys.delete(id));
      this.#keys.set(id, key);
    }
    return key;
  }
}

const proofKeys = new ProofKeyCache(1_000);

/** base64url(SHA-256(access token)), the `ath` claim (RFC 9449 §4.2). */
function accessTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Maps jose's refusal of the proof onto our reasons; the proof is hostile input, so all are 401s. */
function proofVerifyFailure(err: unknown): DpopFailureReason {
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  // jose checks exp/nbf when present and the type of iat: all are the proof's timing.
  if (err instanceof errors.JWTExpired) return 'iat';
  if (err instanceof errors.JWTClaimValidationFailed)
    return ['iat', 'nbf', 'exp'].includes(err.claim) ? 'iat' : 'malformed_proof';
  // Raised when the imported key does not fit the alg.
  if (err instanceof TypeError || err instanceof errors.JOSENotSupported) return 'jwk';
  return 'malformed_proof';
}

function effectiveAlgorithms(opts: DpopValidationOptions): string[] {
  if (!Array.isArray(opts.proofAlgorithms))
    throw new TypeError('validateDpopRequest: proofAlgorithms must be an array');
  const algs = [...new Set(opts.proofAlgorithms.filter((alg) => Object.hasOwn(PROOF_KEYS, alg)))];
  if (algs.length === 0)
    throw new TypeError('validateDpopRequest: proofAlgorithms lists no supported asymmetric alg');
  return algs;
}

/**
 * Validate a request authenticated with a DPoP-bound access token (RFC 9449 §4.3, §7) and return
 * the token's claims and the proof key's thumbprint. Refusals throw BffError('BFF_SESSION_REQUIRED')
 * after reporting one reason to `events`; outages (replay store, IdP) propagate unchanged.
 */
export async function validateDpopRequest(
  req: DpopRequest,
  opts: DpopValidationOptions,
): Promise<{ claims: Record<string, unknown>; jkt: string }> {
  const algs = effectiveAlgorithms(opts);
  const windowSec = opts.iatWindowSec ?? DEFAULT_IAT_WINDOW_SEC;
  if (!Number.isFinite(windowSec) || windowSec <= 0)
    throw new TypeError('validateDpopRequest: iatWindowSec must be a finite number > 0');
  const algsParam = algs.join(' ');
  const nowMs = (opts.clock ?? Date.now)();

  const fail = (reason: DpopFailureReason, cause?: unknown): BffError => {
    opts.events.failure(reason);
    const headers: Record<string, string> = { 'WWW-Authenticate': wwwAuthenticate(reason, algsParam) };
    // RFC 9449 §9: the nonce to use comes with the use_dpop_nonce challenge.
    if (opts.nonces && CHALLENGES[reason].error === 'use_dpop_nonce')
      headers['DPoP-Nonce'] = opts.nonces.current();
    return new BffError('BFF_SESSION_REQUIRED', {
      reason,
      detail: CHALLENGES[reason].description,
      headers,
      ...(cause === undefined ? {} : { cause }),
    });
  };

  // 1. Headers: string work only.
  const authorization = readAuthorization(req.authorization);
  if ('refusal' in authorization) throw fail(authorization.refusal);
  const { token } = authorization;
  const dpop = readProof(req.dpop);
  if ('refusal' in dpop) throw fail(dpop.refusal);
  const { proof } = dpop;

  // 2. The proof's protected header (RFC 9449 §4.3 steps 2-7), before any crypto.
  let header: JWSHeaderParameters;
  try {
    header = decodeProtectedHeader(proof) as JWSHeaderParameters;
  } catch (cause) {
    throw fail('malformed_proof', cause);
  }
  // We understand no critical extension (RFC 7515 §4.1.11); jose would accept `b64`.
  if (Object.hasOwn(header, 'crit')) throw fail('malformed_proof');
  const typ: unknown = header.typ;
  if (typeof typ !== 'string' || typ.toLowerCase() !== 'dpop+jwt') throw fail('typ');
  const alg = header.alg;
  if (typeof alg !== 'string' || !algs.includes(alg)) throw fail('alg');
  const jwk = publicProofJwk(header.jwk, alg);
  if (!jwk) throw fail('jwk');

  // 3. Signature with the embedded key (step 6). exp/nbf, if a caller adds them, are honoured too.
  const jkt = thumbprint(jwk);
  let key: CryptoKey;
  try {
    key = await proofKeys.get(jwk, alg, jkt);
  } catch (cause) {
    throw fail('jwk', cause);
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, key, {
      algorithms: [alg],
      currentDate: new Date(nowMs),
      clockTolerance: IAT_FUTURE_SKEW_SEC,
    }));
  } catch (cause) {
    throw fail(proofVerifyFailure(cause), cause);
  }

  // 4. Claims (steps 8-12).
  if (typeof payload.htm !== 'string' || payload.htm !== req.method) throw fail('htm');
  const htu = typeof payload.htu === 'string' ? normalizeHtu(payload.htu) : undefined;
  if (htu === undefined || htu !== normalizeHtu(req.url)) throw fail('htu');
  if (opts.nonces) {
    if (payload.nonce === undefined) throw fail('nonce_required');
    if (typeof payload.nonce !== 'string' || !opts.nonces.isValid(payload.nonce)) throw fail('nonce_invalid');
  }
  const iat = payload.iat;
  const nowSec = nowMs / 1000;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw fail('iat');
  if (nowSec - iat > windowSec || iat - nowSec > IAT_FUTURE_SKEW_SEC) throw fail('iat');
  // §7 / §4.3 step 12: with an access token, ath is required and must be its hash.
  if (payload.ath !== accessTokenHash(token)) throw fail('ath');
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0) throw fail('jti_missing');

  // 5. The access token, then its binding to the proof key (§6, §7: cnf.jkt = thumbprint).
  let claims: Record<string, unknown>;
  try {
    claims = await opts.verifier.verify(token);
  } catch (err) {
    if (err instanceof AccessTokenError) throw fail(err.reason, err);
    if (err instanceof JwtPolicyError)
      throw fail(err.reason === 'expired' ? 'token_inactive' : 'token_invalid', err);
    throw err;
  }
  if (!isRecord(claims)) throw fail('token_invalid');
  const cnf = claims.cnf;
  const boundJkt = isRecord(cnf) ? cnf.jkt : undefined;
  if (typeof boundJkt !== 'string' || boundJkt.length === 0) throw fail('cnf_missing');
  if (boundJkt !== jkt) throw fail('jkt_mismatch');
  // 6. Replay (§11.1), only now that the proof is genuine AND its key is the one the IdP bound the
  // access token to: a caller holding no valid token can sign proofs with a key of its own at will,
  // so recording their jti first would let anyone write replay entries at request rate (and, with
  // a bounded cache, push out the entries that stop genuine replays). The key is scoped to the
  // proof key, so one caller cannot burn another's jti values; jkt has a fixed length (43), so jti + jkt is
  // unambiguous. The entry outlives every instant at which the proof's iat would still pass.
  const replayKey = `dpopjti:${createHash('sha256')
    .update(jti + jkt)
    .digest('base64url')}`;
  const ttlMs = (windowSec + IAT_FUTURE_SKEW_SEC) * 1000 + 1000;
  if (!(await opts.replay.setIfAbsent(replayKey, '1', ttlMs))) throw fail('replay');

  return { claims, jkt };
}
