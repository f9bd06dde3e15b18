/**
 * `npm run soak` (not in CI): a bounded run of logins, API calls, token refreshes and logouts against
 * one BFF on the Redis store, sampling the BFF process's memory; exits 1 unless memory is flat and
 * no request failed. Results go to bench/RESULTS.md (between the soak markers) unless SOAK_WRITE=0.
 *
 * Processes: the BFF (`soak-bff.ts`, with --expose-gc, so its memory is its own), the dev IdP
 * (`idp.ts`) and the upstream (`upstream.ts`) are forked children; this process drives the load
 * (SOAK_USERS virtual users, each: log in through the IdP, call the API until its session is
 * SOAK_SESSION_SEC old, log out, then check the old cookie is refused). Access tokens live
 * SOAK_TOKEN_TTL_SEC and the BFF refreshes MS_BFF_REFRESH_SKEW (60) s before expiry, so every session
 * sees refreshes. Bounded by SOAK_DURATION_SEC (default 180) and SOAK_MAX_REQUESTS (default 1,000,000).
 *
 * Flat memory means both:
 * - RSS slope over the second half of the run (least squares over the samples, MB per minute) below
 *   SOAK_MAX_RSS_SLOPE_MB_MIN (default 2): a leak of 1 KB per request at this rate would be ~60 MB/min;
 * - V8 heap after a full GC at the end minus after a full GC at the end of the warm-up (SOAK_WARMUP_SEC,
 *   default 20 % of the run) below SOAK_MAX_HEAP_GROWTH_MB (default 3).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { request } from 'undici';
import type { DevIdpOptions } from '../src/dev/idp.js';
import { clientMetadata, freePort, makeClientKey, REDIS_URL } from '../test/helpers/bff-harness.js';
import { ALICE, startLogin } from '../test/helpers/flows.js';
import { loginAtDevIdp, TestBrowser } from '../test/helpers/test-browser.js';
import type { SoakBffMessage, SoakBffOptions, SoakBffRequest } from './soak-bff.js';

const RESULTS_PATH = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const START = '<!-- soak:generated:start (rewritten by `npm run soak`; edit outside these markers) -->';
const END = '<!-- soak:generated:end -->';

function num(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}`);
  return n;
}

const durationSec = num('SOAK_DURATION_SEC', 180, 10);
const settings = {
  durationSec,
  warmupSec: num('SOAK_WARMUP_SEC', Math.round(durationSec * 0.2), 1),
  users: Math.round(num('SOAK_USERS', 6, 1)),
  sessionSec: num('SOAK_SESSION_SEC', 25, 1),
  tokenTtlSec: Math.round(num('SOAK_TOKEN_TTL_SEC', 70, 61)),
  pauseMs: num('SOAK_CALL_PAUSE_MS', 2, 0),
  maxRequests: Math.round(num('SOAK_MAX_REQUESTS', 1_000_000, 1)),
  sampleSec: num('SOAK_SAMPLE_SEC', 2, 0.5),
  maxRssSlope: num('SOAK_MAX_RSS_SLOPE_MB_MIN', 2, 0),
  maxHeapGrowth: num('SOAK_MAX_HEAP_GROWTH_MB', 3, 0),
  write: process.env.SOAK_WRITE !== '0',
};
if (settings.warmupSec >= settings.durationSec / 2) throw new Error('SOAK_WARMUP_SEC must be < half the run');

/** A forked child answering requests by id (the same shape as run.ts's, smaller). */
class Child<Req extends { id: number }, Res> {
  readonly proc: ChildProcess;
  readonly ready: Promise<{ url: string; cookieName?: string }>;
  readonly #pending = new Map<number, (m: Res) => void>();
  #next = 1;

  constructor(script: string, args: string[], execArgv: string[] = []) {
    this.proc = fork(fileURLToPath(new URL(script, import.meta.url)), args, {
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      this.proc.on('message', (m: Res & { type: string; id?: number; url?: string; cookieName?: string }) => {
        if (m.type === 'ready') return resolve({ url: m.url ?? '', cookieName: m.cookieName });
        if (m.id === undefined) return;
        this.#pending.get(m.id)?.(m);
        this.#pending.delete(m.id);
      });
      this.proc.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
    });
    this.ready.catch(() => {});
  }

