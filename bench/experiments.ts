/**
 * What-if experiments for the findings in bench/RESULTS.md: `BENCH_EXPERIMENT=a,b` patches the
 * running BFF instances of the benchmark (never the source) to measure how much a suggested change
 * of src/ would gain, in the same harness and against the same baselines. Runs with experiments
 * never rewrite RESULTS.md. With the diagnostic target `bff-dpop-exp` selected (BENCH_ONLY), the
 * experiments apply only to that second DPoP BFF, so `bff-dpop` vs `bff-dpop-exp` is an A/B in the
 * same rounds.
 *
 * - `session-cache`: a per-process cache of opened sessions keyed by the full cookie value (so a
 *   hit implies the ticket MAC was verified when the entry was made). The store is still read on
 *   every request and the cached session is used only if the store returns the very same sealed
 *   value, so logout, refresh rotation and other replicas' writes are honoured exactly as now;
 *   skipped on a hit: HMAC, SHA-256, strict base64url decoding, AES-GCM and JSON.parse.
 *   (A real implementation would keep the sliding-expiry touch; this sketch skips it on hits.)
 * - `no-metrics`: `Metrics.proxied` does nothing (upper bound of what metrics cost).
 * - `short-token` (with `session-cache`): cached sessions carry a 43-character access token instead
 *   of the ~700-byte JWT, to isolate what writing the larger `Authorization` header costs.
 * - `dpop-compact-sign`: DPoP proofs made with jose `CompactSign` (claims serialised by us, the header
 *   object built once per key) instead of `SignJWT`; same header and claims as `DpopKey.proof`.
 * - `dpop-nonce-memo`: `DpopNonceCache.get` also memoises "no nonce" for an origin (1 s, like a
 *   known nonce), instead of reading the store on every request while the upstream sends none.
 * - `dpop-node-sign` (reference only: a hand-built JWS, which the project's jose-only rule keeps out
 *   of src/): the same proof signed synchronously with node:crypto, to price that rule.
 * - `dpop-static-proof`: every request carries the same pre-made proof (invalid for a real RS: a
 *   replayed jti): an upper bound of what signing costs on the hot path, for the decomposition.
 * - `no-otel-context`: the global OpenTelemetry context manager disabled (`context.disable()`, process
 *   wide, so every BFF of the run): no AsyncLocalStorage (promise hooks on Node 20) and no emitter
 *   binding in the request-context hook. What that would lose: the request id and trace context in log
 *   lines written outside a request's logger, and span parentage with an SDK. The price of both.
 * - `no-emitter-bind`: `context.bind` returns its target unbound (process wide): AsyncLocalStorage stays,
 *   only the request-context hook's binding of the request and reply emitters (every listener added to
 *   them wrapped) goes. What that would lose: the request's context in body-parser and stream-event
 *   callbacks.
 */
import {
  createHash,
  createPrivateKey,
  type JsonWebKey as NodeJsonWebKey,
  randomBytes,
  sign as nodeSign,
} from 'node:crypto';
import { context } from '@opentelemetry/api';
import { CompactSign, type JWK } from 'jose';
import type { DpopKey, StoredDpopKey } from '../src/dpop/client.js';
import type { LoadedSession } from '../src/session/session-manager.js';
import type { RunningBff } from '../test/helpers/bff-harness.js';

export const EXPERIMENTS = [
  'session-cache',
  'no-metrics',
  'short-token',
  'dpop-compact-sign',
  'dpop-nonce-memo',
  'dpop-node-sign',
  'dpop-static-proof',
  'no-otel-context',
  'no-emitter-bind',
] as const;
export type Experiment = (typeof EXPERIMENTS)[number];

export function parseExperiments(raw: string | undefined): Experiment[] {
  const names = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(EXPERIMENTS as readonly string[]).includes(n)) throw new Error(`BENCH_EXPERIMENT: unknown ${n}`);
  }
  if (names.includes('short-token') && !names.includes('session-cache')) {
    throw new Error('BENCH_EXPERIMENT: short-token needs session-cache');
  }
  return names as Experiment[];
}

const MAX_CACHED = 10_000;

