import { createHash } from 'node:crypto';
import { type CryptoKey, compactDecrypt, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { JARM_MODES, JWE_ALGS, JWE_ENCS, type JarmMode, type JweAlg, type JweEnc } from '../config/enums.js';
import { BffError } from '../errors.js';
import type { KeyValueStore } from '../store/store.js';
import {
  JWT_REFUSALS,
  type JwtPolicy,
  JwtPolicyError,
  type KeyResolver,
  MAX_JWT_LENGTH,
  normalizeTyp,
  verifyJws,
} from '../jose/jwt-policy.js';

/**
 * JARM verification (https://openid.net/specs/oauth-v2-jarm-final.html, processing rules in §2.4). Every check has its own bounded reason
 * (a metric label). Nothing from the response is returned until every check passed, and `error` responses are returned, not
 * thrown, only then.
 */

export { JARM_MODES, type JarmMode } from '../config/enums.js';
export type { JweAlg as JarmEncAlg, JweEnc as JarmEncEnc } from '../config/enums.js';

export interface JarmEvents {
  /** jarm_responses_verified_total{mode} */
  verified(mode: JarmMode): void;
  /** jarm_decryption_failures_total{alg}; alg is bounded (a known JWE alg or 'unknown'). */
  decryptionFailed(alg: string): void;
  /** jarm_validation_failures_total{reason}: fires for EVERY refusal, beside the specific counters. */
  validationFailed(reason: string): void;
  /** jarm_replay_denied_total */
  replayDenied(): void;
  /** jarm_typ_invalid_total */
  typInvalid(): void;
  /** jarm_aud_mismatch_total */
  audMismatch(): void;
}

export interface JarmOptions {
  issuer: string;
  clientId: string;
  mode: JarmMode;
  /** Signing allowlist, e.g. ['PS256', 'ES256']. */
  algorithms: readonly string[];
  /** When set, a plain JWS is refused: our policy on top of JARM §2.2, which makes encryption optional. */
  decryption?: {
    /** A key, or (a key set) the key for the JWE's kid; retiring keys still decrypt. */
    key: CryptoKey | ((kid: string | undefined) => CryptoKey | undefined);
    alg: JweAlg;
    enc: JweEnc;
  };
  keys: KeyResolver;
  replay: KeyValueStore;
  events: JarmEvents;
  clock?: () => number;
  /** iat must be within ± this of now. Default 120, at most 120 (our bound; JARM §2.1 does not require iat). */
  iatSkewSec?: number;
  /** exp - iat must not exceed this. Default 600. */
  maxLifetimeSec?: number;
  /** Tolerance on exp (and nbf). Default 30, at most 30. */
  expToleranceSec?: number;
}

export const JARM_REFUSALS = [
  ...JWT_REFUSALS,
  'jwe_unexpected',
  'encryption_required',
  'jwe_alg',
  'jwe_enc',
  'jwe_cty',
  'decryption',
  'nested_not_signed',
  'iss_mismatch',
  'state_missing',
  'state_mismatch',
  'replay',
] as const;

export type JarmRefusal = (typeof JARM_REFUSALS)[number];

/** A refused JARM: always BFF_CALLBACK_INVALID (400) with the bounded reason. */
export class JarmError extends BffError {
  override readonly reason: JarmRefusal;
  constructor(reason: JarmRefusal, cause?: unknown) {
    super('BFF_CALLBACK_INVALID', { reason, cause, detail: 'the signed authorization response was refused' });
    this.name = 'JarmError';
    this.reason = reason;
  }
}

const TYP_ALLOWED = ['oauth-authz-resp+jwt', 'JWT'] as const; // https://openid.net/specs/oauth-v2-jarm-final.html#section-2.1; `JWT` from IdPs that type it generically
const DEFAULT_IAT_SKEW_SEC = 120;
const DEFAULT_MAX_LIFETIME_SEC = 600;
/**
 * 30 s on exp, the tolerance oauth4webapi applies to JARM (https://openid.net/specs/oauth-v2-jarm-final.html#section-2.4 step 5): switching to our
 * verifier must not reject what the library accepted, while a response 6 min past exp (the suite's
 * case) still fails. The replay entry lives until exp + this, so the extra window is covered.
 */
const DEFAULT_EXP_TOLERANCE_SEC = 30;
/** Labels for jarm_decryption_failures_total{alg}: a header alg outside this set becomes 'unknown'. */
const KNOWN_JWE_ALGS = new Set([
  'RSA1_5',
  'RSA-OAEP',
  'RSA-OAEP-256',
  'RSA-OAEP-384',
  'RSA-OAEP-512',
  'ECDH-ES',
  'ECDH-ES+A128KW',
  'ECDH-ES+A192KW',
  'ECDH-ES+A256KW',
  'A128KW',
  'A192KW',
  'A256KW',
  'A128GCMKW',
  'A192GCMKW',
  'A256GCMKW',
  'dir',
  'PBES2-HS256+A128KW',
  'PBES2-HS384+A192KW',
  'PBES2-HS512+A256KW',
]);
/** JWT bookkeeping claims; everything else that is a string is an authorization response parameter. */
const NOT_RESPONSE_PARAMS = new Set(['aud', 'exp', 'iat', 'nbf', 'jti']);
const MAX_JTI_LENGTH = 512;
const MAX_STATE_LENGTH = 1024;

function checkOptions(opts: JarmOptions): void {
  if (!JARM_MODES.includes(opts.mode)) throw new TypeError(`unknown JARM mode ${String(opts.mode)}`);
  if (opts.decryption) {
    if (!JWE_ALGS.includes(opts.decryption.alg) || !JWE_ENCS.includes(opts.decryption.enc))
      throw new TypeError('JARM decryption alg/enc must be a strong pair');
  }
  const skew = opts.iatSkewSec ?? DEFAULT_IAT_SKEW_SEC;
  if (!(Number.isFinite(skew) && skew > 0 && skew <= 120))
    throw new RangeError('iatSkewSec must be in (0, 120]');
  const tolerance = opts.expToleranceSec ?? DEFAULT_EXP_TOLERANCE_SEC;
  if (!(Number.isFinite(tolerance) && tolerance >= 0 && tolerance <= 30))
    throw new RangeError('expToleranceSec must be in [0, 30]');
  const lifetime = opts.maxLifetimeSec ?? DEFAULT_MAX_LIFETIME_SEC;
  if (!(Number.isFinite(lifetime) && lifetime > 0)) throw new RangeError('maxLifetimeSec must be > 0');
}

function segments(token: string): number {
  return token.split('.').length;
}

/** Decrypts a JWE whose protected alg/enc equal the configured pair; returns the inner compact JWS. */
async function decrypt(
  response: string,
  decryption: NonNullable<JarmOptions['decryption']>,
  events: JarmEvents,
): Promise<string> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(response);
  } catch (cause) {
    events.decryptionFailed('unknown');
    throw new JarmError('malformed', cause);
  }
  const label = typeof header.alg === 'string' && KNOWN_JWE_ALGS.has(header.alg) ? header.alg : 'unknown';
  const failed = (reason: JarmRefusal, cause?: unknown): JarmError => {
    events.decryptionFailed(label);
    return new JarmError(reason, cause);
  };
  // Pinned pair, exact match: no downgrade to another alg or enc (https://www.rfc-editor.org/rfc/rfc8725#section-3.1).
  if (header.alg !== decryption.alg) throw failed('jwe_alg');
  if (header.enc !== decryption.enc) throw failed('jwe_enc');
  if (Object.hasOwn(header, 'crit')) throw failed('crit');
  // Nested JWT: cty 'JWT' (RFC 7519 §5.2); absent is tolerated, the inner must still be a JWS.
  if (header.cty !== undefined && (typeof header.cty !== 'string' || normalizeTyp(header.cty) !== 'jwt'))
    throw new JarmError('jwe_cty');
  let plaintext: Uint8Array;
  try {
    // A key set: the key the JWE names by kid (retiring keys still decrypt), else the active one.
    const key =
      typeof decryption.key === 'function'
        ? decryption.key(typeof header.kid === 'string' ? header.kid : undefined)
        : decryption.key;
    if (!key) throw failed('decryption');
    ({ plaintext } = await compactDecrypt(response, key, {
      keyManagementAlgorithms: [decryption.alg],
      contentEncryptionAlgorithms: [decryption.enc],
    }));
  } catch (cause) {
    throw failed('decryption', cause);
  }
  // RFC 8725 §3.3: validate every layer. A JWE around unsigned JSON is not a JARM (https://openid.net/specs/oauth-v2-jarm-final.html#section-2.2).
  let inner: string;
  try {
    inner = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
  } catch (cause) {
    throw new JarmError('nested_not_signed', cause);
  }
  if (segments(inner) !== 3) throw new JarmError('nested_not_signed');
  return inner;
}

