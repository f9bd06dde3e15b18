/**
 * `npm run bench`: the BFF's `/api` hot path (cookie → session lookup in the memory or Redis store →
 * token attach, or DPoP-bound token + a fresh DPoP proof → forward) against two baselines measured
 * in the same run: the upstream called directly and a bare @fastify/reply-from proxy; then the JARM
 * callback verification micro-benchmark (`jarm.ts`, in its own process). See bench/RESULTS.md for
 * the method and results.
 *
 * Process layout (2 shared cores, so placement matters more than usual):
 * - this process hosts only the servers under test (the three BFFs, the reply-from proxy);
 * - the dev IdP runs in a forked child (`idp.ts`), idle after the three logins: in this process its
 *   AsyncLocalStorage would switch on promise hooks and tax every promise of the proxies;
 * - autocannon runs in a forked child (`load-worker.ts`): a load generator in the server's event
 *   loop would steal the server's time and stretch every latency it measures;
 * - the upstream runs in another forked child (`upstream.ts`): its cost must not be charged to the
 *   proxy under test, and both proxies pay the same socket hop to it;
 * - the JARM micro-benchmark runs in a forked child (`jarm.ts`) after the HTTP points, while the
 *   servers are idle.
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
 * BENCH_ONLY (comma list of direct,reply-from,bff-memory,bff-redis,bff-dpop, plus the diagnostic
 * bff-no-session: the memory BFF on a `token: none` route, i.e. the BFF without any session work,
 * and bff-dpop-exp: a second DPoP BFF that alone gets the BENCH_EXPERIMENT patches, for an A/B),
 * BENCH_EXPERIMENT (see experiments.ts), BENCH_JARM_ROUNDS (default 8; 0 skips the JARM
 * micro-benchmark), BENCH_WRITE=0. Partial runs (BENCH_ONLY, BENCH_CONNECTIONS, BENCH_EXPERIMENT,
 * BENCH_JARM_ROUNDS) never rewrite RESULTS.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import replyFrom from '@fastify/reply-from';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import type { DevIdpOptions } from '../src/dev/idp.js';
import { createRedisStore } from '../src/store/redis-store.js';
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
import { BenchChild } from './processes.js';
import type {
  ChildMessage,
  JarmRequest,
  LoadRequest,
  LoadResult,
  StatsRequest,
  StatsResult,
} from './protocol.js';
import {
  aggregate,
  checkTargets,
  consoleTable,
  dpopMarkdownTable,
  expectedAuth,
  jarmConsoleTable,
  jarmMarkdownTable,
  type JarmRow,
  jarmRows,
  jarmTargetLines,
  markdownTable,
  type Row,
  type Sample,
  TARGET_LABELS,
  type TargetName,
  targetLines,
} from './report.js';
import { deleteKeysUnder } from './redis-keys.js';
import { RESULTS_PATH } from './results-file.js';
import { num } from './settings.js';

const ALL_TARGETS: TargetName[] = ['direct', 'reply-from', 'bff-memory', 'bff-redis', 'bff-dpop'];
/** Selectable with BENCH_ONLY, in this order. */
const KNOWN_TARGETS: TargetName[] = [
  'direct',
  'reply-from',
  'bff-no-session',
  'bff-memory',
  'bff-redis',
  'bff-dpop',
  'bff-dpop-exp',
];
const DEFAULT_JARM_ROUNDS = 8;
/** Wall time of the JARM micro-benchmark at the default rounds on this machine (~15 s), with margin. */
const JARM_ESTIMATE_SEC = 30;
const GEN_START = '<!-- bench:generated:start (rewritten by `npm run bench`; edit outside these markers) -->';
const GEN_END = '<!-- bench:generated:end -->';
/** Per-point overhead beyond warm-up + duration (IPC, autocannon's 100 ms sample tick), measured. */
const POINT_OVERHEAD_SEC = 0.25;
/** How often the upstream's request count is polled after a point until it stops moving. */
const SETTLE_POLL_MS = 25;
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
  jarmRounds: number;
  write: boolean;
}

