/**
 * `npm run bench`: the BFF's `/api` hot path (cookie → session lookup in the memory or Redis store →
 * token attach → forward) against two baselines measured in the same run: the upstream called
 * directly and a bare @fastify/reply-from proxy. See bench/RESULTS.md for the method and results.
 *
 * Process layout (2 shared cores, so placement matters more than usual):
 * - this process hosts only the servers under test (both BFFs, the reply-from proxy);
 * - the dev IdP runs in a forked child (`idp.ts`), idle after the two logins: in this process its
 *   AsyncLocalStorage would switch on promise hooks and tax every promise of the proxies;
 * - autocannon runs in a forked child (`load-worker.ts`): a load generator in the server's event
 *   loop would steal the server's time and stretch every latency it measures;
 * - the upstream runs in another forked child (`upstream.ts`): its cost must not be charged to the
 *   proxy under test, and both proxies pay the same socket hop to it.
 * The servers stay here (rather than the load generator staying here) so `node --cpu-prof
 * dist/bench/run.js` profiles exactly the proxies, and so the BFF is built with the same in-process
 * harness the e2e tests use.
 *
 * Schedule: a 2 s warm-up of every server first (JIT), then for each connection count BENCH_ROUNDS
 * rounds alternating A-B-C-D / D-C-B-A, each point a short warm-up (new connections) plus a fixed
 * measured time. Several short rounds rather than two long ones: on a shared 2-core box the noise
 * comes in bursts of seconds, and ratios are computed per round against the baseline measured
 * seconds earlier or later, then summarised by their median.
 *
 * Environment: BENCH_DURATION (s measured per point, default 2.5), BENCH_WARMUP (s per point,
 * default 0.5), BENCH_ROUNDS (default 4), BENCH_CONNECTIONS (default "1,16,64"),
 * BENCH_ONLY (comma list of direct,reply-from,bff-memory,bff-redis, plus the diagnostic
 * bff-no-session: the memory BFF on a `token: none` route, i.e. the BFF without any session work),
 * BENCH_EXPERIMENT (see experiments.ts), BENCH_WRITE=0. Partial runs (BENCH_ONLY, BENCH_CONNECTIONS,
 * BENCH_EXPERIMENT) never rewrite RESULTS.md.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import replyFrom from '@fastify/reply-from';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import type { DevIdpOptions } from '../src/dev/idp.js';
import { createRedisStore } from '../src/session/redis-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  REDIS_URL,
  type RunningBff,
  startBff,
} from '../test/helpers/bff-harness.js';
import { ALICE, startLogin } from '../test/helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../test/helpers/test-browser.js';
import { applyExperiments, type Experiment, parseExperiments } from './experiments.js';
import type { ChildMessage, ChildReady, LoadRequest, LoadResult, StatsResult } from './protocol.js';
import {
  aggregate,
  checkTargets,
  consoleTable,
  markdownTable,
  type Row,
  type Sample,
  TARGET_LABELS,
  type TargetName,
  targetLines,
} from './report.js';

const ALL_TARGETS: TargetName[] = ['direct', 'reply-from', 'bff-memory', 'bff-redis'];
/** Selectable with BENCH_ONLY, in this order. */
const KNOWN_TARGETS: TargetName[] = ['direct', 'reply-from', 'bff-no-session', 'bff-memory', 'bff-redis'];
const RESULTS_PATH = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const GEN_START = '<!-- bench:generated:start (rewritten by `npm run bench`; edit outside these markers) -->';
const GEN_END = '<!-- bench:generated:end -->';
/** Per-point overhead beyond warm-up + duration (IPC, autocannon's 100 ms sample tick), measured. */
const POINT_OVERHEAD_SEC = 0.25;
/** The initial JIT warm-up of every server (16 connections), discarded. */
const INITIAL_WARMUP_SEC = 2;

interface Settings {
  durationSec: number;
  warmupSec: number;
  rounds: number;
  connections: number[];
  targets: TargetName[];
  partial: boolean;
  experiments: Experiment[];
  write: boolean;
}