/**
 * Replay key: the jti if any, else a hash of the signed claims. Not of the token text: an ECDSA
 * signature (r, s) has a twin (r, n - s) that also verifies, so the text can change while the claims do not.
 */
/**
 * Without a jti, the key is a hash of the signed payload segment: the signature covers exactly that
 * text, so a re-encoded payload cannot verify, and an ECDSA "twin" signature (r, n−s) changes only
 * the third segment; re-serialising the claims would cost more for the same guarantee.
 */
function replayKey(payload: JWTPayload, jws: string): string {
  if (payload.jti !== undefined) {
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > MAX_JTI_LENGTH)
      throw new JarmError('malformed');
    return `jarm:${payload.jti}`;
  }
  const start = jws.indexOf('.') + 1;
  const payloadSegment = jws.slice(start, jws.indexOf('.', start));
  return `jarm:${createHash('sha256').update(payloadSegment).digest('base64url')}`;
}

/** The response's layers opened once (RFC 8725 §3.3): JWE checks and decryption, or the JWS as is. */
async function openResponse(
  response: string,
  opts: Pick<JarmOptions, 'decryption' | 'events'>,
): Promise<string> {
  if (typeof response !== 'string' || response.length === 0 || response.length > MAX_JWT_LENGTH)
    throw new JarmError('malformed');
  const parts = segments(response);
  if (parts !== 3 && parts !== 5) throw new JarmError('malformed');
  if (opts.decryption) {
    if (parts === 3) throw new JarmError('encryption_required');
    return decrypt(response, opts.decryption, opts.events);
  }
  if (parts === 5) throw new JarmError('jwe_unexpected');
  return response;
}

