/**
 * JARM callback verification cost, in process (no HTTP): µs per `verifyJarm` (src/oauth/jarm.ts)
 * against a bare jose verification of the same token (`jwtVerify`; for encrypted responses
 * `compactDecrypt` + `jwtVerify`), measured in the same rounds.
 *
 * Forked by `run.ts` (its own process: nothing else runs on its event loop or thread pool while it
 * measures), or standalone, e.g. for a CPU profile:
 *
 *   node dist/bench/jarm.js [rounds=8] [case filter]
 *   node dist/bench/jarm.js breakdown [rounds=10]      (where verifyJarm's extra time goes)
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof-jarm dist/bench/jarm.js 30 ES256
 *   node dist/bench/profile-summary.js /tmp/prof-jarm/*.cpuprofile 40
 *
 * Method. Responses look like oidc-provider's (what the dev IdP issues): header `alg` + `kid`
 * (JWE: `alg`, `enc`, `cty: JWT`), claims `code`, `state`, `iss`, `aud`, `exp` = now + 120 s, no
 * `iat` and no `jti` (so the replay key is the SHA-256 of the claims). verifyJarm runs exactly as
 * the callback configures it: the production JwksCache as KeyResolver (over a local JWKS document
 * served by an in-memory fetch, fetched once during warm-up), a MemoryStore replay cache, no-op
 * metric events. A response can be verified only once (the replay cache refuses a second use), so
 * every round first generates fresh responses (not timed), then times, one verification at a time,
 * (a) bare jose, (b) verifyJarm and (c) what the callback does with JARM on, `peekJarmState` (it
 * finds the login transaction; it decrypts a JWE too) followed by verifyJarm, all three on the same
 * responses ((c) with its own replay cache), interleaved response by response in rotating order.
 * Round 0 is a discarded warm-up.
 * Reported: wall µs per verification and CPU µs (user + system of this process, thread pool
 * included: WebCrypto runs there) per verification, medians over rounds, and the overhead of (b)
 * and (c) over (a) paired per round.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type CryptoKey,
  CompactEncrypt,
  compactDecrypt,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { IdpFetch } from '../src/oauth/http.js';
import {
  type JarmEncAlg,
  type JarmEncEnc,
  type JarmEvents,
  type JarmOptions,
  peekJarmState,
  verifyJarm,
} from '../src/oauth/jarm.js';
import { checkHeader, type JwtPolicy, peekJwsHeader, verifyJws } from '../src/jose/jwt-policy.js';
import { JwksCache } from '../src/oauth/jwks-cache.js';
import { MemoryStore } from '../src/store/memory-store.js';
import type { JarmCaseResult, JarmFailure, JarmRequest, JarmResult } from './protocol.js';
import { jarmConsoleTable, jarmRows, jarmTargetLines } from './report.js';

const ISS = 'http://127.0.0.1:4000';
const CLIENT = 'bench-jarm';
const CTX_ISS = null;

interface Signer {
  alg: 'ES256' | 'PS256';
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function signer(alg: Signer['alg']): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `idp-${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`;
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

interface CaseSpec {
  name: string;
  signer: Signer;
  encryption?: { alg: JarmEncAlg; enc: JarmEncEnc; publicKey: CryptoKey; privateKey: CryptoKey };
  /** Responses per round: sized so a round takes tens of ms per verifier on this machine. */
  tokens: number;
}

interface Token {
  response: string;
  state: string;
}

const NO_EVENTS: JarmEvents = {
  verified() {},
  decryptionFailed() {},
  validationFailed() {},
  replayDenied() {},
  typInvalid() {},
  audMismatch() {},
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function makeToken(spec: CaseSpec): Promise<Token> {
  const state = randomBytes(32).toString('base64url');
  const jws = await new SignJWT({ code: randomBytes(32).toString('base64url'), state, iss: ISS })
    .setProtectedHeader({ alg: spec.signer.alg, kid: spec.signer.kid })
    .setAudience(CLIENT)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 120)
    .sign(spec.signer.privateKey);
  if (!spec.encryption) return { response: jws, state };
  const { alg, enc, publicKey } = spec.encryption;
  const response = await new CompactEncrypt(encoder.encode(jws))
    .setProtectedHeader({ alg, enc, cty: 'JWT' })
    .encrypt(publicKey);
  return { response, state };
}

