/**
 * Micro-benchmarks of the BFF-only steps of the `/api` hot path, using the real classes, to put
 * µs numbers on what a CPU profile of `run.ts` shows (not part of `npm run bench`):
 *
 *   node dist/bench/micro.js
 *
 * The session record is built to the size the benchmark's dev-IdP login produces (JWT access
 * token ~700 B, ID token, refresh token, claims: ~2.8 KB sealed). Each line is the median of 7
 * batches, in µs per operation, single-threaded; compare lines with each other, not across machines.
 */
import { createHash, createHmac, createSecretKey, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Counter, Histogram, Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { RouteConfig } from '../src/config/types.js';
import { Metrics } from '../src/observability/metrics.js';
import { Forwarder } from '../src/proxy/forward.js';
import { MemoryStore } from '../src/session/memory-store.js';
import { SessionSealer } from '../src/session/sealing.js';
import { type LoadedSession, type SessionData, SessionManager } from '../src/session/session-manager.js';

/** Median µs per call of `fn` over 7 batches of `n` calls (after one warm-up batch). */
async function time(n: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  const batches: number[] = [];
  for (let b = 0; b < 8; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = fn();
      if (r instanceof Promise) await r;
    }
    if (b > 0) batches.push(Number(process.hrtime.bigint() - t0) / 1000 / n);
  }
  return batches.sort((a, b) => a - b)[3]!;
}

const results: [string, number][] = [];
async function measure(name: string, n: number, fn: () => unknown | Promise<unknown>): Promise<void> {
  const us = await time(n, fn);
  results.push([name, us]);
  console.log(`${us.toFixed(2).padStart(8)} µs  ${name}`);
}

const b64 = (bytes: number) => randomBytes(bytes).toString('base64url');
const jwt = (payloadBytes: number) => `${b64(60)}.${b64(payloadBytes)}.${b64(256)}`;