export interface OpenedJarm {
  readonly response: string;
  /** The signed layer, decrypted when the response was a JWE; not yet verified. */
  readonly jws: string;
  /** The state claim, NOT verified: only to find the login transaction before verifyJarm runs. */
  readonly state: string | undefined;
}

export interface JarmContext {
  outerIss: string | null;
  expectedState?: string;
  /** openJarm's result for this response: verifyJarm then does not decrypt a second time. */
  opened?: OpenedJarm;
}

/**
 * Open a JARM response once, with every JWE check verifyJarm applies (pinned alg/enc, no crit,
 * cty, nested JWS), and read its state without trusting it. A refusal here is counted and thrown
 * like verifyJarm's. The callback decrypts once instead of twice (~1.3 ms per encrypted login).
 */
export async function openJarm(
  response: string,
  opts: Pick<JarmOptions, 'decryption' | 'events'>,
): Promise<OpenedJarm> {
  try {
    const jws = await openResponse(response, opts);
    let state: string | undefined;
    try {
      const claim = decodeJwt(jws).state;
      state =
        typeof claim === 'string' && claim.length > 0 && claim.length <= MAX_STATE_LENGTH ? claim : undefined;
    } catch {
      state = undefined;
    }
    return { response, jws, state };
  } catch (err) {
    if (err instanceof JarmError) opts.events.validationFailed(err.reason);
    throw err;
  }
}