/** `n` fresh responses, generated 16 at a time (signing and encryption run on the thread pool). */
async function makeTokens(spec: CaseSpec, n: number): Promise<Token[]> {
  const out: Token[] = [];
  while (out.length < n) {
    const batch = Math.min(16, n - out.length);
    out.push(...(await Promise.all(Array.from({ length: batch }, () => makeToken(spec)))));
  }
  return out;
}

/**
 * Wall and CPU µs per call of each verifier over `tokens`, one call at a time, interleaved token by
 * token (the order of the verifiers rotates from one token to the next): on this shared machine the
 * speed changes from one 100 ms to the next, and interleaving puts every verifier in the same
 * conditions, which timing each verifier over a contiguous block did not (±50 % between blocks).
 */
async function timedInterleaved<T>(
  tokens: T[],
  fns: readonly ((t: T) => unknown)[],
): Promise<{ us: number; cpuUs: number }[]> {
  const wall = fns.map(() => 0);
  const cpu = fns.map(() => 0);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    for (let k = 0; k < fns.length; k++) {
      const j = (i + k) % fns.length;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await fns[j]!(t);
      wall[j]! += performance.now() - t0;
      const used = process.cpuUsage(cpu0);
      cpu[j]! += used.user + used.system;
    }
  }
  return fns.map((_, j) => ({ us: (wall[j]! * 1000) / tokens.length, cpuUs: cpu[j]! / tokens.length }));
}

/** A replay store for one verifier: large, never swept (the sweep would land inside a measurement). */
function replayStore(): MemoryStore {
  return new MemoryStore({ maxEntries: 1_000_000, sweepIntervalMs: 0 });
}

/**
 * What every verifier of a case uses: verifyJarm's options for a given replay store, the case's
 * decryption key, `open` (a bare decryption of a JWE to its inner JWS; a JWS as is) and `bare` (bare
 * jose: `compactDecrypt` if encrypted, then `jwtVerify`).
 */
function caseVerifiers(spec: CaseSpec, keys: JwksCache) {
  const decryption = spec.encryption
    ? { key: spec.encryption.privateKey, alg: spec.encryption.alg, enc: spec.encryption.enc }
    : undefined;
  const jarmOptions = (replay: MemoryStore): JarmOptions => ({
    issuer: ISS,
    clientId: CLIENT,
    mode: 'query.jwt',
    algorithms: ['PS256', 'ES256'],
    keys,
    replay,
    events: NO_EVENTS,
    ...(decryption ? { decryption } : {}),
  });
  const verifyOptions = { algorithms: [spec.signer.alg], issuer: ISS, audience: CLIENT };
  const open = async (response: string): Promise<string> => {
    if (!decryption) return response;
    const { plaintext } = await compactDecrypt(response, decryption.key, {
      keyManagementAlgorithms: [decryption.alg],
      contentEncryptionAlgorithms: [decryption.enc],
    });
    return decoder.decode(plaintext);
  };
  // A JWS goes straight to jwtVerify: no extra await in the baseline the overhead is measured against.
  const bare = async (response: string): Promise<unknown> =>
    jwtVerify(decryption ? await open(response) : response, spec.signer.publicKey, verifyOptions);
  return { decryption, jarmOptions, verifyOptions, open, bare };
}