async function main(): Promise<void> {
  const sealer = new SessionSealer([randomBytes(32)]);
  const store = new MemoryStore({ maxEntries: 10_000 });
  const manager = new SessionManager(store, sealer, { idleTimeoutSec: 1800, absoluteTimeoutSec: 86_400 });
  const fields: Omit<SessionData, 'v' | 'createdAt' | 'absoluteExpiresAt'> = {
    sub: 'alice',
    sid: b64(16),
    claims: { sub: 'alice', name: 'Alice Example', email: 'alice@example.com', email_verified: true },
    identity: { iss: 'http://127.0.0.1:4000', sub: 'alice', aud: 'bench', azp: 'bench', auth_time: 1 },
    idToken: jwt(360),
    accessToken: jwt(180),
    tokenType: 'bearer',
    accessTokenExpiresAt: Date.now() + 3_600_000,
    refreshToken: b64(32),
    scope: 'openid profile email offline_access api:read',
  };
  const { cookieValue, session } = await manager.create(fields);
  console.log(
    `session record: ${session.sealed.length} B sealed, access token ${fields.accessToken.length} B, cookie ${cookieValue.length} B\n`,
  );
  const [version, id, mac] = cookieValue.split('.') as [string, string, string];
  const body = `${version}.${id}`;
  const key = session.key;
  const plain = JSON.stringify(session.data);
  const N = 20_000;

  console.log('-- session load (what the BFF does per request, memory store) --');
  await measure('SessionManager.load(cookie), total', N, () => manager.load(cookieValue));
  await measure('  verifyMac (HMAC-SHA-256 of the ticket, strict base64url)', N, () =>
    sealer.verifyMac(body, mac),
  );
  await measure('  storeKey (SHA-256 of the id)', N, () =>
    createHash('sha256').update(id).digest('base64url'),
  );
  await measure('  MemoryStore.get (awaited)', N, () => store.get(key));
  await measure('  SessionSealer.open (strict base64url ×3 + AES-256-GCM)', N, () =>
    sealer.open(session.sealed, key),
  );
  await measure('  JSON.parse of the record', N, () => JSON.parse(plain));

  console.log('-- alternatives --');
  const hmacKey = createSecretKey(randomBytes(32));
  const hmacBuf = randomBytes(32);
  await measure('HMAC-SHA-256 with a Buffer key (as now)', N, () =>
    createHmac('sha256', hmacBuf).update(body).digest(),
  );
  await measure('HMAC-SHA-256 with a prepared KeyObject', N, () =>
    createHmac('sha256', hmacKey).update(body).digest(),
  );
  const ct = session.sealed.split('.')[3]!;
  await measure('strict base64url of the ciphertext (regex + decode + re-encode)', N, () => {
    if (!/^[A-Za-z0-9_-]*$/.test(ct)) return undefined;
    const bytes = Buffer.from(ct, 'base64url');
    return bytes.toString('base64url') === ct ? bytes : undefined;
  });
  await measure('plain base64url decode of the ciphertext', N, () => Buffer.from(ct, 'base64url'));
  // A per-process cache of opened sessions, keyed by cookie value and validated against the
  // sealed value the store returns (so logout, refresh and other replicas' writes are honoured).
  const cache = new Map<string, { sealed: string; session: LoadedSession }>([
    [cookieValue, { sealed: session.sealed, session }],
  ]);
  const redisCopy = `${session.sealed.slice(0, 10)}${session.sealed.slice(10)}`; // a distinct string, as from Redis
  await measure('cache hit: Map.get(cookie) + sealed === cached.sealed (same string)', N, () => {
    const hit = cache.get(cookieValue);
    return hit !== undefined && hit.sealed === session.sealed ? hit.session : undefined;
  });
  await measure('cache hit: … + compare with a distinct 2.8 KB string (Redis)', N, () => {
    const hit = cache.get(cookieValue);
    return hit !== undefined && hit.sealed === redisCopy ? hit.session : undefined;
  });

  console.log('-- metrics (per proxied request) --');
  const metrics = new Metrics({ defaultMetrics: false });
  await measure('Metrics.proxied(route, 200, s) (counter + histogram, labels by object)', N, () =>
    metrics.proxied('bench', 200, 0.003),
  );
  const registry = new Registry();
  const counter = new Counter({
    name: 'c',
    help: 'c',
    labelNames: ['route', 'status_class'],
    registers: [registry],
  });
  const histogram = new Histogram({
    name: 'h',
    help: 'h',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const counterChild = counter.labels({ route: 'bench', status_class: '2xx' });
  const histogramChild = histogram.labels({ route: 'bench' });
  await measure('same with children resolved once (labels(...) cached per route)', N, () => {
    counterChild.inc();
    histogramChild.observe(0.003);
  });

  console.log('-- forwarder (header filtering + path, no network: a dispatcher that answers at once) --');
  const fake = {
    request: async () => ({
      statusCode: 200,
      headers: {
        'content-type': 'application/json',
        'content-length': '75',
        date: new Date().toUTCString(),
        connection: 'keep-alive',
        'keep-alive': 'timeout=120',
      },
      body: Readable.from([]),
    }),
  } as unknown as Dispatcher;
  const forwarder = new Forwarder(undefined, fake);
  const route: RouteConfig = {
    name: 'bench',
    url: new URL('http://127.0.0.1:4020'),
    token: 'user',
    timeoutMs: 30_000,
  } as RouteConfig;
  const headers = {
    host: '127.0.0.1:8080',
    connection: 'keep-alive',
    cookie: `__Host-bff-session=${cookieValue}`,
    'x-csrf': '1',
    'sec-fetch-site': 'same-origin',
    'sec-fetch-mode': 'cors',
    accept: 'application/json',
    'accept-language': 'en-GB,en;q=0.9',
    'accept-encoding': 'gzip, deflate, br',
    'user-agent':
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126 Safari/537.36',
    referer: 'http://127.0.0.1:8080/app',
  };
  await measure('Forwarder.forward (path check, request + response header filtering)', N, () =>
    forwarder.forward({
      route,
      rest: 'items',
      query: '',
      method: 'GET',
      headers,
      csrfHeader: 'x-csrf',
      raw: {} as IncomingMessage,
      authorization: `Bearer ${fields.accessToken}`,
      requestId: 'b9f0a0e2-1d7f-4e0b-9a55-0c6f0f0f0f0f',
    }),
  );
  await store.close();
}

await main();