async function verify(response: string, ctx: JarmContext, opts: JarmOptions): Promise<URLSearchParams> {
  // The callback may already have opened this exact response (openJarm): the JWE checks ran then.
  const jws = ctx.opened?.response === response ? ctx.opened.jws : await openResponse(response, opts);

  const tolerance = opts.expToleranceSec ?? DEFAULT_EXP_TOLERANCE_SEC;
  const skew = opts.iatSkewSec ?? DEFAULT_IAT_SKEW_SEC;
  const policy: JwtPolicy = {
    algorithms: opts.algorithms,
    issuer: opts.issuer,
    audience: opts.clientId,
    typ: { allowed: TYP_ALLOWED, required: false },
    // JARM §2.1 (https://openid.net/specs/oauth-v2-jarm-final.html#section-2.1) requires iss, aud and exp, not iat: oidc-provider, a FAPI 2.0 IdP, omits it.
    // Appendix A's ±120 s skew applies when iat is present; without it the lifetime cap bounds
    // exp - now instead, so a response can never be valid for long either way.
    requiredClaims: ['iss', 'aud', 'exp'],
    clockToleranceSec: tolerance,
    maxIatFutureSec: skew,
    maxIatAgeSec: skew,
    maxLifetimeSec: opts.maxLifetimeSec ?? DEFAULT_MAX_LIFETIME_SEC,
    ...(opts.clock ? { clock: opts.clock } : {}),
  };
  let payload: JWTPayload;
  try {
    ({ payload } = await verifyJws(jws, opts.keys, policy));
  } catch (err) {
    if (err instanceof JwtPolicyError) throw new JarmError(err.reason, err);
    throw err; // e.g. the JWKS cannot be fetched: BFF_IDP_UNAVAILABLE / BFF_IDP_ERROR, not a refusal
  }

  // https://www.rfc-editor.org/rfc/rfc9207#section-2.4: an outer iss beside `response` must name the same issuer.
  if (ctx.outerIss !== null && ctx.outerIss !== payload.iss) throw new JarmError('iss_mismatch');
  const state = payload.state;
  if (typeof state !== 'string' || state.length === 0 || state.length > MAX_STATE_LENGTH)
    throw new JarmError('state_missing');
  if (ctx.expectedState !== undefined && state !== ctx.expectedState) throw new JarmError('state_mismatch');

  // Last, so a refused response never burns a replay entry. Held until exp (+ tolerance): after
  // that the exp check refuses the response anyway.
  const key = replayKey(payload, jws);
  const nowMs = (opts.clock ?? Date.now)();
  const ttlMs = Math.max(1000, ((payload.exp as number) + tolerance) * 1000 - nowMs);
  if (!(await opts.replay.setIfAbsent(key, '1', ttlMs))) throw new JarmError('replay');

  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(payload)) {
    if (!NOT_RESPONSE_PARAMS.has(name) && typeof value === 'string') params.append(name, value);
  }
  return params;
}

/**
 * Verify a JARM `response` and return the authorization response parameters it carries (code,
 * state, iss, error, error_description, ...). `outerIss` is an `iss` parameter sent beside
 * `response` (RFC 9207); `expectedState` is the state of the login transaction the caller looked up.
 * Throws JarmError (BFF_CALLBACK_INVALID) on any refusal; JWKS outages surface as the JwksCache's
 * BFF_IDP_UNAVAILABLE / BFF_IDP_ERROR.
 */
export async function verifyJarm(
  response: string,
  ctx: JarmContext,
  opts: JarmOptions,
): Promise<URLSearchParams> {
  checkOptions(opts);
  try {
    const params = await verify(response, ctx, opts);
    opts.events.verified(opts.mode);
    return params;
  } catch (err) {
    if (err instanceof JarmError) {
      opts.events.validationFailed(err.reason);
      if (err.reason === 'typ') opts.events.typInvalid();
      else if (err.reason === 'aud') opts.events.audMismatch();
      else if (err.reason === 'replay') opts.events.replayDenied();
    }
    throw err;
  }
}

/**
 * The state inside a JARM response, NOT verified: only to find the login transaction, after which
 * verifyJarm must run. Undefined for anything malformed. Decrypts a JWE when decryption is configured
 * (with the same pinned alg/enc).
 */
export async function peekJarmState(
  response: string,
  opts: Pick<JarmOptions, 'decryption'>,
): Promise<string | undefined> {
  // The opening path of openJarm and verifyJarm; a peek counts nothing and never throws.
  return openJarm(response, { ...opts, events: SILENT_EVENTS }).then(
    (opened) => opened.state,
    () => undefined,
  );
}

const SILENT_EVENTS: JarmEvents = {
  verified() {},
  decryptionFailed() {},
  validationFailed() {},
  replayDenied() {},
  typInvalid() {},
  audMismatch() {},
};