async function runCase(spec: CaseSpec, rounds: number, keys: JwksCache): Promise<JarmCaseResult> {
  const replay = replayStore();
  const callbackReplay = replayStore();
  const verifiers = caseVerifiers(spec, keys);
  const { decryption } = verifiers;
  const opts = verifiers.jarmOptions(replay);
  const callbackOpts = verifiers.jarmOptions(callbackReplay);

  const bare = (t: Token): Promise<unknown> => verifiers.bare(t.response);
  const jarm = (t: Token): Promise<unknown> =>
    verifyJarm(t.response, { outerIss: CTX_ISS, expectedState: t.state }, opts);
  const callback = async (t: Token): Promise<unknown> => {
    const state = await peekJarmState(t.response, decryption ? { decryption } : {});
    if (state !== t.state) throw new Error('peekJarmState did not find the state');
    return verifyJarm(t.response, { outerIss: CTX_ISS, expectedState: state }, callbackOpts);
  };

  const result: JarmCaseResult = {
    name: spec.name,
    tokens: spec.tokens,
    tokenChars: 0,
    bareUs: [],
    jarmUs: [],
    callbackUs: [],
    bareCpuUs: [],
    jarmCpuUs: [],
    callbackCpuUs: [],
  };
  try {
    for (let round = 0; round <= rounds; round++) {
      const tokens = await makeTokens(spec, spec.tokens);
      result.tokenChars = tokens[0]!.response.length;
      const [b, j, c] = await timedInterleaved(tokens, [bare, jarm, callback]);
      if (round === 0) continue; // warm-up: JIT, and the JWKS cache's first fetch
      result.bareUs.push(b!.us);
      result.jarmUs.push(j!.us);
      result.callbackUs.push(c!.us);
      result.bareCpuUs.push(b!.cpuUs);
      result.jarmCpuUs.push(j!.cpuUs);
      result.callbackCpuUs.push(c!.cpuUs);
    }
  } finally {
    await replay.close();
    await callbackReplay.close();
  }
  return result;
}

/** The four cases of the benchmark and the production key resolver over their local JWKS. */
async function setup(): Promise<{ specs: CaseSpec[]; keys: JwksCache }> {
  const [es, ps, rsa, ec] = await Promise.all([
    signer('ES256'),
    signer('PS256'),
    generateKeyPair('RSA-OAEP-256', { extractable: true }),
    generateKeyPair('ECDH-ES', { extractable: true }),
  ]);
  const jwks = JSON.stringify({ keys: [es.jwk, ps.jwk] });
  // The production KeyResolver, over a local JWKS document: no HTTP, fetched once.
  const localFetch: IdpFetch = () =>
    Promise.resolve(new Response(jwks, { status: 200, headers: { 'content-type': 'application/json' } }));
  const keys = new JwksCache({ jwksUri: `${ISS}/jwks`, fetch: localFetch });
  const specs: CaseSpec[] = [
    { name: 'signed ES256', signer: es, tokens: 250 },
    { name: 'signed PS256', signer: ps, tokens: 250 },
    {
      name: 'encrypted RSA-OAEP-256/A256GCM, inner PS256',
      signer: ps,
      encryption: { alg: 'RSA-OAEP-256', enc: 'A256GCM', ...rsa },
      tokens: 40,
    },
    {
      name: 'encrypted ECDH-ES/A256GCM, inner ES256',
      signer: es,
      encryption: { alg: 'ECDH-ES', enc: 'A256GCM', ...ec },
      tokens: 120,
    },
  ];
  return { specs, keys };
}

export async function runJarmBench(rounds: number, filter = ''): Promise<JarmCaseResult[]> {
  const { specs, keys } = await setup();
  const out: JarmCaseResult[] = [];
  for (const spec of specs) {
    if (filter && !spec.name.includes(filter)) continue;
    out.push(await runCase(spec, rounds, keys));
  }
  keys.stop();
  return out;
}

/**
 * For a CPU profile of one verifier alone (standalone only): `node --cpu-prof dist/bench/jarm.js
 * profile bare|jarm [count] [case]` generates `count` responses of the case, then verifies each once
 * with that verifier. Profile both and compare self times by function: response generation is the
 * same in both profiles, so the differences are the verifier's.
 */