  ask(message: Req extends unknown ? Omit<Req, 'id'> : never, timeoutMs = 30_000): Promise<Res> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.proc.send({ ...message, id });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    if (this.proc.connected) this.proc.disconnect();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

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
    const pid = bff.proc.pid;
    console.log(
      `soak: BFF pid ${pid} at ${bffUrl} (Redis ${REDIS_URL}), IdP ${issuer}; ${settings.users} users, ` +
        `${settings.durationSec} s (warm-up ${settings.warmupSec} s), sessions of ${settings.sessionSec} s, ` +
        `access tokens of ${settings.tokenTtlSec} s (refresh 60 s before expiry)`,
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
    const csrf = { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' };

    const user = async (n: number) => {
      await sleep((n * settings.sessionSec * 1000) / settings.users / 4);
      while (running()) {
        const browser = new TestBrowser({ timeoutMs: 10_000 });
        try {
          const start = await startLogin(browser, bffUrl, issuer);
          if (!start.stopped) {
            fail(`login start ${start.response.status}`);
            continue;
          }
          const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
            u.href.startsWith(`${bffUrl}/auth/callback`),
          );
          const callback = await browser.request(done.url);
          await callback.text();
          if (callback.status !== 302) {
            fail(`callback ${callback.status}`);
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
    await Promise.all([...Array.from({ length: settings.users }, (_, i) => user(i)), sampler]);
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
    const ok = flatRss && flatHeap && counts.errors === 0 && refreshes > 0;
    const perSec = (n: number) => (n / loadSec).toFixed(1);
    const lines = [
      START,
      '',
      `## Soak (\`npm run soak\`)`,
      '',
      `**Latest soak:** ${started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${os.availableParallelism()} CPUs · Node ${process.version} · load average at start ${loadavg.map((l) => l.toFixed(2)).join(' / ')}.`,
      `${settings.users} virtual users for ${loadSec.toFixed(0)} s against one BFF on Redis (its own process), each: log in through the dev IdP,`,
      `call \`/api/soak/items\` for ${settings.sessionSec} s (pause ${settings.pauseMs} ms between calls), log out, replay the old cookie (must be 401).`,
      `Access tokens live ${settings.tokenTtlSec} s and are refreshed 60 s before expiry, so every session refreshes.`,
      '',
      '| logins | API calls | refreshes | logouts | old cookie refused | errors | API calls/s |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${counts.logins} | ${counts.calls} | ${refreshes} | ${counts.logouts} | ${counts.refusedAfterLogout} | ${counts.errors} | ${perSec(counts.calls)} |`,
      '',
      '| memory of the BFF process | value | bound | verdict |',
      '| --- | ---: | ---: | --- |',
      `| RSS slope, second half (least squares over ${second.length} samples every ${settings.sampleSec} s) | ${rssSlope.toFixed(2)} MB/min | < ${settings.maxRssSlope} MB/min | ${flatRss ? 'flat' : 'GROWING'} |`,
      `| heap used slope, second half (no forced GC; informative) | ${heapSlope.toFixed(2)} MB/min | – | – |`,
      `| heap after full GC: end of warm-up (${settings.warmupSec} s) → end | ${(warm.heapUsed / MB).toFixed(1)} → ${(end.heapUsed / MB).toFixed(1)} MB (${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(2)} MB) | < +${settings.maxHeapGrowth} MB | ${flatHeap ? 'flat' : 'GROWING'} |`,
      `| RSS: end of warm-up → end | ${(warm.rss / MB).toFixed(1)} → ${(end.rss / MB).toFixed(1)} MB | – | – |`,
      '',
      `Verdict: **${ok ? 'memory flat, no errors' : 'FAILED'}**${counts.errors ? ` (errors: ${[...counts.errorKinds].map(([k, v]) => `${k} × ${v}`).join(', ')})` : ''}${refreshes === 0 ? ' (no refresh happened)' : ''}.`,
      '',
      END,
    ];
    const text = lines.join('\n');
    console.log(`\n${text}\n`);
    if (settings.write) {
      const current = readFileSync(RESULTS_PATH, 'utf8');
      const a = current.indexOf(START);
      const b = current.indexOf(END);
      const next =
        a !== -1 && b > a
          ? `${current.slice(0, a)}${text}${current.slice(b + END.length)}`
          : `${current.trimEnd()}\n\n${text}\n`;
      writeFileSync(RESULTS_PATH, next);
      console.log(`soak: wrote ${RESULTS_PATH}`);
    }
    return ok ? 0 : 1;
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => undefined);
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect().catch(() => undefined);
    let deleted = 0;
    for await (const keys of redis.scanStream({ match: `${keyPrefix}*`, count: 500 }) as AsyncIterable<
      string[]
    >) {
      if (keys.length) deleted += await redis.del(...keys);
    }
    redis.disconnect();
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
