import { type CryptoKey, importJWK, type JWK, type JWSHeaderParameters } from 'jose';
import { BffError } from '../errors.js';
import type { IdpFetch } from './http.js';
import { JwtPolicyError, type KeyResolver } from '../jose/jwt-policy.js';
import { MIN_RSA_BITS, rsaModulusBits } from '../jose/key-size.js';

/**
 * The IdP's JWKS, fetched only from the discovered `jwks_uri` (never from a token header: RFC 8725
 * §3.10, JARM §5.1), cached with a TTL, refreshed in the background before it expires, and refreshed
 * once (single-flight, rate-limited) when a token names a kid we do not know: that is how a key
 * rollover reaches us without letting hostile tokens turn us into a JWKS-fetching amplifier.
 * When the IdP is unreachable we keep serving the keys we have.
 */

export interface JwksCacheEvents {
  refreshFailed(): void;
  refreshed(): void;
}

export interface JwksCacheOptions {
  jwksUri: string;
  fetch: IdpFetch;
  /** How long a fetched JWKS counts as fresh. Default 10 min. */
  ttlMs?: number;
  /** Minimum spacing of refreshes triggered by unknown kids (and stale reads). Default 60 s. */
  unknownKidRefreshIntervalMs?: number;
  events?: JwksCacheEvents;
  clock?: () => number;
  /** Bound on one fetch, headers and body. Default 5 s. */
  timeoutMs?: number;
  /** Documents with more keys are refused. Default 100. */
  maxKeys?: number;
}

const DEFAULT_TTL_MS = 10 * 60_000;
const DEFAULT_UNKNOWN_KID_INTERVAL_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_KEYS = 100;
/** Before the first successful fetch, a burst of requests must still not hammer the IdP. */
const INITIAL_RETRY_SPACING_MS = 1_000;
/** The JWKS body is read as text first; an IdP sending more than this is broken or hostile. */
const MAX_JWKS_BYTES = 256 * 1024;
/** Private or symmetric key material: a JWKS carrying it is a leak we refuse to build on (RFC 7517 §9.1). */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The key a JWS alg needs: kty and, for EC/OKP, crv (FAPI 2.0 SP §5.4.3 key selection). */
function requirementFor(alg: unknown): { kty: string; crv?: string } | undefined {
  switch (alg) {
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return { kty: 'RSA' };
    case 'ES256':
      return { kty: 'EC', crv: 'P-256' };
    case 'ES384':
      return { kty: 'EC', crv: 'P-384' };
    case 'ES512':
      return { kty: 'EC', crv: 'P-521' };
    case 'EdDSA':
    case 'Ed25519':
      return { kty: 'OKP', crv: 'Ed25519' };
    default:
      return undefined;
  }
}

/** A public signing key we could ever use; others are dropped (not an error: JWKS also hold enc keys). */
function isUsableSigningKey(jwk: JWK): boolean {
  if (typeof jwk.kid !== 'string' || jwk.kid.length === 0) return false;
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify')))
    return false;
  if (jwk.kty === 'RSA') {
    return typeof jwk.n === 'string' && typeof jwk.e === 'string' && rsaModulusBits(jwk.n) >= MIN_RSA_BITS;
  }
  if (jwk.kty === 'EC') return ['P-256', 'P-384', 'P-521'].includes(jwk.crv ?? '');
  if (jwk.kty === 'OKP') return jwk.crv === 'Ed25519';
  return false;
}

/** The key type an encryption alg needs (https://www.rfc-editor.org/rfc/rfc7518#section-4.1). */
function encKeyTypeFits(alg: string, jwk: JWK, fipsMode: boolean): boolean {
  if (alg.startsWith('RSA-OAEP'))
    return jwk.kty === 'RSA' && typeof jwk.n === 'string' && rsaModulusBits(jwk.n) >= MIN_RSA_BITS;
  if (!alg.startsWith('ECDH-ES')) return false;
  if (jwk.kty === 'EC') return ['P-256', 'P-384', 'P-521'].includes(jwk.crv ?? '');
  // X25519 is not approved by the OpenSSL 3.0 FIPS provider: never selected in FIPS mode.
  return !fipsMode && jwk.kty === 'OKP' && jwk.crv === 'X25519';
}