async function profileLoop(verifier: 'bare' | 'jarm', count: number, filter: string): Promise<void> {
  const { specs, keys } = await setup();
  const spec = specs.find((s) => s.name.includes(filter));
  if (!spec) throw new Error(`no case matches ${filter}`);
  const { jarmOptions, verifyOptions, bare } = caseVerifiers(spec, keys);
  const replay = replayStore();
  const opts = jarmOptions(replay);
  // The JWKS cache's first fetch and the JIT, outside the comparison.
  for (const t of await makeTokens(spec, 200)) {
    await verifyJarm(t.response, { outerIss: null, expectedState: t.state }, opts);
    await jwtVerify(t.response, spec.signer.publicKey, verifyOptions).catch(() => undefined);
  }
  const tokens = await makeTokens(spec, count);
  const t0 = performance.now();
  for (const t of tokens) {
    if (verifier === 'jarm') await verifyJarm(t.response, { outerIss: null, expectedState: t.state }, opts);
    else await bare(t.response);
  }
  const us = ((performance.now() - t0) * 1000) / count;
  console.log(`${verifier} ${spec.name}: ${us.toFixed(1)} µs per verification over ${count}`);
  await replay.close();
  keys.stop();
}

/**
 * Where verifyJarm's extra time goes (standalone only: `node dist/bench/jarm.js breakdown [rounds]`).
 * Per case and round, on the same fresh responses: bare jose; the jose-policy layer alone
 * (`verifyJws` with the policy verifyJarm builds; after a bare decryption for JWEs); verifyJarm;
 * the callback's peek + verify. Then each JARM-only step on its own, in a loop over the same
 * responses (no signature work): medians over rounds, wall µs per response.
 */
