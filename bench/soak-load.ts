/**
 * The soak's load generator, forked by `soak.ts` (autocannon must not share an event loop with the
 * driver's virtual users, nor with the BFF it loads). Two jobs:
 * - `max`: closed loop, as many requests as `connections` connections get answered: the measured
 *   maximum the soak's rate is a fraction of;
 * - `paced`: open loop at a fixed overall rate for the whole soak, reporting progress every
 *   `progressSec` so the driver can log it.
 * Requests cycle through `requests` (one per signed-in session), so every session carries its share
 * of the load and sees its access token refreshed under it.
 */
import { type AutocannonOptions, autocannon } from './autocannon.js';

export interface SoakLoadRequest {
  id: number;
  type: 'max' | 'paced';
  url: string;
  requests: { path: string; headers: Record<string, string> }[];
  connections: number;
  warmupSec: number;
  durationSec: number;
  /** `paced` only: requests per second over all connections. */
  rate?: number;
}

export interface SoakLoadResult {
  type: 'result';
  id: number;
  responses: number;
  /** Responses by HTTP status. */
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  elapsedSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export type SoakLoadMessage =
  | SoakLoadResult
  /** No `id`: progress is not the answer to the request. */
  | { type: 'progress'; responses: number; non200: number; errors: number }
  | { type: 'failed'; id: number; message: string };

function options(req: SoakLoadRequest, durationSec: number): AutocannonOptions {
  return {
    url: req.url,
    connections: req.connections,
    duration: durationSec,
    pipelining: 1,
    timeout: 10,
    sampleInt: 100,
    requests: req.requests.map((r) => ({ method: 'GET', path: r.path, headers: r.headers })),
    ...(req.type === 'paced' && req.rate !== undefined ? { overallRate: req.rate } : {}),
  };
}

/** Latency percentiles from a bounded histogram of 10 µs buckets up to 10 s (no per-response array). */
class Latencies {
  readonly #buckets = new Uint32Array(1_000_001);
  #count = 0;
  #max = 0;

  add(ms: number): void {
    this.#buckets[Math.min(this.#buckets.length - 1, Math.round(ms * 100))]! += 1;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  quantile(q: number): number {
    let seen = 0;
    const want = q * this.#count;
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i]!;
      if (seen >= want && seen > 0) return i / 100;
    }
    return 0;
  }

  get max(): number {
    return this.#max;
  }
}

async function run(req: SoakLoadRequest): Promise<SoakLoadResult> {
  if (req.warmupSec > 0) await autocannon(options({ ...req, type: 'max' }, req.warmupSec));
  const latencies = new Latencies();
  const statuses: Record<string, number> = {};
  let responses = 0;
  let non200 = 0;
  let errors = 0;
  const started = performance.now();
  const load = autocannon(options(req, req.durationSec));
  load.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    responses++;
    if (status !== 200) non200++;
    statuses[status] = (statuses[status] ?? 0) + 1;
    latencies.add(ms);
  });
  load.on('reqError', () => {
    errors++;
  });
  const progress =
    req.type === 'paced'
      ? setInterval(() => process.send?.({ type: 'progress', responses, non200, errors }), 30_000)
      : undefined;
  try {
    const result = await load;
    return {
      type: 'result',
      id: req.id,
      responses,
      statuses,
      errors: result.errors,
      timeouts: result.timeouts,
      elapsedSec: (performance.now() - started) / 1000,
      p50Ms: latencies.quantile(0.5),
      p99Ms: latencies.quantile(0.99),
      maxMs: latencies.max,
    };
  } finally {
    clearInterval(progress);
  }
}

process.on('message', (message: SoakLoadRequest) => {
  run(message).then(
    (result) => process.send?.(result),
    (err: unknown) => process.send?.({ type: 'failed', id: message.id, message: String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', url: '' });
