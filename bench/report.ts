/**
 * Aggregation and reporting for `run.ts`: per-point samples → one row per configuration and
 * connection count, ratios against the baselines of the same run, the console table and the
 * generated part of bench/RESULTS.md.
 */

/**
 * The five of `npm run bench`, plus two diagnostics (BENCH_ONLY) for the findings: `bff-no-session`
 * and `bff-dpop-exp` (a second DPoP BFF carrying the BENCH_EXPERIMENT patches).
 */
export type TargetName =
  'direct' | 'reply-from' | 'bff-no-session' | 'bff-memory' | 'bff-redis' | 'bff-dpop' | 'bff-dpop-exp';

export const TARGET_LABELS: Record<TargetName, string> = {
  direct: 'direct upstream',
  'reply-from': 'bare reply-from',
  'bff-no-session': 'BFF, token: none',
  'bff-memory': 'BFF memory store',
  'bff-redis': 'BFF Redis store',
  'bff-dpop': 'BFF DPoP + Redis',
  'bff-dpop-exp': 'BFF DPoP + exp.',
};

/** How the upstream must see a target's requests: no token, a Bearer token, or DPoP token + proof. */
export function expectedAuth(t: TargetName): 'none' | 'bearer' | 'dpop' {
  if (t === 'bff-memory' || t === 'bff-redis') return 'bearer';
  if (t === 'bff-dpop' || t === 'bff-dpop-exp') return 'dpop';
  return 'none';
}

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
  /**
   * Requests the upstream saw during the point (warm-up included), how many carried a Bearer token,
   * and how many a DPoP token with a proof.
   */
  upstreamRequests: number;
  upstreamBearer: number;
  upstreamDpop: number;
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
      const auth = expectedAuth(target);
      const problems: string[] = [];
      let non200 = 0;
      const pct: number[] = [];
      const added: number[] = [];
      for (const s of mine) {
        for (const [status, count] of Object.entries(s.statuses)) if (status !== '200') non200 += count;
        if (auth === 'bearer' && s.upstreamBearer !== s.upstreamRequests) {
          problems.push(
            `round ${s.round}: ${s.upstreamRequests - s.upstreamBearer} upstream requests without Bearer`,
          );
        }
        if (auth === 'dpop' && s.upstreamDpop !== s.upstreamRequests) {
          problems.push(
            `round ${s.round}: ${s.upstreamRequests - s.upstreamDpop} upstream requests without DPoP token + proof`,
          );
        }
        if (auth !== 'bearer' && s.upstreamBearer !== 0)
          problems.push(`round ${s.round}: ${s.upstreamBearer} requests sent a Bearer token`);
        if (auth !== 'dpop' && s.upstreamDpop !== 0)
          problems.push(`round ${s.round}: ${s.upstreamDpop} requests sent a DPoP token`);
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
  /** The RESULTS.md section the target belongs to. */
  group: 'hot-path' | 'dpop' | 'scale';
  text: string;
  met: boolean | undefined;
  detail: string;
}

