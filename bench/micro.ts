/**
 * Micro-benchmarks of the BFF-only steps of the `/api` hot path, using the real classes, to put
 * µs numbers on what a CPU profile of `run.ts` shows (not part of `npm run bench`):
 *
 *   node dist/bench/micro.js [session] [metrics] [forwarder] [dpop]   (default: all sections)
 *
 * The session record is built to the size the benchmark's dev-IdP login produces (JWT access
 * token ~700 B, ID token, refresh token, claims: ~2.8 KB sealed). Each line is the median of 7
 * batches, in µs per operation, single-threaded; compare lines with each other, not across machines.
 * The `dpop` section has its own interleaved method (see dpopSection).
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createSecretKey,
  type JsonWebKey as NodeJsonWebKey,
  type KeyObject,
  randomBytes,
  sign as nodeSign,
} from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { performance as perfHooks } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { Counter, Histogram, Registry } from 'prom-client';
import { CompactSign, type JWK, SignJWT } from 'jose';
import type { Dispatcher } from 'undici';
import type { RouteConfig } from '../src/config/types.js';
import { DpopKey, generateDpopKey } from '../src/dpop/client.js';
import { Metrics } from '../src/observability/metrics.js';
import { Forwarder } from '../src/proxy/forward.js';
import { MemoryStore } from '../src/store/memory-store.js';
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

async function main(want: (section: string) => boolean): Promise<void> {
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

  if (want('session')) {
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
  }

  if (want('metrics')) {
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
  }

  if (want('forwarder')) {
    console.log('-- forwarder (header filtering + path, no network: a dispatcher that answers at once) --');
    // undici's callback form, as the forwarder calls it.
    const fake = {
      request: (_options: unknown, callback: (err: null, data: unknown) => void) =>
        callback(null, {
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
      serviceAudience: undefined,
      serviceTokens: 'jwt',
      mtls: false,
      resource: undefined,
      clientScope: undefined,
      websocket: false,
      closeOnTokenExpiry: false,
      responseHeaders: [],
      cache: 'no-store',
    };
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
        forwarded: { clientIp: '127.0.0.1', host: '127.0.0.1:8080', proto: 'http' },
      }),
    );
  }
  await store.close();
  if (want('dpop')) await dpopSection();
}

/**
 * DPoP proofs (issue 3): the ways jose can sign a proof, plus node:crypto as a reference only (a
 * hand-built JWS: the project rule keeps every JOSE operation in jose, so it cannot go into src/).
 * Every variant makes the same proof with the same session key: header `typ: dpop+jwt`, `alg`,
 * public `jwk`; claims `jti` (128 random bits), `htm`, `htu`, `iat`, `ath`; each is verified once
 * with jose before timing. Per variant, medians over 10 batches (after one discarded), variants
 * interleaved batch by batch so a burst of neighbour load hits them all:
 * - wall µs/proof one at a time (what one request waits), and with 64 in flight (WebCrypto signs
 *   on the libuv thread pool, so concurrent proofs overlap);
 * - event-loop µs/proof: `eventLoopUtilization()` active time, one at a time: the time
 *   every other request on this process waits for;
 * - CPU µs/proof: user + system time of the process, thread pool included, one at a time.
 */