/**
 * The IdP's public keys that may encrypt our request objects (https://www.rfc-editor.org/rfc/rfc9101#section-6.1):
 * `use: enc` or no `use`, `key_ops` (if present) allowing `encrypt`/`wrapKey`/`deriveKey`.
 */
export function encryptionKeysOf(body: unknown): JWK[] {
  const keys: unknown = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) return [];
  return keys
    .filter((k): k is JWK => k !== null && typeof k === 'object' && !Array.isArray(k))
    .filter(
      (k) =>
        (k.use === undefined || k.use === 'enc') &&
        (k.key_ops === undefined ||
          (Array.isArray(k.key_ops) &&
            k.key_ops.some((o) => ['encrypt', 'wrapKey', 'deriveKey'].includes(o)))),
    )
    .map((k) => Object.freeze({ ...k }));
}

class JwksDocumentError extends Error {}

/** Validates a fetched document; throws JwksDocumentError for anything we refuse to adopt. */
export function parseJwks(body: unknown, maxKeys = DEFAULT_MAX_KEYS): JWK[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new JwksDocumentError('not an object');
  const keys: unknown = (body as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new JwksDocumentError('no keys array');
  if (keys.length > maxKeys) throw new JwksDocumentError(`more than ${maxKeys} keys`);
  const usable: JWK[] = [];
  for (const key of keys) {
    if (key === null || typeof key !== 'object' || Array.isArray(key))
      throw new JwksDocumentError('key not an object');
    if (SECRET_MEMBERS.some((m) => Object.hasOwn(key, m))) throw new JwksDocumentError('secret key material');
    const jwk = key as JWK;
    if (isUsableSigningKey(jwk)) usable.push(Object.freeze({ ...jwk }));
  }
  // An IdP that suddenly publishes no usable signing key is more likely broken than rotating to
  // nothing; keeping the previous keys is the safer failure (they still have to verify).
  if (usable.length === 0) throw new JwksDocumentError('no usable signing key');
  return usable;
}

function withTimeout<T>(promise: Promise<T>, ms: number, signal: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      signal.abort();
      reject(new BffError('BFF_IDP_UNAVAILABLE', { status: 503, reason: 'jwks_timeout' }));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class JwksCache implements KeyResolver {
  readonly #uri: string;
  readonly #fetch: IdpFetch;
  readonly #ttlMs: number;
  readonly #unknownKidIntervalMs: number;
  readonly #timeoutMs: number;
  readonly #maxKeys: number;
  readonly #events: JwksCacheEvents | undefined;
  readonly #clock: () => number;

  #keys: readonly JWK[] = [];
  #encKeys: readonly JWK[] = [];
  readonly #imported = new WeakMap<JWK, Map<string, CryptoKey>>();
  #fetchedAt: number | undefined;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastError: BffError | undefined;
  #inflight: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(opts: JwksCacheOptions) {
    this.#uri = opts.jwksUri;
    this.#fetch = opts.fetch;
    this.#ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
    this.#unknownKidIntervalMs = opts.unknownKidRefreshIntervalMs ?? DEFAULT_UNKNOWN_KID_INTERVAL_MS;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
    this.#events = opts.events;
    this.#clock = opts.clock ?? Date.now;
    for (const [name, value] of Object.entries({
      ttlMs: this.#ttlMs,
      unknownKidRefreshIntervalMs: this.#unknownKidIntervalMs,
      timeoutMs: this.#timeoutMs,
      maxKeys: this.#maxKeys,
    })) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a finite number > 0`);
    }
  }

  async resolve(header: JWSHeaderParameters): Promise<CryptoKey> {
    const { kid, alg } = header;
    if (typeof kid !== 'string' || kid.length === 0) throw new JwtPolicyError('kid_missing');
    if (typeof alg !== 'string' || requirementFor(alg) === undefined) throw new JwtPolicyError('alg');

    if (this.#fetchedAt === undefined) {
      await this.#refreshLimited(INITIAL_RETRY_SPACING_MS);
      if (this.#fetchedAt === undefined) {
        throw (
          this.#lastError ?? new BffError('BFF_IDP_UNAVAILABLE', { status: 503, reason: 'jwks_unreachable' })
        );
      }
    } else if (this.#clock() - this.#fetchedAt > this.#ttlMs) {
      // Serve what we have now; refresh behind the request (stale keys still have to verify).
      // While the IdP is down this retries at most once per interval, not once per request.
      void this.#refreshLimited(Math.min(this.#unknownKidIntervalMs, this.#ttlMs));
    }

    let candidates = this.#select(kid, alg);
    if (candidates.length === 0) {
      // Rollover: ONE refresh, shared by concurrent callers and rate-limited, then refuse.
      await this.#refreshLimited(this.#unknownKidIntervalMs);
      candidates = this.#select(kid, alg);
    }
    if (candidates.length === 0) throw new JwtPolicyError('kid_unknown');
    if (candidates.length > 1) throw new JwtPolicyError('kid_ambiguous');
    return this.#import(candidates[0]!, alg);
  }

  /** Fetch now (single-flight). On failure the previous keys stay in service. Never rejects. */
  refresh(): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    this.#lastAttemptAt = this.#clock();
    const run = this.#fetchAndAdopt().finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = run;
    return run;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(this.#fetchedAt === undefined ? 0 : this.#nextDelay(true));
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Seconds since the last successful fetch; Infinity before the first one (alerts then fire). */
  ageSeconds(): number {
    return this.#fetchedAt === undefined
      ? Number.POSITIVE_INFINITY
      : (this.#clock() - this.#fetchedAt) / 1000;
  }

  keys(): readonly JWK[] {
    return this.#keys;
  }

  /**
   * The IdP's current key for encrypting a request object with `alg` (RFC 9101 §6.1): `use: enc`
   * or none, a fitting key type, `alg` equal or absent; one naming the alg is preferred, then the
   * first in document order. Fetches first if nothing was ever fetched; with `refresh` (the IdP
   * refused the last object) refetches once (single-flight). Throws
   * BFF_IDP_CAPABILITY_MISSING when the IdP publishes no such key.
   */
  async encryptionKey(
    alg: string,
    opts: { fipsMode: boolean; refresh?: boolean },
  ): Promise<{ key: CryptoKey; kid: string | undefined }> {
    if (this.#fetchedAt === undefined) await this.#refreshLimited(INITIAL_RETRY_SPACING_MS);
    // The IdP itself refused our last object (an authenticated answer, not a token header an attacker
    // chose): one single-flight refetch per refused push, at most doubling the calls a failing login makes.
    else if (opts.refresh) await this.refresh();
    else if (this.#clock() - this.#fetchedAt > this.#ttlMs)
      void this.#refreshLimited(Math.min(this.#unknownKidIntervalMs, this.#ttlMs));
    if (this.#fetchedAt === undefined)
      throw (
        this.#lastError ?? new BffError('BFF_IDP_UNAVAILABLE', { status: 503, reason: 'jwks_unreachable' })
      );
    let jwk = this.#selectEnc(alg, opts.fipsMode);
    if (!jwk && !opts.refresh) {
      await this.#refreshLimited(this.#unknownKidIntervalMs);
      jwk = this.#selectEnc(alg, opts.fipsMode);
    }
    if (!jwk)
      throw new BffError('BFF_IDP_CAPABILITY_MISSING', {
        status: 502,
        reason: 'jar_encryption_key_missing',
        detail: `the identity provider's JWKS has no encryption key for ${alg}`,
      });
    try {
      return { key: await this.#import(jwk, alg), kid: jwk.kid };
    } catch (cause) {
      throw new BffError('BFF_IDP_ERROR', { cause, reason: 'jar_encryption_key_invalid' });
    }
  }

  /** Whether the cached JWKS holds a key that can encrypt request objects with `alg`. */
  hasEncryptionKey(alg: string, fipsMode: boolean): boolean {
    return this.#selectEnc(alg, fipsMode) !== undefined;
  }

  #selectEnc(alg: string, fipsMode: boolean): JWK | undefined {
    const fitting = this.#encKeys.filter(
      (k) => encKeyTypeFits(alg, k, fipsMode) && (k.alg === undefined || k.alg === alg),
    );
    return fitting.find((k) => k.alg === alg) ?? fitting[0];
  }

  /** Keys for kid, whose kty/crv fit alg and whose alg/use/key_ops (if present) allow it. */
  #select(kid: string, alg: string): JWK[] {
    const need = requirementFor(alg);
    if (need === undefined) return [];
    const matching = this.#keys.filter(
      (k) =>
        k.kid === kid &&
        k.kty === need.kty &&
        (need.crv === undefined || k.crv === need.crv) &&
        (k.alg === undefined || k.alg === alg),
    );
    // A decoy without `alg` must not make the real key (which names its alg) ambiguous.
    const exact = matching.filter((k) => k.alg === alg);
    return exact.length > 0 ? exact : matching;
  }

  async #import(jwk: JWK, alg: string): Promise<CryptoKey> {
    let byAlg = this.#imported.get(jwk);
    const cached = byAlg?.get(alg);
    if (cached) return cached;
    let key: CryptoKey | Uint8Array;
    try {
      key = await importJWK({ ...jwk, alg }, alg);
    } catch (cause) {
      throw new JwtPolicyError('key_invalid', { cause });
    }
    if (key instanceof Uint8Array) throw new JwtPolicyError('key_invalid');
    if (!byAlg) {
      byAlg = new Map();
      this.#imported.set(jwk, byAlg);
    }
    byAlg.set(alg, key);
    return key;
  }

  #refreshLimited(minSpacingMs: number): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    if (this.#clock() - this.#lastAttemptAt < minSpacingMs) return Promise.resolve(false);
    return this.refresh();
  }

  async #fetchAndAdopt(): Promise<boolean> {
    try {
      const { keys, encKeys } = await this.#download();
      this.#keys = Object.freeze(keys);
      this.#encKeys = Object.freeze(encKeys);
      this.#fetchedAt = this.#clock();
      this.#lastError = undefined;
      this.#events?.refreshed();
      return true;
    } catch (err) {
      this.#lastError =
        err instanceof BffError
          ? err
          : err instanceof JwksDocumentError
            ? new BffError('BFF_IDP_ERROR', { cause: err, reason: 'jwks_invalid' })
            : new BffError('BFF_IDP_UNAVAILABLE', { cause: err, status: 503, reason: 'jwks_unreachable' });
      this.#events?.refreshFailed();
      return false;
    }
  }

  async #download(): Promise<{ keys: JWK[]; encKeys: JWK[] }> {
    const controller = new AbortController();
    const work = (async () => {
      const response = await this.#fetch(this.#uri, {
        method: 'GET',
        headers: { accept: 'application/jwk-set+json, application/json' },
        body: undefined,
        // A JWKS that redirects elsewhere is not the discovered jwks_uri any more (RFC 8725 §3.8).
        redirect: 'manual',
        signal: controller.signal,
      });
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => {});
        throw response.status >= 500
          ? new BffError('BFF_IDP_UNAVAILABLE', { status: 503, reason: 'jwks_status' })
          : new BffError('BFF_IDP_ERROR', { reason: 'jwks_status' });
      }
      const text = await response.text();
      if (text.length > MAX_JWKS_BYTES) throw new JwksDocumentError('too large');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (cause) {
        throw new JwksDocumentError('not JSON', { cause });
      }
      return { keys: parseJwks(body, this.#maxKeys), encKeys: encryptionKeysOf(body) };
    })();
    // The injected fetch may ignore the signal: the race bounds the wait regardless.
    work.catch(() => {});
    return withTimeout(work, this.#timeoutMs, controller);
  }

  #nextDelay(ok: boolean): number {
    // Refresh at 80% of the TTL so the cache never goes stale while the IdP is healthy; after a
    // failure retry at the unknown-kid spacing (bounded by the same 80%).
    const early = Math.max(1, Math.floor(this.#ttlMs * 0.8));
    return ok ? early : Math.min(early, this.#unknownKidIntervalMs);
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      void this.refresh().then((ok) => this.#schedule(this.#nextDelay(ok)));
    }, delayMs);
    this.#timer.unref();
  }
}