function settings(env: NodeJS.ProcessEnv): Settings {
  const num = (name: string, fallback: number, min: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}`);
    return n;
  };
  const connections = (env.BENCH_CONNECTIONS ?? '1,16,64').split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error('BENCH_CONNECTIONS must list positive integers');
    return n;
  });
  const only = env.BENCH_ONLY?.split(',').map((s) => s.trim()) ?? [];
  for (const t of only) {
    if (!KNOWN_TARGETS.includes(t as TargetName)) throw new Error(`BENCH_ONLY: unknown target ${t}`);
  }
  const targets = only.length ? KNOWN_TARGETS.filter((t) => only.includes(t)) : ALL_TARGETS;
  const experiments = parseExperiments(env.BENCH_EXPERIMENT);
  const partial =
    targets.join() !== ALL_TARGETS.join() || env.BENCH_CONNECTIONS !== undefined || experiments.length > 0;
  return {
    durationSec: num('BENCH_DURATION', 2.5, 0.5),
    warmupSec: num('BENCH_WARMUP', 0.5, 0),
    rounds: Math.round(num('BENCH_ROUNDS', 4, 1)),
    connections,
    targets,
    partial,
    experiments,
    write: env.BENCH_WRITE !== '0' && !partial,
  };
}

/** A forked child speaking the protocol.ts messages; requests are matched to answers by id. */
class Child {
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, { resolve(m: ChildMessage): void; reject(e: Error): void }>();
  #nextId = 1;
  #exited = false;
  readonly ready: Promise<ChildReady>;

  constructor(script: string, args: string[] = []) {
    this.#proc = fork(fileURLToPath(new URL(script, import.meta.url)), args, {
      // Never inherit --cpu-prof & co. from a profiling run of the driver.
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      this.#proc.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') return resolve(m);
        const waiter = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        waiter?.resolve(m);
      });
      this.#proc.once('exit', (code, signal) => {
        this.#exited = true;
        const err = new Error(`${script} exited (${signal ?? code})`);
        reject(err);
        for (const w of this.#pending.values()) w.reject(err);
        this.#pending.clear();
      });
    });
    this.ready.catch(() => {});
  }

  request(message: Omit<LoadRequest, 'id'> | { type: 'stats' }, timeoutMs: number): Promise<ChildMessage> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no answer to ${message.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#proc.send({ ...message, id });
    });
  }

  /** Disconnect (the child exits on its own), then SIGKILL this child only if it lingers. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#proc.once('exit', () => resolve()));
    if (this.#proc.connected) this.#proc.disconnect();
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }

  killNow(): void {
    if (!this.#exited) this.#proc.kill('SIGKILL');
  }
}

interface Target {
  name: TargetName;
  url: string;
  headers: Record<string, string>;
}

/** Log in once through the dev IdP; returns the session cookie value. */
async function login(bff: RunningBff, issuer: string): Promise<string> {
  const browser = new TestBrowser();
  const start = await startLogin(browser, bff.url, issuer);
  if (!start.stopped)
    throw new Error(`login at ${bff.url} did not redirect to the IdP (${start.response.status})`);
  const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
    u.href.startsWith(`${bff.url}/auth/callback`),
  );
  const callback = await browser.request(done.url);
  if (callback.status !== 302) throw new Error(`login at ${bff.url} ended with ${callback.status}`);
  const value = browser.cookie(bff.url, bff.config.session.cookieName)?.value;
  if (!value) throw new Error(`login at ${bff.url} set no session cookie`);
  return value;
}

/** Size of the sealed session record behind a cookie (the store key is SHA-256 of the ticket id). */
async function sealedSize(bff: RunningBff, cookie: string): Promise<number | undefined> {
  const id = cookie.split('.')[1] ?? '';
  const sealed = await bff.store.get(`s:${createHash('sha256').update(id).digest('base64url')}`);
  return sealed?.length;
}

function machineFacts(redisVersion: string, loadavg: number[]): string {
  const cpus = os.cpus();
  return [
    `${os.availableParallelism()} CPUs (\`nproc\`) · ${cpus[0]?.model.trim() ?? 'unknown CPU'}`,
    `${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`,
    `Linux ${os.release()}`,
    `Node ${process.version}`,
    `Redis ${redisVersion}`,
    `load average at start ${loadavg.map((l) => l.toFixed(2)).join(' / ')}`,
  ].join(' · ');
}