function settings(env: NodeJS.ProcessEnv): Settings {
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
  const jarmRounds = Math.round(num('BENCH_JARM_ROUNDS', DEFAULT_JARM_ROUNDS, 0, env));
  const partial =
    targets.join() !== ALL_TARGETS.join() ||
    env.BENCH_CONNECTIONS !== undefined ||
    experiments.length > 0 ||
    jarmRounds !== DEFAULT_JARM_ROUNDS;
  return {
    durationSec: num('BENCH_DURATION', 2.5, 0.5, env),
    warmupSec: num('BENCH_WARMUP', 0.5, 0, env),
    rounds: Math.round(num('BENCH_ROUNDS', 4, 1, env)),
    connections,
    targets,
    partial,
    experiments,
    jarmRounds,
    write: env.BENCH_WRITE !== '0' && !partial,
  };
}

/** A forked child speaking the protocol.ts messages. */
type Child = BenchChild<LoadRequest | JarmRequest | StatsRequest, ChildMessage>;

function forkChild(script: string, args: string[] = []): Child {
  return new BenchChild(script, args, [], { killAfterMs: 2000 });
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
  dpopSessionBytes: number | undefined;
  dpopTokenBytes: number;
  bodyBytes: number;
  jarm: JarmRow[];
  jarmSec: number | undefined;
}): string {
  const { rows, s } = opts;
  const checks = checkTargets(rows);
  const targets = targetLines(checks.filter((c) => c.group === 'hot-path'));
  const dpopTargets = targetLines(checks.filter((c) => c.group === 'dpop'));
  const scaleTargets = targetLines(checks.filter((c) => c.group === 'scale'));
  const jarmSpec = opts.jarm.map((r) => `${r.tokens} (${r.name})`).join(', ');
  return [
    GEN_START,
    '',
    `**Latest run:** ${opts.started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${opts.facts}.`,
    `${s.rounds} rounds × (${s.warmupSec} s warm-up + ${s.durationSec} s measured) per configuration and connection count, then the JARM micro-benchmark (${opts.jarmSec?.toFixed(0) ?? '?'} s); whole run ${opts.wallSec.toFixed(0)} s.`,
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
    '    metrics. Opened sessions are memoised per process (`src/session/session-manager.ts`): while the store',
    '    returns the identical sealed value, the MAC/SHA-256/AES-GCM/JSON steps are skipped. Access tokens live',
    '    1 h: no refresh happens during the run.',
    '  - **BFF DPoP + Redis**: see [DPoP hot path](#dpop-hot-path-issue-3) below.',
    '- **Processes.** Only the servers under test run in the driver process. autocannon runs in a forked child',
    '  (sharing an event loop with the server would measure their contention), the upstream in another, the dev',
    '  IdP in a third (in the driver its AsyncLocalStorage would switch on promise hooks for the proxies too).',
    "  Redis is the local `redis-server`. Everything is on 127.0.0.1 and shares the machine's cores with other",
    '  work, so absolute numbers drift between and within runs: **compare the paired ratios**, not absolute values.',
    '- **Schedule.** Every server is first warmed up for 2 s (discarded). Then, for each connection count',
    `  (${s.connections.join(', ')}), ${s.rounds} rounds alternate A-B-C-D-E and E-D-C-B-A order; each point is a short warm-up`,
    '  (discarded) and a fixed measured time.',
    '- **Statistics.** req/s = responses ÷ measured time over all rounds ("req/s per round" shows the noise).',
    "  p50/p99 are over every response of all rounds, from autocannon's per-response hrtime (sub-ms; its own",
    '  histogram keeps whole ms). "% of reply-from" and "p99 +ms vs direct" are **paired per round** (against the',
    '  baseline measured seconds before or after) and shown as median (min…max) over rounds; targets use the',
    '  median. "CPU µs/req" is the CPU time (user+system) of the driver process, i.e. of the proxy under test,',
    '  per upstream request: unlike req/s it hardly depends on what else the machine is doing.',
    '- **Validity.** Any non-200, socket error or timeout, a Bearer BFF request that reached the upstream without',
    '  a Bearer token, a DPoP BFF request without `Authorization: DPoP …` and a `DPoP` header, or a baseline',
    '  request with either (the upstream counts them all) fails the run with exit code 1 and leaves this file',
    '  untouched.',
    '- **Profiling.** `BENCH_ONLY=bff-memory BENCH_CONNECTIONS=16 BENCH_JARM_ROUNDS=0 node --cpu-prof',
    '  --cpu-prof-dir=/tmp/prof dist/bench/run.js`, then `node dist/bench/profile-summary.js /tmp/prof/*.cpuprofile 40 [filter]`.',
    '',
    '## Results',
    '',
    markdownTable(rows),
    '',
    '## Targets (16 connections; goals, not tests)',
    '',
    ...targets.map((t) => `- ${t}`),
    '',
    'Issue 9 (CPU per request of the proxy process against bare reply-from in the same run; added p99 against reply-from):',
    '',
    ...scaleTargets.map((t) => `- ${t}`),
    '',
    '## DPoP hot path (issue 3)',
    '',
    '- **Configuration.** The real app with `MS_BFF_DPOP_ENABLED=true` (ES256 session keys, the default) and',
    '  the Redis store (own connection), logged in once through the dev IdP with `dpop_bound_access_tokens: true`',
    `  (DPoP-bound JWT access token of ${opts.dpopTokenBytes} bytes with \`cnf.jkt\`; sealed session record with the`,
    `  private key: ${opts.dpopSessionBytes ?? '?'} bytes; access tokens live 1 h, so no refresh). Same requests, rounds and`,
    '  baselines as above (the "BFF DPoP + Redis" rows of the Results table).',
    '- **Per request**, on top of the Bearer Redis path: the server nonce lookup for the upstream origin',
    '  (`DpopNonceCache.get`: the upstream sends no `DPoP-Nonce`, so nothing is memoised and it reads the store:',
    '  a Redis GET per request), the session key from `DpopKeyCache` (imported once), and a fresh proof',
    '  (`DpopKey.proof`: `jti` of 128 random bits, `htm`, `htu`, `iat`, `ath` = SHA-256 of the token; header',
    '  `typ: dpop+jwt`, `alg: ES256`, public `jwk`), signed with jose + WebCrypto (the signature itself runs on the',
    "  libuv thread pool, whose CPU time is the driver's too). The request leaves with `Authorization: DPoP <at>`",
    '  and `DPoP: <proof>`.',
    '- **Validity.** The upstream counts requests with `Authorization: DPoP …` and a non-empty `DPoP` header; any',
    '  request of this configuration without them (and any Bearer token) fails the run. It does not verify the',
    '  proof (that would charge the upstream; test/e2e/dpop.test.ts verifies proofs end to end).',
    '- **Ratios.** "DPoP − Redis" is the CPU the DPoP path adds over the Bearer path on the same store.',
    '',
    dpopMarkdownTable(rows),
    '',
    ...dpopTargets.map((t) => `- ${t}`),
    '',
    '## JARM callback verification (issue 4)',
    '',
    '- **What is measured.** In process, no HTTP (`bench/jarm.ts`, forked after the HTTP points while every',
    '  server is idle; standalone: `node dist/bench/jarm.js [rounds] [case]`). µs per verification of',
    '  `verifyJarm` (src/oauth/jarm.ts) as the callback configures it: the production `JwksCache` as key',
    '  resolver over a local JWKS document (fetched once, in the warm-up), a `MemoryStore` replay cache, no-op',
    '  metric events. Against **bare jose** on the same responses: `jwtVerify(token, key, { algorithms: [alg],',
    '  issuer, audience })`, and for encrypted responses `compactDecrypt` (pinned alg/enc) + that `jwtVerify`.',
    '  "callback" is what `/auth/callback` runs with JARM on: `peekJarmState` (finds the login transaction;',
    '  decrypts a JWE too), then `verifyJarm`.',
    "- **Responses** look like oidc-provider's: header `alg` + `kid` (JWE: `alg`, `enc`, `cty: JWT`), claims",
    '  `code`, `state`, `iss`, `aud`, `exp` = now + 120 s, no `iat` and no `jti` (so the replay key is the SHA-256',
    '  of the claims). ES256 on P-256, PS256 on RSA-2048, RSA-OAEP-256 on RSA-2048, ECDH-ES on P-256.',
    `- **Schedule.** A response verifies once (replay cache), so each round first generates fresh responses (not timed; per round ${jarmSpec}),`,
    '  then times bare jose, verifyJarm and callback on them, one verification at a time, interleaved response by',
    '  response in rotating order (timing each verifier over a contiguous block swung by ±50 % on this machine).',
    `  Round 0 is a discarded warm-up; ${s.jarmRounds} measured rounds. µs = wall time per verification, median over rounds;`,
    "  CPU = user + system time of the process (WebCrypto's thread pool included) per verification. Overheads are",
    '  paired per round (median (min…max)). Target: verifyJarm adds ≤ 20 % over bare jose.',
    '',
    jarmMarkdownTable(opts.jarm),
    '',
    ...jarmTargetLines(opts.jarm).map((t) => `- ${t}`),
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
  const jarmEstimateSec = (JARM_ESTIMATE_SEC * s.jarmRounds) / DEFAULT_JARM_ROUNDS;
  const estimateSec =
    points * (s.warmupSec + s.durationSec + POINT_OVERHEAD_SEC) +
    s.targets.length * INITIAL_WARMUP_SEC +
    jarmEstimateSec +
    20;
  console.log(
    `bench: ${points} points × (${s.warmupSec} s warm-up + ${s.durationSec} s) + JARM ${s.jarmRounds} rounds` +
      ` ≈ ${Math.ceil(estimateSec)} s · targets ${s.targets.join(', ')} · connections ${s.connections.join(', ')}`,
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
    const upstream = forkChild('./upstream.js');
    children.push(upstream);
    cleanups.push(() => upstream.stop());
    const load = forkChild('./load-worker.js');
    children.push(load);
    cleanups.push(() => load.stop());
    const upstreamUrl = (await withTimeout(upstream.ready, 10_000, 'upstream start')).url;
    // Forked now, used after the HTTP points: it only waits until then.
    const jarm = s.jarmRounds > 0 ? forkChild('./jarm.js') : undefined;
    if (jarm) {
      children.push(jarm);
      cleanups.push(() => jarm.stop());
    }

    const [memPort, redisPort, dpopPort, expPort, memKey, redisKey, dpopKey, expKey] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      makeClientKey(),
      makeClientKey(),
      makeClientKey(),
      makeClientKey(),
    ]);
    // Access tokens live 1 h so no refresh happens during the run; JWT access tokens (RFC 9068, via
    // the resource audience) as a FAPI deployment would typically have: the session record is sized
    // realistically. The DPoP client gets DPoP-bound access tokens (`cnf.jkt`, token type DPoP).
    const idpOptions: DevIdpOptions = {
      clients: [
        clientMetadata('bench-memory', `http://127.0.0.1:${memPort}`, memKey),
        clientMetadata('bench-redis', `http://127.0.0.1:${redisPort}`, redisKey),
        {
          ...clientMetadata('bench-dpop', `http://127.0.0.1:${dpopPort}`, dpopKey),
          dpop_bound_access_tokens: true,
        },
        {
          ...clientMetadata('bench-dpop-exp', `http://127.0.0.1:${expPort}`, expKey),
          dpop_bound_access_tokens: true,
        },
      ],
      accessTokenTtlSec: 3600,
      resourceAudience: 'urn:fapi-bff:bench',
    };
    const idpChild = forkChild('./idp.js', [JSON.stringify(idpOptions)]);
    children.push(idpChild);
    cleanups.push(() => idpChild.stop());
    const issuer = (await withTimeout(idpChild.ready, 20_000, 'IdP start')).url;

    // `open` (token: none) serves the bff-no-session diagnostic: the same BFF without session work.
    const routes = { bench: upstreamUrl, open: { url: upstreamUrl, token: 'none' } };
    const keyPrefix = `fapi-bff-bench:${randomBytes(6).toString('hex')}:`;
    const redisStore = await createRedisStore({ url: REDIS_URL, keyPrefix, connectTimeoutMs: 3000 });
    // Its own connection, as bff-redis has: the DPoP BFF's store traffic (session GET and, without a
    // server nonce, the nonce lookup) never queues behind another BFF's.
    const dpopStore = await createRedisStore({ url: REDIS_URL, keyPrefix, connectTimeoutMs: 3000 });
    cleanups.push(async () => {
      await redisStore.close();
      await dpopStore.close();
      // Delete every key this run created (sessions, indexes, login transactions) by our own prefix.
      const deleted = await deleteKeysUnder(keyPrefix);
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
    const bffDpop = await startBff({
      port: dpopPort,
      issuer,
      clientId: 'bench-dpop',
      key: dpopKey,
      store: dpopStore,
      routes,
      env: { MS_BFF_DPOP_ENABLED: 'true' },
    });
    cleanups.push(() => bffDpop.close());
    // The A/B twin of bffDpop, only when selected: same configuration, own Redis connection.
    let bffDpopExp: RunningBff | undefined;
    if (s.targets.includes('bff-dpop-exp')) {
      const expStore = await createRedisStore({ url: REDIS_URL, keyPrefix, connectTimeoutMs: 3000 });
      cleanups.push(() => expStore.close());
      const started = await startBff({
        port: expPort,
        issuer,
        clientId: 'bench-dpop-exp',
        key: expKey,
        store: expStore,
        routes,
        env: { MS_BFF_DPOP_ENABLED: 'true' },
      });
      bffDpopExp = started;
      cleanups.push(() => started.close());
    }
    if (s.experiments.length) {
      if (bffDpopExp) {
        applyExperiments(bffDpopExp, s.experiments);
        console.log(`bench: experiments ${s.experiments.join(', ')} applied to bff-dpop-exp only`);
      } else {
        for (const bff of [bffMemory, bffRedis, bffDpop]) applyExperiments(bff, s.experiments);
        console.log(`bench: experiments ${s.experiments.join(', ')} applied to every BFF`);
      }
    }
    const proxy = await startReplyFrom(upstreamUrl);
    cleanups.push(async () => {
      await proxy.app.close();
      await proxy.agent.close();
    });

    const memCookie = await login(bffMemory, issuer);
    const redisCookie = await login(bffRedis, issuer);
    const dpopCookie = await login(bffDpop, issuer);
    const expCookie = bffDpopExp ? await login(bffDpopExp, issuer) : '';
    const sessionBytes = await sealedSize(bffMemory, memCookie);
    const dpopSessionBytes = await sealedSize(bffDpop, dpopCookie);
    {
      // The DPoP configuration must really hold a DPoP-bound token and its key, or it measures Bearer.
      const session = await bffDpop.services.sessions.load(dpopCookie);
      if (session?.data.tokenType !== 'dpop' || !session.data.dpop) {
        throw new Error(`the DPoP BFF's session is not DPoP-bound (token type ${session?.data.tokenType})`);
      }
    }
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
      { name: 'bff-dpop', url: `${bffDpop.url}/api/bench/items`, headers: headers(dpopCookie) },
      {
        name: 'bff-dpop-exp',
        url: `http://127.0.0.1:${expPort}/api/bench/items`,
        headers: headers(expCookie),
      },
    ];
    const targets = all.filter((t) => s.targets.includes(t.name));

    const stats = async (peek = false): Promise<StatsResult> => {
      const m = await upstream.ask({ type: 'stats', peek }, 5000);
      if (m.type !== 'stats-result') throw new Error(`unexpected ${m.type} from upstream`);
      return m;
    };
    /**
     * autocannon stops by closing its sockets, but requests a proxy had already accepted still reach
     * the upstream afterwards (a DPoP proof is signed asynchronously first): wait until the upstream's
     * count stops moving, so they are charged (requests and CPU) to the point that sent them.
     */
    const settle = async (): Promise<void> => {
      let last = (await stats(true)).requests;
      for (let i = 0; i < 50; i++) {
        await sleep(SETTLE_POLL_MS);
        const now = (await stats(true)).requests;
        if (now === last) return;
        last = now;
      }
      throw new Error('the upstream kept receiving requests after the load stopped');
    };

    // Probe: each target answers 200 with the upstream's body; BFF requests carry the Bearer token,
    // or the DPoP-bound token and a proof.
    const expected = await (await request(`${upstreamUrl}/items`)).body.text();
    for (const t of targets) {
      await stats();
      const res = await request(t.url, { headers: t.headers });
      const body = await res.body.text();
      const seen = await stats();
      const auth = expectedAuth(t.name);
      const authOk =
        seen.requests === 1 &&
        seen.bearer === (auth === 'bearer' ? 1 : 0) &&
        seen.dpop === (auth === 'dpop' ? 1 : 0);
      if (res.statusCode !== 200 || body !== expected || !authOk) {
        throw new Error(
          `probe of ${t.name} failed: ${res.statusCode} ${body.slice(0, 200)}` +
            ` (upstream saw ${seen.requests}: bearer ${seen.bearer}, dpop ${seen.dpop})`,
        );
      }
    }
    // The tokens the BFFs attach, for the record (the upstream only counts; read them from the store).
    const tokenBytes = (await bffMemory.services.sessions.load(memCookie))?.data.accessToken.length ?? 0;
    const dpopTokenBytes = (await bffDpop.services.sessions.load(dpopCookie))?.data.accessToken.length ?? 0;
    console.log(
      `bench: setup done in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
        ` (access token ${tokenBytes} B, sealed session ${sessionBytes ?? '?'} B;` +
        ` DPoP-bound token ${dpopTokenBytes} B, sealed DPoP session ${dpopSessionBytes ?? '?'} B)`,
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
      const m = await load.ask(
        { type: 'load', url: t.url, connections, warmupSec, durationSec, headers: t.headers },
        (warmupSec + durationSec + 20) * 1000,
      );
      if (m.type === 'load-result') await settle();
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
        upstreamDpop: up.dpop,
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
    if (broken.length > 0) {
      console.error(
        'bench: a configuration answered something other than 200, or reached the upstream without the' +
          ' credentials it must attach: not a hot-path measurement',
      );
      return 1;
    }

    // The JARM micro-benchmark, in its own process, while every server here is idle.
    let jarmSec: number | undefined;
    let jarmTable: JarmRow[] = [];
    if (jarm) {
      await withTimeout(jarm.ready, 10_000, 'JARM child start');
      console.log(`bench: JARM verification micro-benchmark, ${s.jarmRounds} rounds`);
      const m = await jarm.ask({ type: 'jarm', rounds: s.jarmRounds }, (jarmEstimateSec * 3 + 30) * 1000);
      if (m.type === 'jarm-error') throw new Error(`JARM micro-benchmark: ${m.message}`);
      if (m.type !== 'jarm-result') throw new Error(`unexpected ${m.type} from the JARM child`);
      jarmSec = m.elapsedSec;
      jarmTable = jarmRows(m.cases);
      console.log('');
      console.log(jarmConsoleTable(jarmTable));
      console.log('');
      for (const line of jarmTargetLines(jarmTable)) console.log(`target: ${line}`);
      console.log(`bench: JARM micro-benchmark took ${m.elapsedSec.toFixed(1)} s`);
    }

    const wallSec = (performance.now() - t0) / 1000;
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
          dpopSessionBytes,
          dpopTokenBytes,
          jarm: jarmTable,
          jarmSec,
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