export function applyExperiments(bff: RunningBff, experiments: readonly Experiment[]): void {
  const { sessions, metrics } = bff.services;
  if (experiments.includes('session-cache')) {
    const load = sessions.load.bind(sessions);
    const cache = new Map<string, LoadedSession>();
    sessions.load = async (cookieValue: string | undefined): Promise<LoadedSession | undefined> => {
      if (cookieValue !== undefined) {
        const hit = cache.get(cookieValue);
        if (hit !== undefined && Date.now() < hit.data.absoluteExpiresAt) {
          const sealed = await bff.store.get(hit.key);
          if (sealed === hit.sealed) return hit;
          cache.delete(cookieValue);
        }
      }
      const session = await load(cookieValue);
      if (session !== undefined && cookieValue !== undefined) {
        if (cache.size >= MAX_CACHED) cache.clear();
        const shortToken = experiments.includes('short-token');
        cache.set(
          cookieValue,
          shortToken ? { ...session, data: { ...session.data, accessToken: 'x'.repeat(43) } } : session,
        );
      }
      return session;
    };
  }
  if (experiments.includes('no-otel-context')) context.disable();
  if (experiments.includes('no-emitter-bind')) {
    (context as unknown as { bind: <T>(ctx: unknown, target: T) => T }).bind = (_ctx, target) => target;
  }
  if (experiments.includes('no-metrics')) {
    metrics.proxied = () => {};
  }
  const { dpopKeys, dpopNonces } = bff.services;
  const proofVariant = experiments.includes('dpop-static-proof')
    ? 'static'
    : experiments.includes('dpop-node-sign')
      ? 'node'
      : experiments.includes('dpop-compact-sign')
        ? 'compact'
        : undefined;
  if (proofVariant) {
    const get = dpopKeys.get.bind(dpopKeys);
    const variants = new Map<string, DpopKey>();
    dpopKeys.get = async (stored: StoredDpopKey): Promise<DpopKey> => {
      const key = await get(stored);
      let variant = variants.get(stored.jkt);
      if (!variant) {
        if (proofVariant === 'static') variant = await staticProofKey(key);
        else if (proofVariant === 'node') variant = nodeSignKey(key, stored);
        else variant = compactSignKey(key, stored);
        variants.set(stored.jkt, variant);
      }
      return variant;
    };
  }
  if (experiments.includes('dpop-nonce-memo')) {
    const memo = new Map<string, { nonce: string | undefined; at: number }>();
    const get = dpopNonces.get.bind(dpopNonces);
    const set = dpopNonces.set.bind(dpopNonces);
    dpopNonces.get = async (origin: string): Promise<string | undefined> => {
      const m = memo.get(origin);
      if (m && Date.now() - m.at < NONCE_MEMO_MS) return m.nonce;
      const nonce = await get(origin);
      memo.set(origin, { nonce, at: Date.now() });
      return nonce;
    };
    dpopNonces.set = (origin: string, nonce: string): Promise<void> => {
      memo.delete(origin);
      return set(origin, nonce);
    };
  }
}

/** The memo time of DpopNonceCache for a known nonce (src/oauth/dpop.ts). */
const NONCE_MEMO_MS = 1_000;

/** The same key, but proofs come from jose CompactSign with claims serialised here. */
function compactSignKey(key: DpopKey, stored: StoredDpopKey): DpopKey {
  const header = { alg: key.alg, typ: 'dpop+jwt', jwk: publicJwk(stored) };
  const encoder = new TextEncoder();
  const variant = Object.create(key) as DpopKey;
  variant.proof = (p) =>
    new CompactSign(encoder.encode(JSON.stringify(proofClaims(p))))
      .setProtectedHeader(header)
      .sign(key.keyPair.privateKey);
  return variant;
}

/** The public members of a stored DPoP key, as DpopKey.import publishes them in `jwk`. */
function publicJwk(stored: StoredDpopKey): JWK {
  const {
    d: _d,
    p: _p,
    q: _q,
    dp: _dp,
    dq: _dq,
    qi: _qi,
    alg: _alg,
    key_ops: _ops,
    ext: _ext,
    ...pub
  } = stored.jwk;
  return pub;
}

/** The claims DpopKey.proof puts in a proof (RFC 9449 §4.2). */
function proofClaims(p: Parameters<DpopKey['proof']>[0]): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    jti: randomBytes(16).toString('base64url'),
    htm: p.htm,
    htu: `${p.htu.origin}${p.htu.pathname}`,
    iat: Math.floor(Date.now() / 1000),
  };
  if (p.nonce) claims.nonce = p.nonce;
  if (p.accessToken) claims.ath = createHash('sha256').update(p.accessToken).digest('base64url');
  return claims;
}

/** Reference only (not jose: never for src/): the same proof, signed synchronously by node:crypto. */
function nodeSignKey(key: DpopKey, stored: StoredDpopKey): DpopKey {
  if (key.alg !== 'ES256') throw new Error('dpop-node-sign: ES256 keys only');
  const privateKey = createPrivateKey({ key: stored.jwk as NodeJsonWebKey, format: 'jwk' });
  const header = Buffer.from(
    JSON.stringify({ alg: key.alg, typ: 'dpop+jwt', jwk: publicJwk(stored) }),
  ).toString('base64url');
  const variant = Object.create(key) as DpopKey;
  variant.proof = (p) => {
    const input = `${header}.${Buffer.from(JSON.stringify(proofClaims(p))).toString('base64url')}`;
    const signature = nodeSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return Promise.resolve(`${input}.${signature.toString('base64url')}`);
  };
  return variant;
}

/** The same key, but every request gets one proof made in advance (for the upper bound only). */
async function staticProofKey(key: DpopKey): Promise<DpopKey> {
  const proof = await key.proof({ htm: 'GET', htu: new URL('http://127.0.0.1/') });
  const variant = Object.create(key) as DpopKey;
  variant.proof = () => Promise.resolve(proof);
  return variant;
}