async function breakdown(rounds: number): Promise<void> {
  const { specs, keys } = await setup();
  const policy: JwtPolicy = {
    algorithms: ['PS256', 'ES256'],
    issuer: ISS,
    audience: CLIENT,
    typ: { allowed: ['oauth-authz-resp+jwt', 'JWT'], required: false },
    requiredClaims: ['iss', 'aud', 'exp'],
    clockToleranceSec: 30,
    maxIatFutureSec: 120,
    maxIatAgeSec: 120,
    maxLifetimeSec: 600,
  };
  for (const spec of specs) {
    const { decryption, jarmOptions, verifyOptions, open } = caseVerifiers(spec, keys);
    const replay = replayStore();
    const replay2 = replayStore();
    const scratch = replayStore();
    const opts = jarmOptions(replay);
    const opts2 = jarmOptions(replay2);
    let serial = 0;
    const steps: [string, (t: Token & { jws: string; payload: JWTPayload }) => unknown][] = [
      ['bare jose', async (t) => jwtVerify(await open(t.response), spec.signer.publicKey, verifyOptions)],
      [
        'bare decryption + verifyJws (jose-policy layer)',
        async (t) => verifyJws(await open(t.response), keys, policy),
      ],
      ['verifyJarm', (t) => verifyJarm(t.response, { outerIss: null, expectedState: t.state }, opts)],
      [
        'peekJarmState + verifyJarm (callback)',
        async (t) => {
          await peekJarmState(t.response, decryption ? { decryption } : {});
          return verifyJarm(t.response, { outerIss: null, expectedState: t.state }, opts2);
        },
      ],
      ['  peekJarmState alone', (t) => peekJarmState(t.response, decryption ? { decryption } : {})],
      ['  segments: response.split(".") (×2 for a JWE)', (t) => t.response.split('.').length],
      [
        '  peekJwsHeader + checkHeader (header decode + rules)',
        (t) => checkHeader(peekJwsHeader(t.jws), policy),
      ],
      ['  JwksCache.resolve (cached key), awaited', (t) => keys.resolve(peekJwsHeader(t.jws))],
      [
        '  replay key: SHA-256 of JSON.stringify(claims)',
        (t) => createHash('sha256').update(JSON.stringify(t.payload)).digest('base64url'),
      ],
      [
        '  MemoryStore.setIfAbsent (new key), awaited',
        () => scratch.setIfAbsent(`jarm:${serial++}`, '1', 150_000),
      ],
      [
        '  URLSearchParams from the claims',
        (t) => {
          const params = new URLSearchParams();
          for (const [name, value] of Object.entries(t.payload)) {
            if (!['aud', 'exp', 'iat', 'nbf', 'jti'].includes(name) && typeof value === 'string')
              params.append(name, value);
          }
          return params;
        },
      ],
    ];
    if (decryption) {
      steps.push(
        ['  JWE header decode (decodeProtectedHeader)', (t) => decodeProtectedHeader(t.response)],
        [
          '  new TextDecoder(fatal) + decode of the inner JWS',
          (t) => new TextDecoder('utf-8', { fatal: true }).decode(encoder.encode(t.jws)),
        ],
        ['  (for scale) TextEncoder.encode of the inner JWS', (t) => encoder.encode(t.jws)],
      );
    }
    const us = new Map<string, number[]>(steps.map(([n]) => [n, []]));
    for (let round = 0; round <= rounds; round++) {
      const tokens = await Promise.all(
        (await makeTokens(spec, spec.tokens)).map(async (t) => {
          const jws = await open(t.response);
          return { ...t, jws, payload: decodeJwt(jws) };
        }),
      );
      // The four verifications interleaved token by token; the steps without crypto in short loops.
      const verifications = steps.slice(0, 4);
      const measured = await timedInterleaved(
        tokens,
        verifications.map(([, fn]) => fn),
      );
      if (round > 0) verifications.forEach(([name], i) => us.get(name)!.push(measured[i]!.us));
      const pieces = steps.slice(4);
      for (const [name, fn] of round % 2 ? pieces : [...pieces].reverse()) {
        const t0 = performance.now();
        for (const t of tokens) {
          const r = fn(t);
          if (r instanceof Promise) await r;
        }
        if (round > 0) us.get(name)!.push(((performance.now() - t0) * 1000) / tokens.length);
      }
    }
    await Promise.all([replay.close(), replay2.close(), scratch.close()]);
    console.log(`-- ${spec.name}: ${spec.tokens} responses × ${rounds} rounds, wall µs per response --`);
    const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
    for (const [name] of steps) console.log(`${med(us.get(name)!).toFixed(2).padStart(9)}  ${name}`);
  }
  keys.stop();
}

if (process.send) {
  // Forked by run.ts: answer one request at a time, exit when the driver goes away.
  process.on('message', (message: JarmRequest) => {
    if (message.type !== 'jarm') return;
    const t0 = performance.now();
    runJarmBench(message.rounds).then(
      (cases) => {
        const result: JarmResult = {
          type: 'jarm-result',
          id: message.id,
          cases,
          elapsedSec: (performance.now() - t0) / 1000,
        };
        process.send?.(result);
      },
      (err: unknown) => {
        const failure: JarmFailure = { type: 'jarm-error', id: message.id, message: String(err) };
        process.send?.(failure);
      },
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', url: '' });
} else if (process.argv[2] === 'profile') {
  const [, , , verifier = 'jarm', count = '10000', filter = 'signed ES256'] = process.argv;
  if (verifier !== 'bare' && verifier !== 'jarm') throw new Error('profile: bare or jarm');
  await profileLoop(verifier, Number(count), filter);
} else if (process.argv[2] === 'breakdown') {
  const rounds = Number(process.argv[3] ?? 10);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('rounds must be a positive integer');
  await breakdown(rounds);
} else {
  const rounds = Number(process.argv[2] ?? 8);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('rounds must be a positive integer');
  const t0 = performance.now();
  const rows = jarmRows(await runJarmBench(rounds, process.argv[3] ?? ''));
  console.log(jarmConsoleTable(rows));
  for (const line of jarmTargetLines(rows)) console.log(`target: ${line}`);
  console.log(`jarm: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
