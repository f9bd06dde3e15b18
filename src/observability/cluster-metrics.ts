import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry } from 'prom-client';
import type { Metrics } from './metrics.js';

const REQUEST = 'fapi-bff:metrics-request';
const RESPONSE = 'fapi-bff:metrics-response';
const TIMEOUT_MS = 5000;

interface MetricsRequest {
  type: typeof REQUEST;
  id: string;
}
interface MetricsResponse {
  type: typeof RESPONSE;
  id: string;
  text?: string;
  error?: string;
}

/**
 * Primary side of MS_BFF_WORKERS: a worker asked for /metrics forwards the request here, and the
 * primary collects every worker's registry through prom-client's AggregatorRegistry (counters and
 * histograms summed), so one scrape sees the whole process group whichever worker answers it.
 */
export function servePrimaryMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isRequest(message)) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: RESPONSE, id: message.id, text } satisfies MetricsResponse),
      (err: unknown) =>
        worker.send({
          type: RESPONSE,
          id: message.id,
          error: (err as Error).message,
        } satisfies MetricsResponse),
    );
  });
}

/** Worker side: offer this worker's registry to the aggregator and render /metrics through the primary. */
export function aggregateThroughPrimary(metrics: Metrics): void {
  AggregatorRegistry.setRegistries([metrics.registry]);
  // prom-client answers the primary's collection requests only once an AggregatorRegistry has been
  // constructed in this process (its constructor installs the worker-side listener).
  new AggregatorRegistry();
  const pending = new Map<string, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (message: unknown) => {
    if (!isResponse(message)) return;
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.text !== undefined) waiter.resolve(message.text);
    else waiter.reject(new Error(message.error ?? 'no metrics'));
  });
  metrics.renderWith(
    () =>
      new Promise<string>((resolve, reject) => {
        const id = randomUUID();
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('the primary did not answer with aggregated metrics'));
        }, TIMEOUT_MS);
        pending.set(id, {
          resolve: (text) => {
            clearTimeout(timer);
            resolve(text);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        });
        process.send?.({ type: REQUEST, id } satisfies MetricsRequest);
      }),
  );
}

function isRequest(m: unknown): m is MetricsRequest {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === REQUEST;
}

function isResponse(m: unknown): m is MetricsResponse {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === RESPONSE;
}
