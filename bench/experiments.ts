/**
 * What-if experiments for the findings in bench/RESULTS.md: `BENCH_EXPERIMENT=a,b` patches the
 * running BFF instances of the benchmark (never the source) to measure how much a suggested change
 * of src/ would gain, in the same harness and against the same baselines. Runs with experiments
 * never rewrite RESULTS.md.
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
 */
import type { RunningBff } from '../test/helpers/bff-harness.js';
import type { LoadedSession } from '../src/session/session-manager.js';

export const EXPERIMENTS = ['session-cache', 'no-metrics', 'short-token'] as const;
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
  if (experiments.includes('no-metrics')) {
    metrics.proxied = () => {};
  }
}
