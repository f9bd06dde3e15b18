/**
 * The load generator, forked by `run.ts`: autocannon must not share an event loop (or, ideally, a
 * core) with the server it measures, or each would steal the other's time and the numbers would
 * mostly measure their contention. One long-lived worker serves every point of a run, so its JIT
 * state is the same for every configuration.
 *
 * Latency is recorded here from autocannon's per-response `response` event (hrtime-based, sub-ms),
 * not from autocannon's own histogram, which stores whole milliseconds: too coarse for a 2 ms budget.
 */
import { type AutocannonOptions, autocannon } from './autocannon.js';
import type { LoadFailure, LoadRequest, LoadResult } from './protocol.js';

class Samples {
  #data = new Float64Array(1 << 16);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = value;
  }

  toArray(): Float64Array {
    return this.#data.slice(0, this.#length);
  }
}

function options(req: LoadRequest, duration: number): AutocannonOptions {
  return {
    url: req.url,
    connections: req.connections,
    duration,
    pipelining: 1,
    timeout: 10,
    // The default (1000) rounds every run up to whole seconds: 0.5 s of warm-up would last 1 s.
    sampleInt: 100,
    headers: req.headers,
  };
}

async function load(req: LoadRequest): Promise<LoadResult> {
  if (req.warmupSec > 0) await autocannon(options(req, req.warmupSec));

  const latencies = new Samples();
  const statuses: Record<string, number> = {};
  const started = performance.now();
  const run = autocannon(options(req, req.durationSec));
  run.on('response', (_client: unknown, status: number | string, _bytes: number, responseTimeMs: number) => {
    latencies.push(responseTimeMs);
    const key = String(status);
    statuses[key] = (statuses[key] ?? 0) + 1;
  });
  const result = await run;
  const elapsedSec = (performance.now() - started) / 1000;
  return {
    type: 'load-result',
    id: req.id,
    latenciesMs: latencies.toArray(),
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    elapsedSec,
  };
}

process.on('message', (message: LoadRequest) => {
  if (message.type !== 'load') return;
  load(message).then(
    (result) => process.send?.(result),
    (err: unknown) => {
      const failure: LoadFailure = { type: 'load-error', id: message.id, message: String(err) };
      process.send?.(failure);
    },
  );
});
process.on('disconnect', () => process.exit(0));
