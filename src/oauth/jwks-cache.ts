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
      const keys = await this.#download();
      this.#keys = Object.freeze(keys);
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

  async #download(): Promise<JWK[]> {
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
      return parseJwks(body, this.#maxKeys);
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
