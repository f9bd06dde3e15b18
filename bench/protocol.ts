/**
 * IPC messages between the benchmark driver (`run.ts`, which hosts the servers under test) and its
 * child processes: the load generator (`load-worker.ts`), the upstream API (`upstream.ts`) and the
 * dev IdP (`idp.ts`).
 * Children are forked with `serialization: 'advanced'`, so typed arrays cross the channel as such.
 */

/** Driver → load worker: load one URL for `warmupSec` (discarded), then `durationSec` (measured). */
export interface LoadRequest {
  type: 'load';
  id: number;
  url: string;
  connections: number;
  warmupSec: number;
  durationSec: number;
  headers: Record<string, string>;
}

/** Load worker → driver. Latencies are per response, in milliseconds, in arrival order. */
export interface LoadResult {
  type: 'load-result';
  id: number;
  /** Every response of the measured phase, in ms (sub-millisecond resolution). */
  latenciesMs: Float64Array;
  /** Responses by HTTP status (measured phase only). */
  statuses: Record<string, number>;
  /** Socket errors and timeouts reported by autocannon (measured phase only). */
  errors: number;
  timeouts: number;
  /** Wall time of the measured phase, seconds. */
  elapsedSec: number;
}

export interface LoadFailure {
  type: 'load-error';
  id: number;
  message: string;
}

/** Driver → upstream: read and reset the request counters. */
export interface StatsRequest {
  type: 'stats';
  id: number;
}

/** Upstream or IdP child → driver, once listening: its base URL (the IdP's issuer). */
export interface ChildReady {
  type: 'ready';
  url: string;
}

export interface StatsResult {
  type: 'stats-result';
  id: number;
  /** Requests answered since the last reset. */
  requests: number;
  /** Of those, requests that carried `Authorization: Bearer …`. */
  bearer: number;
}

export type ChildMessage = LoadResult | LoadFailure | ChildReady | StatsResult;
