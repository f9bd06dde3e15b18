/**
 * The part of autocannon's untyped API the load generators use (`load-worker.ts`, `soak-load.ts`),
 * typed once. https://github.com/mcollina/autocannon#api
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

export interface AutocannonOptions {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  pipelining: number;
  /** Seconds. */
  timeout: number;
  /** ms between autocannon's samples; it also only notices the end of `duration` on a sample tick. */
  sampleInt: number;
  headers?: Record<string, string>;
  /** Cycled through by every connection. */
  requests?: { method: 'GET'; path: string; headers: Record<string, string> }[];
  /** Requests per second over all connections (open loop); unset: as fast as answered. */
  overallRate?: number;
}

export interface AutocannonResult {
  errors: number;
  timeouts: number;
}

/** Emits `response` (client, status, bytes, ms) per response; resolves with the totals. */
export type AutocannonRun = EventEmitter & PromiseLike<AutocannonResult>;

export function autocannon(options: AutocannonOptions): AutocannonRun {
  const run = createRequire(import.meta.url)('autocannon') as (o: AutocannonOptions) => AutocannonRun;
  return run(options);
}
