/**
 * What durable session writes cost (`npm run bench` runs it last; standalone:
 * `node dist/bench/durability.js`): on a real Sentinel topology (one master, one replica, three
 * sentinels; test/helpers/redis-servers.ts), two BFFs that differ only in
 * `MS_BFF_REDIS_DURABLE_REPLICAS` (1: the session write at login waits for the replica with `WAIT`;
 * 0: asynchronous replication only). Measured: the login's callback request (code exchange, ID token
 * checks, session write, cookie), interleaved login by login, and the store write alone (`SET` vs
 * `SET` + `WAIT 1` in one pipeline, 3.3 KB values, interleaved in batches). Skipped when
 * redis-server / redis-sentinel are missing. BENCH_DURABLE_LOGINS (default 30 per BFF),
 * BENCH_DURABLE_WRITES (default 1000 per variant), BENCH_WRITE=0.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import type { DevIdpOptions } from '../src/dev/idp.js';
import { createRedisStore, type RedisStore } from '../src/store/redis-store.js';
import {
  clientMetadata,
  freePort,
  makeClientKey,
  type RunningBff,
  startBff,
} from '../test/helpers/bff-harness.js';
import { ALICE, startLogin } from '../test/helpers/flows.js';
import { haveRedisSentinel, haveRedisServer, startSentinel } from '../test/helpers/redis-servers.js';
import { loginAtDevIdp, TestBrowser } from '../test/helpers/test-browser.js';
import { BenchChild } from './processes.js';
import { RESULTS_PATH, writeResultsSection } from './results-file.js';

const START =
  '<!-- durability:generated:start (rewritten by `npm run bench`; edit outside these markers) -->';
const END = '<!-- durability:generated:end -->';
const LOGINS = Math.max(1, Number(process.env.BENCH_DURABLE_LOGINS ?? 30));
const WRITES = Math.max(50, Number(process.env.BENCH_DURABLE_WRITES ?? 1000));
const BATCH = 50;

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

async function callbackMs(bff: RunningBff, issuer: string): Promise<number> {
  const browser = new TestBrowser();
  const start = await startLogin(browser, bff.url, issuer);
  if (!start.stopped) throw new Error(`login did not reach the IdP (${start.response.status})`);
  const done = await loginAtDevIdp(browser, start.url, ALICE.username, ALICE.password, (u) =>
    u.href.startsWith(`${bff.url}/auth/callback`),
  );
  const t = performance.now();
  const res = await browser.request(done.url);
  const ms = performance.now() - t;
  await res.text();
  if (res.status !== 302) throw new Error(`callback answered ${res.status}`);
  return ms;
}

async function main(): Promise<number> {
  if (!haveRedisServer || !haveRedisSentinel) {
    console.log('bench: durability cost SKIPPED: redis-server / redis-sentinel not on PATH');
    return 0;
  }
  const started = new Date();
  const loadavg = os.loadavg();
  const topology = await startSentinel({ downAfterMs: 5000 });
  let idp: BenchChild<{ id: number }, unknown> | undefined;
  const stores: RedisStore[] = [];
  const bffs: RunningBff[] = [];
  try {
    const ports = [await freePort(), await freePort()];
    const keys = [await makeClientKey(), await makeClientKey()];
    const idpOptions: DevIdpOptions = {
      clients: [0, 1].map((i) => clientMetadata(`durable-${i}`, `http://127.0.0.1:${ports[i]}`, keys[i]!)),
    };
    idp = new BenchChild('./idp.js', [JSON.stringify(idpOptions)]);
    const issuer = (await idp.ready).url;
    const prefix = `fapi-bff-durable-bench:${randomBytes(4).toString('hex')}:`;
    for (const replicas of [1, 0]) {
      const store = await createRedisStore({
        topology: { kind: 'sentinel', sentinels: topology.endpoints, masterName: topology.masterName },
        keyPrefix: prefix,
        durableReplicas: replicas,
      });
      stores.push(store);
      const i = replicas === 1 ? 0 : 1;
      bffs.push(
        await startBff({
          port: ports[i]!,
          issuer,
          clientId: `durable-${i}`,
          key: keys[i]!,
          store,
          routes: {},
          // 2 × (LOGINS + 1) logins from one address within a minute: what this measures is the store write,
          // not the abuse limits (per address and the global PAR budget), so they are off.
          env: { MS_BFF_LOGIN_RATE_LIMIT: '0', MS_BFF_CALLBACK_RATE_LIMIT: '0', MS_BFF_PAR_BUDGET: '0' },
        }),
      );
    }
    const [durableBff, asyncBff] = bffs as [RunningBff, RunningBff];
    const [durableStore, asyncStore] = stores as [RedisStore, RedisStore];

    // Logins, interleaved one by one (one warm-up each, discarded).
    await callbackMs(durableBff, issuer);
    await callbackMs(asyncBff, issuer);
    const loginMs: [number[], number[]] = [[], []];
    for (let i = 0; i < LOGINS; i++) {
      const order = i % 2 ? [1, 0] : [0, 1];
      for (const which of order) loginMs[which]?.push(await callbackMs(bffs[which]!, issuer));
    }

    // The write alone: SET vs SET + WAIT 1, sequential, interleaved batches.
    const value = randomBytes(2475).toString('base64url');
    const writeUs: [number[], number[]] = [[], []];
    for (let b = 0; b < (WRITES / BATCH) * 2; b++) {
      const which = b % 2;
      const store = which === 0 ? durableStore : asyncStore;
      const t = performance.now();
      for (let i = 0; i < BATCH; i++) {
        const key = `bench-write:${b}:${i}`;
        if (which === 0) await store.setDurable(key, value, 60_000);
        else await store.set(key, value, 60_000);
      }
      writeUs[which]?.push(((performance.now() - t) * 1000) / BATCH);
    }
    const shortfalls = durableStore.durableShortfalls;
    const row = (label: string, v: number[], unit: string, digits: number) =>
      `| ${label} | ${quantile(v, 0.5).toFixed(digits)} ${unit} | ${quantile(v, 0.9).toFixed(digits)} ${unit} |`;
    const text = [
      START,
      '',
      '## Cost of durable session writes (issue 9)',
      '',
      `**Latest run:** ${started.toISOString().replace(/\.\d+Z$/, 'Z')} · ${os.availableParallelism()} CPUs · Node ${process.version} · load average at start ${loadavg.map((l) => l.toFixed(2)).join(' / ')}.`,
      'Real Sentinel topology on loopback (1 master, 1 replica, 3 sentinels). Two BFFs identical but for',
      '`MS_BFF_REDIS_DURABLE_REPLICAS` (1 = login waits for the replica, `WAIT 1 500` in the pipeline of the session `SET`; 0 = no wait).',
      `Login = the callback request alone (code exchange at the IdP, ID token checks, session write, cookie), ${LOGINS} per BFF, interleaved.`,
      `Write = the session write alone, ${WRITES} sequential writes of 3.3 KB per variant in interleaved batches of ${BATCH}.`,
      `Replica acknowledgements missing (WAIT timed out): ${shortfalls}.`,
      '',
      '| measurement | median | p90 |',
      '| --- | ---: | ---: |',
      row('login callback, with WAIT 1', loginMs[0], 'ms', 2),
      row('login callback, without WAIT', loginMs[1], 'ms', 2),
      row('session write `SET` + `WAIT 1`', writeUs[0], 'µs', 0),
      row('session write `SET`', writeUs[1], 'µs', 0),
      '',
      `- WAIT adds ${(quantile(writeUs[0], 0.5) - quantile(writeUs[1], 0.5)).toFixed(0)} µs to a session write here (median) and ` +
        `${(quantile(loginMs[0], 0.5) - quantile(loginMs[1], 0.5)).toFixed(2)} ms to a login's callback (median; within this machine's noise when near zero).`,
      '  On a real network it adds one master→replica round trip to each login and refresh; an ordinary API call never waits.',
      '',
      END,
    ].join('\n');
    console.log(`\n${text}\n`);
    if (process.env.BENCH_WRITE !== '0') {
      writeResultsSection(text, START, END);
      console.log(`bench: wrote ${RESULTS_PATH}`);
    }
    return 0;
  } finally {
    for (const b of bffs) await b.close();
    for (const s of stores) await s.close();
    idp?.killNow();
    await topology.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('bench: durability cost failed:', err);
    process.exitCode = 1;
  },
);
