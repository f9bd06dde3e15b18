/**
 * Aggregation and reporting for `run.ts`: per-point samples → one row per configuration and
 * connection count, ratios against the baselines of the same run, the console table and the
 * generated part of bench/RESULTS.md.
 */

/** The four of `npm run bench`, plus `bff-no-session`, a diagnostic (BENCH_ONLY) for the findings. */
export type TargetName = 'direct' | 'reply-from' | 'bff-no-session' | 'bff-memory' | 'bff-redis';

export const TARGET_LABELS: Record<TargetName, string> = {
  direct: 'direct upstream',
  'reply-from': 'bare reply-from',
  'bff-no-session': 'BFF, token: none',
  'bff-memory': 'BFF memory store',
  'bff-redis': 'BFF Redis store',
};

/** One measured point: one configuration, one connection count, one round. */
export interface Sample {
  target: TargetName;
  connections: number;
  round: number;
  latenciesMs: Float64Array;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  elapsedSec: number;
  /** Requests the upstream saw during the point (warm-up included) and how many carried a Bearer token. */
  upstreamRequests: number;
  upstreamBearer: number;
  /** CPU time (user + system) the driver process spent during the point (warm-up included), µs. */
  serverCpuUs: number;
}

/** A statistic's median over the rounds, and its range (min, max). */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface Row {
  target: TargetName;
  connections: number;
  rps: number;
  /** Requests/s of each round, in round order. */
  roundRps: number[];
  p50: number;
  p99: number;
  /** Server CPU per request (proxies only: the driver process hosts them), µs. */
  cpuUsPerReq: number | undefined;
  /** Responses other than 200. */
  non200: number;
  errors: number;
  /** % of bare reply-from throughput in the same round, at the same connection count. */
  pctOfReplyFrom: Spread | undefined;
  /** p99 minus the direct p99 of the same round, at the same connection count, ms. */
  addedP99: Spread | undefined;
  /** Problems that make this row a measurement of something else than the intended path. */
  problems: string[];
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

function merge(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out.sort();
}

function spread(values: number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]! };
}

const rpsOf = (s: Sample) => s.latenciesMs.length / s.elapsedSec;
const p99Of = (s: Sample) => percentile(Float64Array.from(s.latenciesMs).sort(), 99);

/**
 * One row per (target, connections). Throughput is total responses over total measured time of
 * all rounds; percentiles are over every response of all rounds. The ratios are paired: each
 * round's value against the baseline of the same round (rounds alternate A-B-C-D / D-C-B-A, so
 * a point and its baseline are seconds apart), reported as the median over rounds with the range,
 * which a burst of load from a neighbour in one round cannot move much.
 */
export function aggregate(samples: Sample[], targets: TargetName[], connections: number[]): Row[] {
  const rows: Row[] = [];
  for (const c of connections) {
    const sameRound = (t: TargetName, round: number) =>
      samples.find((s) => s.target === t && s.connections === c && s.round === round);
    for (const target of targets) {
      const mine = samples.filter((s) => s.target === target && s.connections === c);
      if (mine.length === 0) continue;
      const all = merge(mine.map((s) => s.latenciesMs));
      const time = mine.reduce((n, s) => n + s.elapsedSec, 0);
      const bff = target === 'bff-memory' || target === 'bff-redis';
      const problems: string[] = [];
      let non200 = 0;
      const pct: number[] = [];
      const added: number[] = [];
      for (const s of mine) {
        for (const [status, count] of Object.entries(s.statuses)) if (status !== '200') non200 += count;
        if (bff && s.upstreamBearer !== s.upstreamRequests) {
          problems.push(
            `round ${s.round}: ${s.upstreamRequests - s.upstreamBearer} upstream requests without Bearer`,
          );
        }
        if (!bff && s.upstreamBearer !== 0) problems.push(`round ${s.round}: baseline sent a Bearer token`);
        if (s.upstreamRequests < s.latenciesMs.length) {
          problems.push(`round ${s.round}: upstream saw fewer requests than were answered`);
        }
        const base = sameRound('reply-from', s.round);
        if (base && rpsOf(base) > 0) pct.push((rpsOf(s) / rpsOf(base)) * 100);
        const direct = sameRound('direct', s.round);
        if (direct && direct.latenciesMs.length > 0) added.push(p99Of(s) - p99Of(direct));
      }
      const errors = mine.reduce((n, s) => n + s.errors, 0);
      if (non200 > 0) problems.push(`${non200} responses other than 200`);
      if (errors > 0) problems.push(`${errors} errors/timeouts`);
      if (all.length === 0) problems.push('no responses');
      const upstreamRequests = mine.reduce((n, s) => n + s.upstreamRequests, 0);
      const cpu = mine.reduce((n, s) => n + s.serverCpuUs, 0);
      rows.push({
        target,
        connections: c,
        rps: all.length / time,
        roundRps: mine.map(rpsOf),
        p50: percentile(all, 50),
        p99: percentile(all, 99),
        cpuUsPerReq: target === 'direct' || upstreamRequests === 0 ? undefined : cpu / upstreamRequests,
        non200,
        errors,
        pctOfReplyFrom: spread(pct),
        addedP99: spread(added),
        problems,
      });
    }
  }
  return rows;
}

