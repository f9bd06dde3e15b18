/**
 * fapi-bff (real entry point, `MS_BFF_WORKERS=auto`, Redis store) against Apache httpd +
 * mod_auth_openidc (Redis cache) as OIDC relying-party reverse proxies in front of the same upstream,
 * under the same wrk load (`npm run bench` runs it after run.ts; standalone:
 * `node dist/bench/apache.js`). Skipped with a message when apache2, mod_auth_openidc or wrk is missing.
 *
 * - Apache is started on a loopback port from a configuration generated in a temporary directory
 *   (event MPM, two fixed child processes of 32 threads: both cores, no process spawned or reaped
 *   mid-run), `OIDCCacheType redis`, PKCE S256, client_secret_basic, and the user's access token sent
 *   upstream as `Authorization: Bearer` (mod_headers from `OIDC_access_token`).
 * - fapi-bff runs as `node dist/src/main.js` with `MS_BFF_WORKERS=auto` (one worker per core), the
 *   Redis store, and either Bearer or DPoP-bound tokens (`MS_BFF_DPOP_ENABLED`, a fresh ES256 proof per
 *   call): two BFF configurations, each its own process tree.
 * - Each side's session is established once through a scripted login against the dev IdP (forked,
 *   without PAR, which mod_auth_openidc 2.4.12 does not do), then wrk sends the same requests with
 *   that session cookie (plus the BFF's CSRF header; Apache ignores it).
 * - CPU per request: user + system time of every process of a side (the master and every child,
 *   read from /proc/<pid>/stat, including reaped children's time), per upstream request; the upstream
 *   counts requests and checks each side attached its credential (Bearer or DPoP + proof).
 *
 * Environment: BENCH_APACHE_ROUNDS (default 3), BENCH_APACHE_DURATION (s, default 5),
 * BENCH_APACHE_BFF_WORKERS (the BFF's MS_BFF_WORKERS, default auto; for diagnosis only),
 * BENCH_APACHE_CONNECTIONS (default 16), BENCH_APACHE_THREADS (wrk threads, default 2),
 * APACHE_BIN, MOD_AUTH_OPENIDC, BENCH_WRITE=0.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import type { DevIdpOptions } from '../src/dev/idp.js';
import { bffEnv, clientMetadata, freePort, makeClientKey, REDIS_URL } from '../test/helpers/bff-harness.js';
import { ALICE, startLogin } from '../test/helpers/flows.js';
import { type MainProcess, startMain } from '../test/helpers/main-process.js';
import { loginAtDevIdp, TestBrowser } from '../test/helpers/test-browser.js';
import { BenchChild, treeCpuSec } from './processes.js';
import type { StatsRequest, StatsResult } from './protocol.js';
import { deleteKeysUnder } from './redis-keys.js';
import { RESULTS_PATH, writeResultsSection } from './results-file.js';
import { num } from './settings.js';

const run = promisify(execFile);
const APACHE = process.env.APACHE_BIN ?? '/usr/sbin/apache2';
const MOD_DIR = '/usr/lib/apache2/modules';
const MOD_OIDC = process.env.MOD_AUTH_OPENIDC ?? `${MOD_DIR}/mod_auth_openidc.so`;
const START = '<!-- apache:generated:start (rewritten by `npm run bench`; edit outside these markers) -->';
const END = '<!-- apache:generated:end -->';
const SECRET = `apache-bench-${randomBytes(16).toString('hex')}`;

const settings = {
  rounds: Math.round(num('BENCH_APACHE_ROUNDS', 3, 1)),
  durationSec: num('BENCH_APACHE_DURATION', 5, 1),
  connections: Math.round(num('BENCH_APACHE_CONNECTIONS', 16, 1)),
  threads: Math.round(num('BENCH_APACHE_THREADS', 2, 1)),
  write: process.env.BENCH_WRITE !== '0',
};

/** Why the comparison cannot run here, or undefined. */
function missing(): string | undefined {
  if (!existsSync(APACHE)) return `${APACHE} not found (Debian: apt-get install apache2)`;
  if (!existsSync(MOD_OIDC))
    return `${MOD_OIDC} not found (Debian: apt-get install libapache2-mod-auth-openidc)`;
  if (spawnSync('wrk', ['--version']).error) return 'wrk not found (Debian: apt-get install wrk)';
  return undefined;
}

interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
}

function parseLatencyMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