async function dpopSection(): Promise<void> {
  const eventLoopUtilization = perfHooks.eventLoopUtilization.bind(perfHooks);
  const { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } = await import('jose');
  console.log('-- DPoP proof (ES256, per upstream request) --');
  const stored = await generateDpopKey('ES256');
  const key = await DpopKey.import(stored);
  const { kty, crv, x, y } = stored.jwk;
  const publicJwk: JWK = { kty, crv, x, y };
  const header = { alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk };
  const keyObject: KeyObject = createPrivateKey({ key: stored.jwk as NodeJsonWebKey, format: 'jwk' });
  const htu = new URL('http://127.0.0.1:4020/items');
  const accessToken = jwt(230);
  const encoder = new TextEncoder();
  const claims = () => ({
    jti: randomBytes(16).toString('base64url'),
    htm: 'GET',
    htu: `${htu.origin}${htu.pathname}`,
    ath: createHash('sha256').update(accessToken).digest('base64url'),
  });
  const headerB64 = Buffer.from(JSON.stringify(header)).toString('base64url');
  const variants: [string, () => Promise<string>][] = [
    [
      'jose SignJWT + CryptoKey (DpopKey.proof as in src/)',
      () => key.proof({ htm: 'GET', htu, accessToken }),
    ],
    [
      'jose SignJWT + KeyObject',
      () => new SignJWT(claims()).setProtectedHeader(header).setIssuedAt().sign(keyObject),
    ],
    [
      'jose CompactSign + CryptoKey, header object cached, claims JSON by us',
      () =>
        new CompactSign(encoder.encode(JSON.stringify({ ...claims(), iat: Math.floor(Date.now() / 1000) })))
          .setProtectedHeader(header)
          .sign(key.keyPair.privateKey),
    ],
    [
      'reference only: node:crypto sign, hand-built JWS, header pre-serialised',
      () => {
        const payload = Buffer.from(
          JSON.stringify({ ...claims(), iat: Math.floor(Date.now() / 1000) }),
        ).toString('base64url');
        const input = `${headerB64}.${payload}`;
        const sig = nodeSign('sha256', Buffer.from(input), { key: keyObject, dsaEncoding: 'ieee-p1363' });
        return Promise.resolve(`${input}.${sig.toString('base64url')}`);
      },
    ],
  ];
  // Validity: every variant's proof verifies with the session's public key and has the claims.
  const jwks = createLocalJWKSet({ keys: [{ ...publicJwk, alg: 'ES256' }] });
  for (const [name, make] of variants) {
    const proof = await make();
    await jwtVerify(proof, jwks, { typ: 'dpop+jwt', algorithms: ['ES256'] });
    const h = decodeProtectedHeader(proof);
    const c = decodeJwt(proof);
    const ok =
      h.typ === 'dpop+jwt' &&
      h.jwk?.kty === 'EC' &&
      h.jwk.x === publicJwk.x &&
      h.jwk.y === publicJwk.y &&
      !('d' in h.jwk) &&
      typeof c.jti === 'string' &&
      c.jti.length >= 22 &&
      c.htm === 'GET' &&
      c.htu === 'http://127.0.0.1:4020/items' &&
      typeof c.iat === 'number' &&
      typeof c.ath === 'string';
    if (!ok) throw new Error(`${name}: proof does not have the expected header and claims`);
  }

  interface Stat {
    wall1: number[];
    wall64: number[];
    loop: number[];
    cpu: number[];
  }
  const stats = new Map<string, Stat>(
    variants.map(([n]) => [n, { wall1: [], wall64: [], loop: [], cpu: [] }]),
  );
  const ONE = 400;
  const MANY = 640;
  for (let batch = 0; batch <= 10; batch++) {
    for (const [name, make] of batch % 2 ? variants : [...variants].reverse()) {
      const st = stats.get(name)!;
      const elu0 = eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < ONE; i++) await make();
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const elu = eventLoopUtilization(elu0);
      const t1 = performance.now();
      for (let i = 0; i < MANY; i += 64) await Promise.all(Array.from({ length: 64 }, make));
      const wall64 = performance.now() - t1;
      if (batch === 0) continue;
      st.wall1.push((wall * 1000) / ONE);
      st.loop.push((elu.active * 1000) / ONE);
      st.cpu.push((cpu.user + cpu.system) / ONE);
      st.wall64.push((wall64 * 1000) / MANY);
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  console.log('  wall µs 1-at-a-time | wall µs 64 in flight | event-loop µs | CPU µs (all threads)  variant');
  for (const [name] of variants) {
    const st = stats.get(name)!;
    const cols = [st.wall1, st.wall64, st.loop, st.cpu].map((v) => med(v).toFixed(1).padStart(8));
    console.log(`  ${cols.join('  ')}   ${name}`);
    results.push([`dpop: ${name} (wall, 1 at a time)`, med(st.wall1)]);
  }

  console.log('-- DPoP proof: where the time goes --');
  const signingInput = encoder.encode(
    `${headerB64}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`,
  );
  const algorithm = { name: 'ECDSA', hash: 'SHA-256' };
  let dispatchUs = 0;
  await measure('crypto.subtle.sign ES256 alone (awaited)', 2000, async () => {
    const t0 = performance.now();
    const p = crypto.subtle.sign(algorithm, key.keyPair.privateKey, signingInput);
    dispatchUs += performance.now() - t0;
    return p;
  });
  console.log(
    `${((dispatchUs * 1000) / (2000 * 8)).toFixed(2).padStart(8)} µs    of which synchronous (WebCrypto argument normalisation + job dispatch, on the event loop)`,
  );
  await measure('node:crypto sign ES256 alone (synchronous)', 2000, () =>
    nodeSign('sha256', signingInput, { key: keyObject, dsaEncoding: 'ieee-p1363' }),
  );
  await measure('claims: randomBytes(16) jti + SHA-256 ath of the access token', 20_000, claims);
  await measure('  randomBytes(16).toString(base64url)', 20_000, () => randomBytes(16).toString('base64url'));
  await measure('  SHA-256 ath of a 700-byte token', 20_000, () =>
    createHash('sha256').update(accessToken).digest('base64url'),
  );
  await measure('jose SignJWT builder + claims serialisation, no signing (structuredClone…)', 20_000, () =>
    new SignJWT(claims()).setProtectedHeader(header).setIssuedAt(),
  );
}

const SECTIONS = ['session', 'metrics', 'forwarder', 'dpop'];
const asked = process.argv.slice(2);
for (const a of asked)
  if (!SECTIONS.includes(a)) throw new Error(`unknown section ${a} (${SECTIONS.join(', ')})`);
await main((section) => asked.length === 0 || asked.includes(section));