export interface TargetCheck {
  text: string;
  met: boolean | undefined;
  detail: string;
}

/** The goals from the brief, all at 16 connections, judged on the median of the paired rounds. */
export function checkTargets(rows: Row[]): TargetCheck[] {
  const at16 = (t: TargetName) => rows.find((r) => r.target === t && r.connections === 16);
  const mem = at16('bff-memory');
  const redis = at16('bff-redis');
  const pct = (row: Row | undefined, min: number): TargetCheck['met'] =>
    row?.pctOfReplyFrom === undefined ? undefined : row.pctOfReplyFrom.median >= min;
  const lat = (row: Row | undefined): TargetCheck['met'] =>
    row?.addedP99 === undefined ? undefined : row.addedP99.median <= 2;
  const base = at16('reply-from');
  // CPU per request barely depends on neighbours: when the proxy is CPU-bound (it is, at 16
  // connections here), reply-from's CPU/req ÷ the BFF's is the throughput ratio without the noise.
  const cpuPct = (row: Row | undefined) =>
    row?.cpuUsPerReq === undefined || base?.cpuUsPerReq === undefined
      ? ''
      : `; by CPU/req ${((base.cpuUsPerReq / row.cpuUsPerReq) * 100).toFixed(1)} %`;
  const fmtPct = (row: Row | undefined) =>
    row?.pctOfReplyFrom === undefined
      ? 'not measured'
      : `${fmtSpread(row.pctOfReplyFrom, 1)} % (paired req/s, median (min…max) of rounds${cpuPct(row)})`;
  const fmtMs = (row: Row | undefined) =>
    row?.addedP99 === undefined ? 'not measured' : `${fmtSpread(row.addedP99, 2, true)} ms`;
  return [
    { text: 'memory store ≥ 85 % of bare reply-from req/s @16', met: pct(mem, 85), detail: fmtPct(mem) },
    { text: 'Redis store ≥ 70 % of bare reply-from req/s @16', met: pct(redis, 70), detail: fmtPct(redis) },
    { text: 'memory store p99 ≤ direct p99 + 2 ms @16', met: lat(mem), detail: fmtMs(mem) },
    { text: 'Redis store p99 ≤ direct p99 + 2 ms @16', met: lat(redis), detail: fmtMs(redis) },
  ];
}

function signed(n: number, digits: number): string {
  return `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`;
}

/** "median (min–max)"; `sign` prefixes + to non-negative numbers. */
function fmtSpread(s: Spread, digits: number, sign = false): string {
  const f = (n: number) => (sign ? signed(n, digits) : n.toFixed(digits));
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}…${f(s.max)})`;
}

const HEAD = [
  'configuration',
  'conns',
  'req/s',
  'req/s per round',
  'p50 ms',
  'p99 ms',
  'CPU µs/req',
  '% of reply-from',
  'p99 +ms vs direct',
  'non-200/err',
];

function cells(row: Row): string[] {
  const isBaseline = (t: TargetName) => row.target === t;
  return [
    TARGET_LABELS[row.target],
    String(row.connections),
    row.rps.toFixed(0),
    row.roundRps.map((r) => r.toFixed(0)).join(' '),
    row.p50.toFixed(2),
    row.p99.toFixed(2),
    row.cpuUsPerReq === undefined ? '–' : row.cpuUsPerReq.toFixed(0),
    row.pctOfReplyFrom === undefined || isBaseline('reply-from') ? '–' : fmtSpread(row.pctOfReplyFrom, 1),
    row.addedP99 === undefined || isBaseline('direct') ? '–' : fmtSpread(row.addedP99, 2, true),
    `${row.non200}/${row.errors}`,
  ];
}

export function consoleTable(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function markdownTable(rows: Row[]): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  const align = HEAD.map((_, i) => (i === 0 ? '---' : '---:'));
  return [line(HEAD), line(align), ...rows.map((r) => line(cells(r)))].join('\n');
}

export function targetLines(checks: TargetCheck[]): string[] {
  return checks.map((c) => {
    const verdict = c.met === undefined ? 'NOT MEASURED' : c.met ? 'met' : 'MISSED';
    return `${c.text}: ${c.detail} → ${verdict}`;
  });
}