async function wrk(url: string, headers: Record<string, string>, durationSec: number): Promise<WrkResult> {
  const args = [
    `-t${settings.threads}`,
    `-c${settings.connections}`,
    `-d${durationSec}s`,
    '--timeout',
    '10s',
    '--latency',
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    url,
  ];
  const { stdout } = await run('wrk', args, { timeout: (durationSec + 30) * 1000 });
  const done = /(\d+) requests in ([\d.]+)(s|ms|m)/.exec(stdout);
  if (!done) throw new Error(`wrk output not understood:\n${stdout}`);
  const seconds = Number(done[2]) * (done[3] === 'ms' ? 0.001 : done[3] === 'm' ? 60 : 1);
  const pct = (p: string) => parseLatencyMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(stdout)?.[1] ?? '');
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requests: Number(done[1]),
    seconds,
    rps: Number(done[1]) / seconds,
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((a, n) => a + Number(n), 0) : 0,
  };
}

function apacheConfig(dir: string, port: number, issuer: string, upstreamUrl: string): string {
  const mod = (name: string, file: string) => `LoadModule ${name} ${MOD_DIR}/${file}`;
  return [
    `ServerRoot ${dir}`,
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${port}`,
    `PidFile ${dir}/httpd.pid`,
    `ErrorLog ${dir}/error.log`,
    'LogLevel warn',
    ...(process.getuid?.() === 0 ? ['User www-data', 'Group www-data'] : []),
    mod('mpm_event_module', 'mod_mpm_event.so'),
    mod('authz_core_module', 'mod_authz_core.so'),
    mod('authn_core_module', 'mod_authn_core.so'),
    mod('authz_user_module', 'mod_authz_user.so'),
    mod('headers_module', 'mod_headers.so'),
    mod('proxy_module', 'mod_proxy.so'),
    mod('proxy_http_module', 'mod_proxy_http.so'),
    `LoadModule auth_openidc_module ${MOD_OIDC}`,
    // Two fixed processes of 32 threads: both cores, and no child spawned or reaped mid-measurement.
    'StartServers 2',
    'ServerLimit 2',
    'ThreadsPerChild 32',
    'MaxRequestWorkers 64',
    'MinSpareThreads 1',
    'MaxSpareThreads 64',
    'MaxConnectionsPerChild 0',
    'KeepAliveTimeout 30',
    'MaxKeepAliveRequests 0',
    // The scripted browser's fetch sends Sec-Fetch-Mode: cors even for navigations; mod_auth_openidc
    // would answer 401 instead of redirecting to the IdP. A real browser navigation sends `navigate`.
    'RequestHeader unset Sec-Fetch-Mode early',
    `OIDCProviderMetadataURL ${issuer}/.well-known/openid-configuration`,
    'OIDCClientID apache',
    `OIDCClientSecret ${SECRET}`,
    `OIDCRedirectURI http://127.0.0.1:${port}/api/redirect_uri`,
    `OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}`,
    'OIDCPKCEMethod S256',
    'OIDCScope "openid"',
    'OIDCCacheType redis',
    `OIDCRedisCacheServer ${new URL(REDIS_URL).host}`,
    // Its own database: mod_auth_openidc's keys are not prefixed.
    'OIDCRedisCacheDatabase 7',
    'OIDCSessionInactivityTimeout 3600',
    'OIDCPassClaimsAs environment',
    '<Location /api/>',
    '  AuthType openid-connect',
    '  Require valid-user',
    '  RequestHeader set Authorization "Bearer %{OIDC_access_token}e"',
    '</Location>',
    `ProxyPass /api/bench/ ${upstreamUrl}/`,
    '',
  ].join('\n');
}

interface Side {
  name: string;
  url: string;
  headers: Record<string, string>;
  rootPid: number;
  auth: 'bearer' | 'dpop';
}

async function login(
  appUrl: string,
  issuer: string,
  startUrl: string,
  callbackPrefix: string,
  cookieName: string,
): Promise<string> {
  const browser = new TestBrowser();
  const idpOrigin = new URL(issuer).origin;
  const start = startUrl.includes('/auth/login')
    ? await startLogin(browser, appUrl, issuer)
    : await browser.navigate(startUrl, { stopWhen: (u) => u.origin === idpOrigin });
  if (!start.stopped) throw new Error(`login at ${appUrl} did not reach the IdP (${start.response.status})`);
  const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
    u.href.startsWith(callbackPrefix),
  );
  const callback = await browser.navigate(done.url, { stopWhen: (u) => !u.href.startsWith(callbackPrefix) });
  if (callback.response.status >= 400)
    throw new Error(`login callback at ${appUrl}: ${callback.response.status}`);
  const cookie = browser.cookie(appUrl, cookieName)?.value;
  if (!cookie) throw new Error(`login at ${appUrl} set no ${cookieName} cookie`);
  return cookie;
}

