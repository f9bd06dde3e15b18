/**
 * IPC messages between the benchmark driver (`run.ts`, which hosts the servers under test) and its
 * child processes: the load generator (`load-worker.ts`), the upstream API (`upstream.ts`), the
 * dev IdP (`idp.ts`) and the JARM verification micro-benchmark (`jarm.ts`).
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

/** Driver → upstream: read the request counters, and reset them unless `peek`. */
export interface StatsRequest {
  type: 'stats';
  id: number;
  peek?: boolean;
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
  /** Of those, requests that carried `Authorization: DPoP …` and a `DPoP` proof header. */
  dpop: number;
}

/** Driver → JARM child: run the verification micro-benchmark (see jarm.ts). */
export interface JarmRequest {
  type: 'jarm';
  id: number;
  rounds: number;
}

/** One JARM case: µs per verification, per round (paired: the same tokens for both verifiers). */
export interface JarmCaseResult {
  name: string;
  /** Tokens verified per round by each verifier. */
  tokens: number;
  /** Token length in characters. */
  tokenChars: number;
  /** Per round, wall µs per verification, one at a time: bare jose, verifyJarm, peekJarmState + verifyJarm. */
  bareUs: number[];
  jarmUs: number[];
  callbackUs: number[];
  /** Per round, CPU µs (user + system, all threads of the child) per verification. */
  bareCpuUs: number[];
  jarmCpuUs: number[];
  callbackCpuUs: number[];
}

export interface JarmResult {
  type: 'jarm-result';
  id: number;
  cases: JarmCaseResult[];
  /** Wall time of the whole micro-benchmark (token generation included), seconds. */
  elapsedSec: number;
}

export interface JarmFailure {
  type: 'jarm-error';
  id: number;
  message: string;
}

export type ChildMessage = LoadResult | LoadFailure | ChildReady | StatsResult | JarmResult | JarmFailure;