function resultsMarkdown(opts: {
  rows: Row[];
  s: Settings;
  facts: string;
  started: Date;
  wallSec: number;
  sessionBytes: number | undefined;
  tokenBytes: number;
  bodyBytes: number;
}): string {
  const { rows, s } = opts;
  const targets = targetLines(checkTargets(rows));
  return [
    GEN_START,
    '',
    `**Latest run:** ${opts.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${opts.facts}.`,
    `${s.rounds} rounds × (${s.warmupSec} s warm-up + ${s.durationSec} s measured) per configuration and connection count; whole run ${opts.wallSec.toFixed(0)} s.`,
    '',
    '## Method',
    '',
    '- **What is measured.** `GET /api/bench/items` through each configuration to the same upstream (a `node:http`',
    `  server in its own process answering 200 with a ${opts.bodyBytes}-byte JSON body over keep-alive). Every configuration`,
    '  gets byte-identical requests: session cookie, `x-csrf: 1`, `sec-fetch-site: same-origin`.',
    '  - **direct upstream**: autocannon → upstream (`/items`). The latency floor.',
    '  - **bare reply-from**: Fastify 5 + `@fastify/reply-from` 12 proxying `/api/bench/*` with an undici `Agent`',
    '    configured exactly like the BFF forwarder (keep-alive 10 s, 256 connections per origin, pipelining 1).',
    '    It does: routing, copying the request headers minus hop-by-hop ones, the undici request, streaming the',
    '    response back. It does *not*: CSRF check, cookie parse, ticket MAC check, store lookup, AES-GCM session',
    '    open, token freshness, header allow/deny filtering, `Authorization` attach, `x-request-id`, random UUID',
    '    request ids, security response headers, Prometheus metrics. The throughput target is relative to it.',
    '  - **BFF memory / Redis store**: the real app (`buildApp`, as in the e2e tests), logged in once through the',
    `    dev IdP (JWT access token of ${opts.tokenBytes} bytes; sealed session record of ${opts.sessionBytes ?? '?'} bytes). Each request:`,
    '    CSRF check → cookie → HMAC ticket check → SHA-256 store key → store GET → AES-256-GCM open → JSON parse →',
    '    token freshness → header filtering + Bearer → undici → response streamed back, plus security headers and',
    '    metrics. Access tokens live 1 h: no refresh happens during the run.',
    '- **Processes.** Only the servers under test run in the driver process. autocannon runs in a forked child',
    '  (sharing an event loop with the server would measure their contention), the upstream in another, the dev',
    '  IdP in a third (in the driver its AsyncLocalStorage would switch on promise hooks for the proxies too).',
    "  Redis is the local `redis-server`. Everything is on 127.0.0.1 and shares the machine's cores with other",
    '  work, so absolute numbers drift between and within runs: **compare the paired ratios**, not absolute values.',
    '- **Schedule.** Every server is first warmed up for 2 s (discarded). Then, for each connection count',
    `  (${s.connections.join(', ')}), ${s.rounds} rounds alternate A-B-C-D and D-C-B-A order; each point is a short warm-up`,
    '  (discarded) and a fixed measured time.',
    '- **Statistics.** req/s = responses ÷ measured time over all rounds ("req/s per round" shows the noise).',
    "  p50/p99 are over every response of all rounds, from autocannon's per-response hrtime (sub-ms; its own",
    '  histogram keeps whole ms). "% of reply-from" and "p99 +ms vs direct" are **paired per round** (against the',
    '  baseline measured seconds before or after) and shown as median (min…max) over rounds; targets use the',
    '  median. "CPU µs/req" is the CPU time (user+system) of the driver process, i.e. of the proxy under test,',
    '  per upstream request: unlike req/s it hardly depends on what else the machine is doing.',
    '- **Validity.** Any non-200, socket error or timeout, or a BFF request that reached the upstream without a',
    '  Bearer token (the upstream counts them), fails the run with exit code 1 and leaves this file untouched.',
    '- **Profiling.** `BENCH_ONLY=bff-memory BENCH_CONNECTIONS=16 node --cpu-prof --cpu-prof-dir=/tmp/prof',
    '  dist/bench/run.js`, then `node dist/bench/profile-summary.js /tmp/prof/*.cpuprofile 40 [filter]`.',
    '',
    '## Results',
    '',
    markdownTable(rows),
    '',
    '## Targets (16 connections; goals, not tests)',
    '',
    ...targets.map((t) => `- ${t}`),
    '',
    GEN_END,
  ].join('\n');
}