async function main(): Promise<number> {
  const why = missing();
  if (why) {
    console.log(`bench: mod_auth_openidc comparison SKIPPED: ${why}`);
    return 0;
  }
  const t0 = performance.now();
  const started = new Date();
  const loadavg = os.loadavg();
  const cleanups: (() => Promise<void> | void)[] = [];
  const dir = mkdtempSync(join(os.tmpdir(), 'fapi-bff-apache-'));
  chmodSync(dir, 0o755);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const watchdog = setTimeout(
    () => {
      console.error('bench: apache comparison watchdog fired');
      process.exit(2);
    },
    (settings.rounds * 3 * (settings.durationSec + 5) + 180) * 1000,
  );
  watchdog.unref();
  try {
    const upstream = new BenchChild<StatsRequest, StatsResult>('./upstream.js', [], [], {
      killAfterMs: 3000,
    });
    cleanups.push(() => upstream.stop());
    const stats = (peek = false) => upstream.ask({ type: 'stats', peek }, 5000);
    const upstreamUrl = (await upstream.ready).url;
    const [apachePort, bearerPort, dpopPort] = [await freePort(), await freePort(), await freePort()];
    const [bearerKey, dpopKey] = [await makeClientKey(), await makeClientKey()];
    const idpOptions: DevIdpOptions = {
      requirePar: false,
      accessTokenTtlSec: 3600,
      clients: [
        {
          client_id: 'apache',
          client_secret: SECRET,
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: [`http://127.0.0.1:${apachePort}/api/redirect_uri`],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          id_token_signed_response_alg: 'PS256',
        },
        clientMetadata('bench-workers', `http://127.0.0.1:${bearerPort}`, bearerKey),
        {
          ...clientMetadata('bench-workers-dpop', `http://127.0.0.1:${dpopPort}`, dpopKey),
          dpop_bound_access_tokens: true,
        },
      ],
    };
    const idp = new BenchChild<{ id: number }, unknown>('./idp.js', [JSON.stringify(idpOptions)], [], {
      killAfterMs: 3000,
    });
    cleanups.push(() => idp.stop());
    const issuer = (await idp.ready).url;

    // Apache + mod_auth_openidc.
    const conf = join(dir, 'httpd.conf');
    writeFileSync(conf, apacheConfig(dir, apachePort, issuer, upstreamUrl));
    const apachectl = (action: string) => execFileSync(APACHE, ['-d', dir, '-f', conf, '-k', action]);
    apachectl('start');
    cleanups.push(async () => {
      try {
        apachectl('stop');
      } catch {
        /* already gone */
      }
      await sleep(500);
    });
    const apachePid = await waitForPid(join(dir, 'httpd.pid'));
    const version = execFileSync(APACHE, ['-v']).toString().split('\n')[0]?.replace('Server version: ', '');
    const oidcVersion =
      /mod_auth_openidc-([\d.]+)/.exec(readFileSync(MOD_OIDC).toString('latin1'))?.[1] ?? '?';

    // fapi-bff, real entry point, one worker per core, Redis; Bearer and DPoP configurations.
    const keyPrefix = `fapi-bff-apache-bench:${randomBytes(6).toString('hex')}:`;
    const bffs: MainProcess[] = [];
    const startBffMain = async (port: number, clientId: string, key: typeof bearerKey, dpop: boolean) => {
      const bff = startMain({
        ...bffEnv({ port, issuer, clientId, key, routes: { bench: upstreamUrl } }),
        REDIS_URL,
        MS_BFF_REDIS_KEY_PREFIX: keyPrefix,
        MS_BFF_WORKERS: process.env.BENCH_APACHE_BFF_WORKERS ?? 'auto',
        LOG_LEVEL: 'info',
        ...(dpop ? { MS_BFF_DPOP_ENABLED: 'true' } : {}),
      });
      bffs.push(bff);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, bff);
      return bff;
    };
    cleanups.push(async () => {
      for (const b of bffs) await b.stop();
    });
    const bearerBff = await startBffMain(bearerPort, 'bench-workers', bearerKey, false);
    const dpopBff = await startBffMain(dpopPort, 'bench-workers-dpop', dpopKey, true);

    const apacheUrl = `http://127.0.0.1:${apachePort}`;
    const apacheCookie = await login(
      apacheUrl,
      issuer,
      `${apacheUrl}/api/bench/items`,
      `${apacheUrl}/api/redirect_uri`,
      'mod_auth_openidc_session',
    );
    const bffCookie = async (port: number) =>
      login(
        `http://127.0.0.1:${port}`,
        issuer,
        '/auth/login',
        `http://127.0.0.1:${port}/auth/callback`,
        '__Host-bff-session',
      );
    const csrf = { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' };
    const sides: Side[] = [
      {
        name: 'Apache + mod_auth_openidc (Redis cache), Bearer',
        url: `${apacheUrl}/api/bench/items`,
        headers: { cookie: `mod_auth_openidc_session=${apacheCookie}`, ...csrf },
        rootPid: apachePid,
        auth: 'bearer',
      },
      {
        name: 'fapi-bff MS_BFF_WORKERS=auto, Redis, Bearer',
        url: `http://127.0.0.1:${bearerPort}/api/bench/items`,
        headers: { cookie: `__Host-bff-session=${await bffCookie(bearerPort)}`, ...csrf },
        rootPid: bearerBff.child.pid as number,
        auth: 'bearer',
      },
      {
        name: 'fapi-bff MS_BFF_WORKERS=auto, Redis, DPoP (ES256)',
        url: `http://127.0.0.1:${dpopPort}/api/bench/items`,
        headers: { cookie: `__Host-bff-session=${await bffCookie(dpopPort)}`, ...csrf },
        rootPid: dpopBff.child.pid as number,
        auth: 'dpop',
      },
    ];
    // Probe: 200 with the upstream's body, and the credential each side must attach.
    for (const side of sides) {
      await stats();
      const res = await request(side.url, { headers: side.headers });
      await res.body.text();
      const seen = await stats();
      if (res.statusCode !== 200 || seen.requests !== 1 || seen[side.auth] !== 1) {
        throw new Error(`probe of ${side.name}: ${res.statusCode}, upstream saw ${JSON.stringify(seen)}`);
      }
    }
    console.log(
      `bench: Apache pid ${apachePid} (${version}, mod_auth_openidc ${oidcVersion}); BFF pids ${sides[1]?.rootPid}, ${sides[2]?.rootPid} (MS_BFF_WORKERS=auto → ${os.availableParallelism()} workers each)`,
    );

    type Point = WrkResult & { cpuUsPerReq: number; cores: number; pids: number; upstream: number };
    const points = new Map<string, Point[]>(sides.map((s) => [s.name, []]));
    /** Requests a proxy accepted before wrk stopped still reach the upstream: wait until none arrive. */
    const settle = async () => {
      let last = (await stats(true)).requests;
      for (let i = 0; i < 100; i++) {
        await sleep(50);
        const now = (await stats(true)).requests;
        if (now === last) return;
        last = now;
      }
      throw new Error('the upstream kept receiving requests after the load stopped');
    };
    // JIT / pool warm-up, discarded.
    for (const side of sides) {
      await wrk(side.url, side.headers, 2);
      await settle();
    }
    for (let round = 1; round <= settings.rounds; round++) {
      const order = round % 2 ? sides : [...sides].reverse();
      for (const side of order) {
        await stats();
        const before = treeCpuSec(side.rootPid);
        const r = await wrk(side.url, side.headers, settings.durationSec);
        await settle();
        const after = treeCpuSec(side.rootPid);
        const seen = await stats();
        if (r.non2xx > 0 || r.socketErrors > 0 || seen[side.auth] !== seen.requests) {
          throw new Error(
            `${side.name}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors, upstream ${JSON.stringify(seen)}`,
          );
        }
        const cpu = after.cpuSec - before.cpuSec;
        const point: Point = {
          ...r,
          cpuUsPerReq: (cpu * 1e6) / seen.requests,
          cores: cpu / r.seconds,
          pids: after.pids,
          upstream: seen.requests,
        };
        points.get(side.name)?.push(point);
        console.log(
          `[r${round}] ${side.name.padEnd(52)} ${r.rps.toFixed(0).padStart(6)} req/s p50 ${r.p50Ms.toFixed(2)} ms` +
            ` p99 ${r.p99Ms.toFixed(2)} ms cpu ${point.cpuUsPerReq.toFixed(0)} µs/req on ${point.cores.toFixed(2)} cores (${point.pids} processes)`,
        );
      }
    }

    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1] ?? Number.NaN;
    const sum = (name: string) => {
      const p = points.get(name) ?? [];
      const requests = p.reduce((a, x) => a + x.requests, 0);
      const seconds = p.reduce((a, x) => a + x.seconds, 0);
      return {
        rps: requests / seconds,
        perRound: p.map((x) => x.rps.toFixed(0)).join(' '),
        p50: median(p.map((x) => x.p50Ms)),
        p99: median(p.map((x) => x.p99Ms)),
        cpu: median(p.map((x) => x.cpuUsPerReq)),
        cores: median(p.map((x) => x.cores)),
        pids: p[0]?.pids ?? 0,
        rounds: p,
      };
    };
    const apache = sum(sides[0]?.name ?? '');
    const rows = sides.map((s) => ({ side: s, r: sum(s.name) }));
    const pairedRatio = (name: string) => {
      const mine = points.get(name) ?? [];
      const theirs = points.get(sides[0]?.name ?? '') ?? [];
      const ratios = mine.map((p, i) => p.rps / (theirs[i]?.rps ?? Number.NaN));
      return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
    };
    const dpopName = sides[2]?.name ?? '';
    const dpopRatio = pairedRatio(dpopName);
    const text = [
      START,
      '',
      '## fapi-bff with `MS_BFF_WORKERS=auto` vs Apache + mod_auth_openidc (issue 9)',
      '',
      `**Latest run:** ${started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${os.availableParallelism()} CPUs · ${version} · mod_auth_openidc ${oidcVersion} · Node ${process.version} · load average at start ${loadavg.map((l) => l.toFixed(2)).join(' / ')}.`,
      `wrk \`-t${settings.threads} -c${settings.connections} -d${settings.durationSec}s --latency\`, ${settings.rounds} rounds in alternating order after a 2 s warm-up of each side, same upstream (its own process), same loopback.`,
      'Both sides are OIDC relying parties holding the tokens server-side behind a session cookie established once through a',
      'scripted login against the dev IdP (no PAR: mod_auth_openidc 2.4.12 has none), both keep their sessions in the local',
      'Redis, both attach the access token to the upstream request. Apache: event MPM, 2 processes × 32 threads, `OIDCCacheType redis`,',
      'token passed as `Authorization: Bearer` via mod_headers. fapi-bff: `node dist/src/main.js`, one worker per core (node:cluster).',
      'CPU µs/request: user + system time of every process of the side (master and children, from /proc/<pid>/stat) per request',
      'the upstream received; "cores" = that CPU time ÷ wall time. wrk runs on the same 2 cores and takes its share.',
      '',
      '| side | req/s | req/s per round | p50 ms | p99 ms | CPU µs/req | cores used | processes | req/s vs Apache (paired, median (min…max)) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(({ side, r }) => {
        const ratio =
          side.name === sides[0]?.name
            ? '–'
            : (() => {
                const q = pairedRatio(side.name);
                return `${q.median.toFixed(2)}× (${q.min.toFixed(2)}…${q.max.toFixed(2)})`;
              })();
        return `| ${side.name} | ${r.rps.toFixed(0)} | ${r.perRound} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpu.toFixed(0)} | ${r.cores.toFixed(2)} | ${r.pids} | ${ratio} |`;
      }),
      '',
      `- Target (issue 9): DPoP + Redis with \`MS_BFF_WORKERS=auto\` ≥ 3× Apache's req/s: ${dpopRatio.median.toFixed(2)}× → ${dpopRatio.median >= 3 ? 'met' : 'MISSED'}.`,
      `- CPU per request, fapi-bff DPoP vs Apache: ${(sum(dpopName).cpu / apache.cpu).toFixed(2)}× (${sum(dpopName).cpu.toFixed(0)} vs ${apache.cpu.toFixed(0)} µs).`,
      '',
      END,
    ].join('\n');
    console.log(`\n${text}\n`);
    if (settings.write) {
      writeResultsSection(text, START, END);
      console.log(`bench: wrote ${RESULTS_PATH}`);
    }
    // Sessions of this run: mod_auth_openidc's database 7 is flushed of nothing else (its keys only).
    const deleted = await deleteKeysUnder(keyPrefix);
    console.log(
      `bench: deleted ${deleted} BFF keys; apache comparison took ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    return 0;
  } finally {
    clearTimeout(watchdog);
    for (const c of cleanups.reverse()) await c();
  }
}

async function waitHealthy(url: string, bff: MainProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (bff.child.exitCode !== null) throw new Error(`the BFF exited: ${bff.stderr().slice(-2000)}`);
    const ok = await request(url)
      .then(async (r) => {
        await r.body.text();
        return r.statusCode === 200;
      })
      .catch(() => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within 60 s`);
}

async function waitForPid(file: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0) return pid;
    }
    await sleep(100);
  }
  throw new Error(`apache did not write ${file}`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('bench: apache comparison failed:', err);
    process.exitCode = 1;
  },
);
