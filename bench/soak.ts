/**
 * `npm run soak` (not in CI): ten minutes at 70 % of the measured maximum against one BFF on the Redis
 * store, with token refreshes, logins and logouts happening, sampling the BFF process's memory; exits 1
 * unless memory is flat, no request failed and the rate was held. Results go to bench/RESULTS.md
 * (between the soak markers) unless SOAK_WRITE=0.
 *
 * Processes: the BFF (`soak-bff.ts`, with --expose-gc, so its memory is its own), the dev IdP
 * (`idp.ts`), the upstream (`upstream.ts`) and the load generator (`soak-load.ts`, autocannon) are
 * forked children; this process signs in and drives the virtual users and samples memory.
 *
 * 1. SOAK_LOAD_SESSIONS (default 8) sessions are signed in through the IdP.
 * 2. Calibration: SOAK_CONNECTIONS (default 16) connections, closed loop, SOAK_CALIBRATE_SEC (default
 *    10) s after a 3 s warm-up, spread over those sessions: the measured maximum API calls/s.
 *    SOAK_RATE (calls/s) skips this and fixes the rate instead.
 * 3. Soak, SOAK_DURATION_SEC (default 600): the load generator calls the API at SOAK_LOAD_FRACTION
 *    (default 0.7) of that maximum, open loop on SOAK_PACED_CONNECTIONS (default 64), over the same
 *    sessions. Access tokens live
 *    SOAK_TOKEN_TTL_SEC (default 70) and the BFF refreshes MS_BFF_REFRESH_SKEW (60) s before expiry,
 *    so each session is refreshed every ~10 s under load. Alongside, SOAK_USERS (default 4) virtual
 *    users each: log in, call the API for SOAK_SESSION_SEC with SOAK_CALL_PAUSE_MS (default 50)
 *    between calls (at most SOAK_MAX_REQUESTS in all), log out, and check the old cookie is refused.
 *
 * Passed means all of:
 * - no failed request (any non-200 from the load generator, socket error or timeout; any failure of a
 *   virtual user), at least one refresh, and the paced rate held (≥ 95 % of the target);
 * - RSS slope over the second half of the run (least squares over the samples, MB per minute) below
 *   SOAK_MAX_RSS_SLOPE_MB_MIN (default 2): a leak of 1 KB per request at this rate would be hundreds
 *   of MB per minute;
 * - V8 heap after a full GC at the end minus after a full GC at the end of the warm-up (SOAK_WARMUP_SEC,
 *   default 20 % of the run) below SOAK_MAX_HEAP_GROWTH_MB (default 3).
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { DevIdpOptions } from '../src/dev/idp.js';
import { clientMetadata, freePort, makeClientKey, REDIS_URL } from '../test/helpers/bff-harness.js';
import { ALICE, startLogin } from '../test/helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../test/helpers/test-browser.js';
import { BenchChild as Child } from './processes.js';
import { deleteKeysUnder } from './redis-keys.js';
import { RESULTS_PATH, writeResultsSection } from './results-file.js';
import { num } from './settings.js';
import type { SoakBffMessage, SoakBffOptions, SoakBffRequest } from './soak-bff.js';
import type { SoakLoadMessage, SoakLoadRequest, SoakLoadResult } from './soak-load.js';

const START = '<!-- soak:generated:start (rewritten by `npm run soak`; edit outside these markers) -->';
const END = '<!-- soak:generated:end -->';

const durationSec = num('SOAK_DURATION_SEC', 600, 10);
const fixedRate = process.env.SOAK_RATE ? num('SOAK_RATE', 0, 1) : undefined;
const settings = {
  durationSec,
  warmupSec: num('SOAK_WARMUP_SEC', Math.round(durationSec * 0.2), 1),
  loadSessions: Math.round(num('SOAK_LOAD_SESSIONS', 8, 1)),
  connections: Math.round(num('SOAK_CONNECTIONS', 16, 1)),
  pacedConnections: Math.round(num('SOAK_PACED_CONNECTIONS', 64, 1)),
  calibrateSec: num('SOAK_CALIBRATE_SEC', 10, 2),
  fraction: num('SOAK_LOAD_FRACTION', 0.7, 0.01),
  fixedRate,
  users: Math.round(num('SOAK_USERS', 4, 0)),
  sessionSec: num('SOAK_SESSION_SEC', 25, 1),
  tokenTtlSec: Math.round(num('SOAK_TOKEN_TTL_SEC', 70, 61)),
  pauseMs: num('SOAK_CALL_PAUSE_MS', 50, 0),
  maxRequests: Math.round(num('SOAK_MAX_REQUESTS', 1_000_000, 1)),
  sampleSec: num('SOAK_SAMPLE_SEC', 2, 0.5),
  maxRssSlope: num('SOAK_MAX_RSS_SLOPE_MB_MIN', 2, 0),
  maxHeapGrowth: num('SOAK_MAX_HEAP_GROWTH_MB', 3, 0),
  write: process.env.SOAK_WRITE !== '0',
};
if (settings.warmupSec >= settings.durationSec / 2) throw new Error('SOAK_WARMUP_SEC must be < half the run');

interface Sample {
  t: number;
  rss: number;
  heapUsed: number;
}

interface Counts {
  logins: number;
  calls: number;
  logouts: number;
  refusedAfterLogout: number;
  errors: number;
  errorKinds: Map<string, number>;
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num_ = 0;
  let den = 0;
  for (const [x, y] of points) {
    num_ += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num_ / den;
}

const MB = 2 ** 20;

async function main(): Promise<number> {
  const t0 = performance.now();
  const started = new Date();
  const loadavg = os.loadavg();
  const children: { stop(): Promise<void> }[] = [];
  const keyPrefix = `fapi-bff-soak:${randomBytes(6).toString('hex')}:`;
  // Hard stop: whatever happens, never run much past the bound.
  const watchdog = setTimeout(
    () => {
      console.error('soak: watchdog: still running long after the bound, exiting');
      process.exit(2);
    },
    (settings.durationSec + 180) * 1000,
  );
  watchdog.unref();
  try {
    const upstream = new Child<{ id: number; type: 'stats' }, unknown>('./upstream.js', []);
    children.push(upstream);
    const upstreamUrl = (await upstream.ready).url;
    const port = await freePort();
    const key = await makeClientKey();
    const idpOptions: DevIdpOptions = {
      clients: [clientMetadata('soak', `http://127.0.0.1:${port}`, key)],
      accessTokenTtlSec: settings.tokenTtlSec,
    };
    const idp = new Child<{ id: number }, unknown>('./idp.js', [JSON.stringify(idpOptions)]);
    children.push(idp);
    const issuer = (await idp.ready).url;
    const bffOptions: SoakBffOptions = {
      port,
      issuer,
      clientId: 'soak',
      key,
      upstreamUrl,
      keyPrefix,
      env: { MS_BFF_REFRESH_SKEW: '60' },
    };
    const bff = new Child<SoakBffRequest, SoakBffMessage>(
      './soak-bff.js',
      [JSON.stringify(bffOptions)],
      ['--expose-gc'],
    );
    children.push(bff);
    const { url: bffUrl, cookieName = '__Host-bff-session' } = await bff.ready;
    const loader = new Child<SoakLoadRequest, SoakLoadMessage>('./soak-load.js', []);
    children.push(loader);
    await loader.ready;
    console.log(
      `soak: BFF pid ${bff.proc.pid} at ${bffUrl} (Redis ${REDIS_URL}), IdP ${issuer}; ` +
        `${settings.durationSec} s (warm-up ${settings.warmupSec} s), ${settings.loadSessions} sessions under load, ` +
        `${settings.users} churning users, access tokens of ${settings.tokenTtlSec} s (refresh 60 s before expiry)`,
    );

    const memory = async (gc = false) => {
      const m = await bff.ask({ type: 'memory', gc });
      if (m.type !== 'memory') throw new Error('unexpected answer');
      return m;
    };
    const refreshCount = async () => {
      const m = await bff.ask({ type: 'metrics' });
      if (m.type !== 'metrics') throw new Error('unexpected answer');
      let n = 0;
      for (const line of m.text.split('\n')) {
        const match = /^bff_token_refresh_total\{[^}]*outcome="success"[^}]*\} (\d+)/.exec(line);
        if (match) n += Number(match[1]);
      }
      return n;
    };
    const csrf = { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' };
    /** Signs a fresh browser in through the IdP; what failed, if anything. */
    const signIn = async (browser: TestBrowser): Promise<string | undefined> => {
      const start = await startLogin(browser, bffUrl, issuer);
      if (!start.stopped) return `login start ${start.response.status}`;
      const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
        u.href.startsWith(`${bffUrl}/auth/callback`),
      );
      const callback = await browser.request(done.url);
      await callback.text();
      return callback.status === 302 ? undefined : `callback ${callback.status}`;
    };

    // The sessions the load generator spreads its calls over.
    const loadRequests: SoakLoadRequest['requests'] = [];
    for (let i = 0; i < settings.loadSessions; i++) {
      const browser = new TestBrowser({ timeoutMs: 10_000 });
      const failed = await signIn(browser);
      if (failed) throw new Error(`signing in a load session: ${failed}`);
      const cookie = `${cookieName}=${browser.cookie(bffUrl, cookieName)?.value ?? ''}`;
      loadRequests.push({ path: '/api/soak/items', headers: { ...csrf, cookie } });
    }
    const loadRun = async (type: 'max' | 'paced', warmupSec: number, runSec: number, rate?: number) => {
      const m = await loader.ask(
        {
          type,
          url: bffUrl,
          requests: loadRequests,
          // Open loop needs spare connections: one that waits on a slow response cannot keep its share
          // of the rate, so the paced run spreads it over more of them than calibration used.
          connections: type === 'max' ? settings.connections : settings.pacedConnections,
          warmupSec,
          durationSec: runSec,
          ...(rate !== undefined ? { rate } : {}),
        },
        (warmupSec + runSec + 60) * 1000,
      );
      if (m.type !== 'result') throw new Error(`load generator: ${m.type === 'failed' ? m.message : m.type}`);
      return m;
    };
    const failedResponses = (r: SoakLoadResult) =>
      r.errors + r.timeouts + Object.entries(r.statuses).reduce((n, [k, v]) => (k === '200' ? n : n + v), 0);

    // Calibration: the most this BFF answers here, closed loop (unless SOAK_RATE fixes the rate).
    let maxRate: number | undefined;
    if (settings.fixedRate === undefined) {
      const max = await loadRun('max', 3, settings.calibrateSec);
      if (failedResponses(max) > 0)
        throw new Error(`calibration: failed responses ${JSON.stringify(max.statuses)}`);
      maxRate = max.responses / max.elapsedSec;
    }
    const rate = Math.max(1, Math.round(settings.fixedRate ?? (maxRate ?? 0) * settings.fraction));
    console.log(
      maxRate !== undefined
        ? `soak: measured maximum ${maxRate.toFixed(0)} calls/s (${settings.connections} connections, closed loop, ` +
            `${settings.calibrateSec} s); soaking at ${rate} calls/s (${Math.round(settings.fraction * 100)} %)`
        : `soak: soaking at ${rate} calls/s (SOAK_RATE)`,
    );
    loader.proc.on('message', (m: SoakLoadMessage) => {
      if (m.type === 'progress') {
        console.log(
          `soak: load generator: ${m.responses} responses, ${m.non200} not 200, ${m.errors} errors`,
        );
      }
    });

    const counts: Counts = {
      logins: 0,
      calls: 0,
      logouts: 0,
      refusedAfterLogout: 0,
      errors: 0,
      errorKinds: new Map(),
    };
    const fail = (kind: string) => {
      counts.errors++;
      counts.errorKinds.set(kind, (counts.errorKinds.get(kind) ?? 0) + 1);
    };
    const loadStart = Date.now();
    const deadline = loadStart + settings.durationSec * 1000;
    const requests = () => counts.calls + counts.logins * 4 + counts.logouts * 2;
    const running = () => Date.now() < deadline && requests() < settings.maxRequests;

    const user = async (n: number) => {
      await sleep((n * settings.sessionSec * 1000) / settings.users / 4);
      while (running()) {
        const browser = new TestBrowser({ timeoutMs: 10_000 });
        try {
          const failed = await signIn(browser);
          if (failed) {
            fail(failed);
            continue;
          }
          counts.logins++;
          const sessionEnd = Date.now() + settings.sessionSec * 1000;
          while (Date.now() < sessionEnd && running()) {
            const res = await browser.request(`${bffUrl}/api/soak/items`, { headers: csrf });
            await res.text();
            if (res.status === 200) counts.calls++;
            else fail(`api ${res.status}`);
            if (settings.pauseMs > 0) await sleep(settings.pauseMs);
          }
          const cookieHeader = `${cookieName}=${browser.cookie(bffUrl, cookieName)?.value ?? ''}`;
          const out = await browser.request(`${bffUrl}/auth/logout`, {
            method: 'POST',
            headers: { ...csrf, accept: 'application/json' },
          });
          await out.text();
          if (out.status !== 200) {
            fail(`logout ${out.status}`);
            continue;
          }
          counts.logouts++;
          // The old cookie, replayed after logout, must open nothing on the server.
          const replay = await request(`${bffUrl}/api/soak/items`, {
            headers: { ...csrf, cookie: cookieHeader },
          });
          await replay.body.text();
          if (replay.statusCode === 401) counts.refusedAfterLogout++;
          else fail(`api after logout ${replay.statusCode}`);
        } catch (err) {
          fail(`exception ${(err as Error).name}: ${(err as Error).message.slice(0, 80)}`);
          await sleep(200);
        }
      }
    };

    const samples: Sample[] = [];
    let warm: Awaited<ReturnType<typeof memory>> | undefined;
    const sampler = (async () => {
      while (running()) {
        await sleep(settings.sampleSec * 1000);
        const t = (Date.now() - loadStart) / 1000;
        if (!warm && t >= settings.warmupSec) {
          warm = await memory(true);
          console.log(
            `soak: warm-up done at ${t.toFixed(0)} s: heap after GC ${(warm.heapUsed / MB).toFixed(1)} MB, RSS ${(warm.rss / MB).toFixed(1)} MB`,
          );
          continue;
        }
        const m = await memory(false);
        samples.push({ t, rss: m.rss, heapUsed: m.heapUsed });
        if (samples.length % 10 === 0) {
          console.log(
            `soak: ${t.toFixed(0)} s: RSS ${(m.rss / MB).toFixed(1)} MB, heap ${(m.heapUsed / MB).toFixed(1)} MB;` +
              ` ${counts.logins} logins, ${counts.calls} calls, ${counts.logouts} logouts, ${counts.errors} errors`,
          );
        }
      }
    })();
    const paced = loadRun('paced', 0, settings.durationSec, rate);
    await Promise.all([...Array.from({ length: settings.users }, (_, i) => user(i)), sampler]);
    const load = await paced;
    const loadSec = (Date.now() - loadStart) / 1000;
    const refreshes = await refreshCount();
    await sleep(1000);
    const end = await memory(true);
    if (!warm) throw new Error('the run ended before the warm-up sample');

    const second = samples.filter((s) => s.t >= loadSec / 2);
    const rssSlope = slope(second.map((s) => [s.t / 60, s.rss / MB]));
    const heapSlope = slope(second.map((s) => [s.t / 60, s.heapUsed / MB]));
    const heapGrowth = (end.heapUsed - warm.heapUsed) / MB;
    const flatRss = rssSlope < settings.maxRssSlope;
    const flatHeap = heapGrowth < settings.maxHeapGrowth;
    const loadFailed = failedResponses(load);
    const achieved = load.responses / load.elapsedSec;
    const rateHeld = achieved >= rate * 0.95;
    const ok = flatRss && flatHeap && counts.errors === 0 && loadFailed === 0 && rateHeld && refreshes > 0;
    const lines = [
      START,
      '',
      `## Soak (\`npm run soak\`)`,
      '',
      `**Latest soak:** ${started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${os.availableParallelism()} CPUs · Node ${process.version} · load average at start ${loadavg.map((l) => l.toFixed(2)).join(' / ')}.`,
      `Calibration: ${settings.connections} connections, closed loop, ${settings.calibrateSec} s over ${settings.loadSessions} signed-in sessions → ` +
        (maxRate !== undefined
          ? `measured maximum **${maxRate.toFixed(0)} API calls/s**; the soak runs at ${Math.round(settings.fraction * 100)} % of it.`
          : `skipped (SOAK_RATE=${rate}).`),
      `For ${loadSec.toFixed(0)} s against one BFF on Redis (its own process): the load generator (autocannon, open loop, ${settings.pacedConnections} connections) calls`,
      `\`/api/soak/items\` at ${rate} calls/s over those sessions, whose access tokens (${settings.tokenTtlSec} s) are refreshed 60 s before expiry`,
      `under that load; ${settings.users} more virtual users each log in through the dev IdP, call the API for ${settings.sessionSec} s`,
      `(pause ${settings.pauseMs} ms), log out and replay the old cookie (must be 401).`,
      '',
      '| paced load: target | achieved | responses | not 200 / errors / timeouts | p50 ms | p99 ms | max ms |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${rate}/s | ${achieved.toFixed(0)}/s (${rateHeld ? 'held' : 'NOT HELD'}) | ${load.responses} | ${loadFailed - load.errors - load.timeouts} / ${load.errors} / ${load.timeouts} | ${load.p50Ms.toFixed(2)} | ${load.p99Ms.toFixed(2)} | ${load.maxMs.toFixed(1)} |`,
      '',
      '| virtual users: logins | API calls | logouts | old cookie refused | errors | refreshes (all sessions) |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${counts.logins} | ${counts.calls} | ${counts.logouts} | ${counts.refusedAfterLogout} | ${counts.errors} | ${refreshes} |`,
      '',
      '| memory of the BFF process | value | bound | verdict |',
      '| --- | ---: | ---: | --- |',
      `| RSS slope, second half (least squares over ${second.length} samples every ${settings.sampleSec} s) | ${rssSlope.toFixed(2)} MB/min | < ${settings.maxRssSlope} MB/min | ${flatRss ? 'flat' : 'GROWING'} |`,
      `| heap used slope, second half (no forced GC; informative) | ${heapSlope.toFixed(2)} MB/min | – | – |`,
      `| heap after full GC: end of warm-up (${settings.warmupSec} s) → end | ${(warm.heapUsed / MB).toFixed(1)} → ${(end.heapUsed / MB).toFixed(1)} MB (${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(2)} MB) | < +${settings.maxHeapGrowth} MB | ${flatHeap ? 'flat' : 'GROWING'} |`,
      `| RSS: end of warm-up → end | ${(warm.rss / MB).toFixed(1)} → ${(end.rss / MB).toFixed(1)} MB | – | – |`,
      '',
      `Verdict: **${ok ? 'memory flat, no errors, rate held' : 'FAILED'}**${counts.errors ? ` (errors: ${[...counts.errorKinds].map(([k, v]) => `${k} × ${v}`).join(', ')})` : ''}${loadFailed ? ` (load generator: ${loadFailed} failed: ${JSON.stringify(load.statuses)}, ${load.errors} errors, ${load.timeouts} timeouts)` : ''}${rateHeld ? '' : ' (rate not held)'}${refreshes === 0 ? ' (no refresh happened)' : ''}.`,
      '',
      END,
    ];
    const text = lines.join('\n');
    console.log(`\n${text}\n`);
    if (settings.write) {
      writeResultsSection(text, START, END);
      console.log(`soak: wrote ${RESULTS_PATH}`);
    }
    return ok ? 0 : 1;
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => undefined);
    const deleted = await deleteKeysUnder(keyPrefix);
    clearTimeout(watchdog);
    console.log(
      `soak: deleted ${deleted} Redis keys; done in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('soak: failed:', err);
    process.exitCode = 1;
  },
);