const FINDINGS_PLACEHOLDER = [
  '## Findings',
  '',
  '_Not written yet: profile a run (`BENCH_ONLY=bff-memory BENCH_CONNECTIONS=16 node --cpu-prof',
  'dist/bench/run.js`) and note concrete, measured suggestions here._',
  '',
].join('\n');

/** Replace the generated block of RESULTS.md, keeping everything outside it (the Findings). */
function writeResults(generated: string): void {
  let existing: string | undefined;
  try {
    existing = readFileSync(RESULTS_PATH, 'utf8');
  } catch {
    existing = undefined;
  }
  const start = existing?.indexOf(GEN_START) ?? -1;
  const end = existing?.indexOf(GEN_END) ?? -1;
  let text: string;
  if (existing !== undefined && start !== -1 && end > start) {
    text = existing.slice(0, start) + generated + existing.slice(end + GEN_END.length);
  } else {
    text = ['# fapi-bff `/api` hot-path benchmark', '', generated, '', FINDINGS_PLACEHOLDER].join('\n');
  }
  writeFileSync(RESULTS_PATH, text);
}

async function startReplyFrom(
  upstreamUrl: string,
): Promise<{ app: FastifyInstance; url: string; agent: Agent }> {
  // The same dispatcher settings as src/proxy/forward.ts, so the pools are not what differs.
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 256, pipelining: 1 });
  const app = Fastify({ logger: false });
  await app.register(replyFrom, { base: upstreamUrl, undici: agent });
  app.get<{ Params: { '*': string } }>('/api/bench/*', (req, reply) => {
    const q = req.url.indexOf('?');
    return reply.from(`/${req.params['*']}${q === -1 ? '' : req.url.slice(q)}`);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, agent };
}