/** The goals from the brief, all at 16 connections, judged on the median of the paired rounds. */
export function checkTargets(rows: Row[]): TargetCheck[] {
  const at16 = (t: TargetName) => rows.find((r) => r.target === t && r.connections === 16);
  const mem = at16('bff-memory');
  const redis = at16('bff-redis');
  const dpop = at16('bff-dpop');
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
    {
      group: 'hot-path',
      text: 'memory store ≥ 85 % of bare reply-from req/s @16',
      met: pct(mem, 85),
      detail: fmtPct(mem),
    },
    {
      group: 'hot-path',
      text: 'Redis store ≥ 70 % of bare reply-from req/s @16',
      met: pct(redis, 70),
      detail: fmtPct(redis),
    },
    {
      group: 'hot-path',
      text: 'memory store p99 ≤ direct p99 + 2 ms @16',
      met: lat(mem),
      detail: fmtMs(mem),
    },
    {
      group: 'hot-path',
      text: 'Redis store p99 ≤ direct p99 + 2 ms @16',
      met: lat(redis),
      detail: fmtMs(redis),
    },
    {
      group: 'dpop',
      text: 'DPoP + Redis ≥ 50 % of bare reply-from req/s @16',
      met: pct(dpop, 50),
      detail: fmtPct(dpop),
    },
    // Issue 9: CPU per request relative to the bare proxy in the same run, and added p99.
    ...(
      [
        [mem, 'memory + Bearer', 1.15],
        [redis, 'Redis + Bearer', 1.25],
        [dpop, 'Redis + ES256 DPoP', 1.6],
      ] as const
    ).flatMap(([row, label, max]): TargetCheck[] => {
      const ratio =
        row?.cpuUsPerReq === undefined || base?.cpuUsPerReq === undefined
          ? undefined
          : row.cpuUsPerReq / base.cpuUsPerReq;
      const addedP99 = row && base ? row.p99 - base.p99 : undefined;
      return [
        {
          group: 'scale',
          text: `${label}: CPU/req ≤ ${max}× bare reply-from @16`,
          met: ratio === undefined ? undefined : ratio <= max,
          detail:
            ratio === undefined
              ? 'not measured'
              : `${ratio.toFixed(2)}× (${row?.cpuUsPerReq?.toFixed(0)} vs ${base?.cpuUsPerReq?.toFixed(0)} µs/req)`,
        },
        {
          group: 'scale',
          text: `${label}: p99 ≤ bare reply-from p99 + 1 ms @16`,
          met: addedP99 === undefined ? undefined : addedP99 <= 1,
          detail:
            addedP99 === undefined
              ? 'not measured'
              : `${signed(addedP99, 2)} ms (${row?.p99.toFixed(2)} vs ${base?.p99.toFixed(2)} ms, all rounds)`,
        },
      ];
    }),
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

// --- DPoP hot path: the DPoP rows beside their baselines --------------------------------------

const DPOP_HEAD = [
  'conns',
  'req/s reply-from · Redis · DPoP',
  'DPoP % of reply-from (paired req/s)',
  'DPoP % of reply-from by CPU/req',
  'CPU µs/req reply-from · Redis · DPoP',
  'DPoP − Redis CPU µs/req',
  'p50 / p99 ms DPoP',
];

/** One line per connection count: the DPoP BFF against reply-from and the Bearer Redis BFF. */
export function dpopMarkdownTable(rows: Row[]): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  const out = [line(DPOP_HEAD), line(DPOP_HEAD.map(() => '---:'))];
  const counts = [...new Set(rows.map((r) => r.connections))];
  for (const c of counts) {
    const get = (t: TargetName) => rows.find((r) => r.target === t && r.connections === c);
    const [base, redis, dpop] = [get('reply-from'), get('bff-redis'), get('bff-dpop')];
    if (!dpop) continue;
    const cpu = (r: Row | undefined) => (r?.cpuUsPerReq === undefined ? '–' : r.cpuUsPerReq.toFixed(0));
    const rps = (r: Row | undefined) => (r === undefined ? '–' : r.rps.toFixed(0));
    out.push(
      line([
        String(c),
        `${rps(base)} · ${rps(redis)} · ${rps(dpop)}`,
        dpop.pctOfReplyFrom === undefined ? '–' : fmtSpread(dpop.pctOfReplyFrom, 1),
        base?.cpuUsPerReq === undefined || dpop.cpuUsPerReq === undefined
          ? '–'
          : ((base.cpuUsPerReq / dpop.cpuUsPerReq) * 100).toFixed(1),
        `${cpu(base)} · ${cpu(redis)} · ${cpu(dpop)}`,
        redis?.cpuUsPerReq === undefined || dpop.cpuUsPerReq === undefined
          ? '–'
          : signed(dpop.cpuUsPerReq - redis.cpuUsPerReq, 0),
        `${dpop.p50.toFixed(2)} / ${dpop.p99.toFixed(2)}`,
      ]),
    );
  }
  return out.join('\n');
}

// --- JARM verification micro-benchmark (jarm.ts) ----------------------------------------------

/** The shape of protocol.ts's JarmCaseResult this module needs (kept structural: no import cycle). */
export interface JarmCase {
  name: string;
  tokens: number;
  tokenChars: number;
  bareUs: number[];
  jarmUs: number[];
  callbackUs: number[];
  bareCpuUs: number[];
  jarmCpuUs: number[];
  callbackCpuUs: number[];
}

export interface JarmRow {
  name: string;
  tokens: number;
  rounds: number;
  tokenChars: number;
  bareUs: number;
  jarmUs: number;
  /** verifyJarm over bare jose, % extra, paired per round. */
  overheadPct: Spread;
  bareCpuUs: number;
  jarmCpuUs: number;
  cpuOverheadPct: Spread;
  /** What the callback does with JARM on: peekJarmState, then verifyJarm. */
  callbackUs: number;
  callbackOverheadPct: Spread;
}

const median = (v: number[]): number => spread(v)?.median ?? Number.NaN;
const extraPct = (base: number[], mine: number[]): Spread =>
  spread(mine.map((m, i) => (m / base[i]! - 1) * 100)) ?? {
    median: Number.NaN,
    min: Number.NaN,
    max: Number.NaN,
  };

export function jarmRows(cases: JarmCase[]): JarmRow[] {
  return cases.map((c) => ({
    name: c.name,
    tokens: c.tokens,
    rounds: c.bareUs.length,
    tokenChars: c.tokenChars,
    bareUs: median(c.bareUs),
    jarmUs: median(c.jarmUs),
    overheadPct: extraPct(c.bareUs, c.jarmUs),
    bareCpuUs: median(c.bareCpuUs),
    jarmCpuUs: median(c.jarmCpuUs),
    cpuOverheadPct: extraPct(c.bareCpuUs, c.jarmCpuUs),
    callbackUs: median(c.callbackUs),
    callbackOverheadPct: extraPct(c.bareUs, c.callbackUs),
  }));
}

/** The JARM overhead limit of the brief, % over bare jose verification (and decryption). */
export const JARM_MAX_OVERHEAD_PCT = 20;

const JARM_HEAD = [
  'JARM response',
  'tokens × rounds',
  'chars',
  'bare jose µs',
  'verifyJarm µs',
  'overhead %',
  'CPU µs bare → verifyJarm',
  'CPU overhead %',
  'callback (peek + verify) µs',
  'callback overhead %',
];

function jarmCells(r: JarmRow): string[] {
  const pct = (s: Spread) => fmtSpread(s, 1, true);
  return [
    r.name,
    `${r.tokens} × ${r.rounds}`,
    String(r.tokenChars),
    r.bareUs.toFixed(1),
    r.jarmUs.toFixed(1),
    pct(r.overheadPct),
    `${r.bareCpuUs.toFixed(1)} → ${r.jarmCpuUs.toFixed(1)}`,
    pct(r.cpuOverheadPct),
    r.callbackUs.toFixed(1),
    pct(r.callbackOverheadPct),
  ];
}

export function jarmConsoleTable(rows: JarmRow[]): string {
  const body = rows.map(jarmCells);
  const widths = JARM_HEAD.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(JARM_HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function jarmMarkdownTable(rows: JarmRow[]): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  const align = JARM_HEAD.map((_, i) => (i === 0 ? '---' : '---:'));
  return [line(JARM_HEAD), line(align), ...rows.map((r) => line(jarmCells(r)))].join('\n');
}

export function jarmTargetLines(rows: JarmRow[]): string[] {
  if (rows.length === 0)
    return [`verifyJarm ≤ bare jose + ${JARM_MAX_OVERHEAD_PCT} %: not measured → NOT MEASURED`];
  return rows.map((r) => {
    const met = r.overheadPct.median <= JARM_MAX_OVERHEAD_PCT;
    return (
      `verifyJarm ≤ bare jose + ${JARM_MAX_OVERHEAD_PCT} %, ${r.name}: ` +
      `${fmtSpread(r.overheadPct, 1, true)} % (wall, paired, median (min…max) of rounds; ` +
      `CPU ${fmtSpread(r.cpuOverheadPct, 1, true)} %) → ${met ? 'met' : 'MISSED'}`
    );
  });
}