async function main(): Promise<number> {
  const s = settings(process.env);
  const started = new Date();
  const t0 = performance.now();
  const points = s.connections.length * s.rounds * s.targets.length;
  const loadavg = os.loadavg();
  const estimateSec =
    points * (s.warmupSec + s.durationSec + POINT_OVERHEAD_SEC) + s.targets.length * INITIAL_WARMUP_SEC + 15;
  console.log(
    `bench: ${points} points × (${s.warmupSec} s warm-up + ${s.durationSec} s) ≈ ${Math.ceil(estimateSec)} s` +
      ` · targets ${s.targets.join(', ')} · connections ${s.connections.join(', ')}`,
  );

  const cleanups: Array<() => Promise<void>> = [];
  const children: Child[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (err) {
          console.error('bench: cleanup step failed:', err);
        }
      }
    })();
    return cleaning;
  };
  // Everything is bounded in time: a hung point or server must not hang `npm run bench`.
  const watchdog = setTimeout(
    () => {
      console.error(`bench: exceeded ${Math.ceil(estimateSec + 90)} s; aborting`);
      for (const c of children) c.killNow();
      const hard = setTimeout(() => process.exit(2), 5000);
      hard.unref();
      void cleanup().finally(() => process.exit(2));
    },
    (estimateSec + 90) * 1000,
  );
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const c of children) c.killNow();
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    const upstream = new Child('./upstream.js');
    children.push(upstream);
    cleanups.push(() => upstream.stop());
    const load = new Child('./load-worker.js');
    children.push(load);
    cleanups.push(() => load.stop());
    const upstreamUrl = (await withTimeout(upstream.ready, 10_000, 'upstream start')).url;

    const [memPort, redisPort, memKey, redisKey] = await Promise.all([
      freePort(),
      freePort(),
      makeClientKey(),
      makeClientKey(),
    ]);
    // Access tokens live 1 h so no refresh happens during the run; JWT access tokens (RFC 9068, via
    // the resource audience) as a FAPI deployment would typically have: the session record is sized
    // realistically.
    const idpOptions: DevIdpOptions = {
      clients: [
        clientMetadata('bench-memory', `http://127.0.0.1:${memPort}`, memKey),
        clientMetadata('bench-redis', `http://127.0.0.1:${redisPort}`, redisKey),
      ],
      accessTokenTtlSec: 3600,
      resourceAudience: 'urn:fapi-bff:bench',
    };
    const idpChild = new Child('./idp.js', [JSON.stringify(idpOptions)]);
    children.push(idpChild);
    cleanups.push(() => idpChild.stop());
    const issuer = (await withTimeout(idpChild.ready, 20_000, 'IdP start')).url;

    // `open` (token: none) serves the bff-no-session diagnostic: the same BFF without session work.
    const routes = { bench: upstreamUrl, open: { url: upstreamUrl, token: 'none' } };
    const keyPrefix = `fapi-bff-bench:${randomBytes(6).toString('hex')}:`;
    const redisStore = await createRedisStore({ url: REDIS_URL, keyPrefix, connectTimeoutMs: 3000 });
    cleanups.push(async () => {
      await redisStore.close();
      // Delete every key this run created (sessions, indexes, login transactions) by our own prefix.
      const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      let deleted = 0;
      for await (const keys of redis.scanStream({ match: `${keyPrefix}*`, count: 500 }) as AsyncIterable<
        string[]
      >) {
        if (keys.length) deleted += await redis.del(...keys);
      }
      await redis.quit();
      console.log(`bench: deleted ${deleted} Redis keys under ${keyPrefix}`);
    });
    const redisInfo = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redisInfo.connect();
    const redisVersion = /redis_version:(\S+)/.exec(await redisInfo.info('server'))?.[1] ?? '?';
    await redisInfo.quit();

    const bffMemory = await startBff({
      port: memPort,
      issuer,
      clientId: 'bench-memory',
      key: memKey,
      storeKind: 'memory',
      routes,
    });
    cleanups.push(() => bffMemory.close());
    const bffRedis = await startBff({
      port: redisPort,
      issuer,
      clientId: 'bench-redis',
      key: redisKey,
      store: redisStore,
      routes,
    });
    cleanups.push(() => bffRedis.close());
    if (s.experiments.length) {
      applyExperiments(bffMemory, s.experiments);
      applyExperiments(bffRedis, s.experiments);
      console.log(`bench: experiments ${s.experiments.join(', ')} applied to both BFFs`);
    }
    const proxy = await startReplyFrom(upstreamUrl);
    cleanups.push(async () => {
      await proxy.app.close();
      await proxy.agent.close();
    });

    const memCookie = await login(bffMemory, issuer);
    const redisCookie = await login(bffRedis, issuer);
    const sessionBytes = await sealedSize(bffMemory, memCookie);
    const name = bffMemory.config.session.cookieName;
    const headers = (cookie: string) => ({
      cookie: `${name}=${cookie}`,
      'x-csrf': '1',
      'sec-fetch-site': 'same-origin',
    });
    const all: Target[] = [
      { name: 'direct', url: `${upstreamUrl}/items`, headers: headers(memCookie) },
      { name: 'reply-from', url: `${proxy.url}/api/bench/items`, headers: headers(memCookie) },
      { name: 'bff-no-session', url: `${bffMemory.url}/api/open/items`, headers: headers(memCookie) },
      { name: 'bff-memory', url: `${bffMemory.url}/api/bench/items`, headers: headers(memCookie) },
      { name: 'bff-redis', url: `${bffRedis.url}/api/bench/items`, headers: headers(redisCookie) },
    ];
    const targets = all.filter((t) => s.targets.includes(t.name));

    const stats = async (): Promise<StatsResult> => {
      const m = await upstream.request({ type: 'stats' }, 5000);
      if (m.type !== 'stats-result') throw new Error(`unexpected ${m.type} from upstream`);
      return m;
    };

    // Probe: each target answers 200 with the upstream's body; BFF requests carry the Bearer token.
    const expected = await (await request(`${upstreamUrl}/items`)).body.text();
    let tokenBytes = 0;
    for (const t of targets) {
      await stats();
      const res = await request(t.url, { headers: t.headers });
      const body = await res.body.text();
      const seen = await stats();
      const bff = t.name === 'bff-memory' || t.name === 'bff-redis';
      if (res.statusCode !== 200 || body !== expected || (bff ? seen.bearer !== 1 : seen.bearer !== 0)) {
        throw new Error(
          `probe of ${t.name} failed: ${res.statusCode} ${body.slice(0, 200)} (bearer ${seen.bearer})`,
        );
      }
    }
    {
      // The token the BFF attaches, for the record (the upstream only counts; read one from the store).
      const sealed = await bffMemory.services.sessions.load(memCookie);
      tokenBytes = sealed?.data.accessToken.length ?? 0;
    }
    console.log(
      `bench: setup done in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
        ` (access token ${tokenBytes} B, sealed session ${sessionBytes ?? '?'} B)`,
    );

    /** One point: load `t` and collect what the load worker, the upstream and this process saw. */
    const point = async (
      t: Target,
      connections: number,
      round: number,
      warmupSec: number,
      durationSec: number,
    ) => {
      await stats();
      const cpu = process.cpuUsage();
      const m = await load.request(
        { type: 'load', url: t.url, connections, warmupSec, durationSec, headers: t.headers },
        (warmupSec + durationSec + 20) * 1000,
      );
      const cpuUsed = process.cpuUsage(cpu);
      if (m.type === 'load-error') throw new Error(`load worker: ${m.message}`);
      if (m.type !== 'load-result') throw new Error(`unexpected ${m.type} from load worker`);
      const r: LoadResult = m;
      const up = await stats();
      const sample: Sample = {
        target: t.name,
        connections,
        round,
        latenciesMs: r.latenciesMs,
        statuses: r.statuses,
        errors: r.errors,
        timeouts: r.timeouts,
        elapsedSec: r.elapsedSec,
        upstreamRequests: up.requests,
        upstreamBearer: up.bearer,
        serverCpuUs: cpuUsed.user + cpuUsed.system,
      };
      return { sample, row: aggregate([sample], [t.name], [connections])[0]! };
    };

    // JIT warm-up of every server before anything is measured; still checked for non-200s.
    for (const t of targets) {
      const { row } = await point(t, 16, 0, 0, INITIAL_WARMUP_SEC);
      if (row.problems.length) throw new Error(`warm-up of ${t.name}: ${row.problems.join('; ')}`);
    }

    const samples: Sample[] = [];
    let n = 0;
    for (const connections of s.connections) {
      for (let round = 1; round <= s.rounds; round++) {
        const order = round % 2 === 1 ? targets : [...targets].reverse();
        for (const t of order) {
          n++;
          const { sample, row } = await point(t, connections, round, s.warmupSec, s.durationSec);
          samples.push(sample);
          console.log(
            `[${String(n).padStart(2)}/${points}] c=${String(connections).padEnd(3)} r${round} ` +
              `${TARGET_LABELS[t.name].padEnd(17)} ${row.rps.toFixed(0).padStart(6)} req/s ` +
              `p50 ${row.p50.toFixed(2)} ms p99 ${row.p99.toFixed(2)} ms` +
              (row.cpuUsPerReq === undefined ? '' : ` cpu ${row.cpuUsPerReq.toFixed(0)} µs/req`) +
              (row.problems.length ? `  !! ${row.problems.join('; ')}` : ''),
          );
        }
      }
    }

    const rows = aggregate(samples, s.targets, s.connections);
    console.log('');
    console.log(consoleTable(rows));
    console.log('');
    const checks = checkTargets(rows);
    for (const line of targetLines(checks)) console.log(`target: ${line}`);

    const broken = rows.filter((r) => r.problems.length > 0);
    for (const r of broken) {
      console.error(`bench: INVALID ${TARGET_LABELS[r.target]} @${r.connections}: ${r.problems.join('; ')}`);
    }
    const wallSec = (performance.now() - t0) / 1000;
    if (broken.length > 0) {
      console.error('bench: a configuration answered something other than 200: not a hot-path measurement');
      return 1;
    }
    if (s.write) {
      writeResults(
        resultsMarkdown({
          rows,
          s,
          facts: machineFacts(redisVersion, loadavg),
          bodyBytes: expected.length,
          started,
          wallSec,
          sessionBytes,
          tokenBytes,
        }),
      );
      console.log(`bench: wrote ${RESULTS_PATH}`);
    } else {
      console.log('bench: partial or BENCH_WRITE=0 run: RESULTS.md left untouched');
    }
    return 0;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
    console.log(`bench: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('bench: failed:', err);
    process.exitCode = 1;
  },
);
