import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { BffError } from '../../src/errors.js';
import type { IdpFetch } from '../../src/oauth/http.js';
import { type JwtPolicy, JwtPolicyError, verifyJws } from '../../src/jose/jwt-policy.js';
import { JwksCache, type JwksCacheEvents, parseJwks } from '../../src/oauth/jwks-cache.js';

const ISS = 'https://idp.example';
const AUD = 'bff-client';

/** A JWKS endpoint on loopback whose answer each test programs; it counts requests. */
interface JwksServer {
  url: string;
  hits: number;
  /** Body (object → JSON), or a status, or 'hang' (never answers), or 'redirect'. */
  answer: unknown;
  status: number;
  delayMs: number;
  close(): Promise<void>;
}

/** What the redirect target serves. */
let validJwks: unknown = { keys: [] };

async function startJwksServer(): Promise<JwksServer> {
  const state = { hits: 0, answer: { keys: [] } as unknown, status: 200, delayMs: 0 };
  const server: Server = createServer((req, res) => {
    state.hits++;
    const send = () => {
      if (state.answer === 'hang') return; // never answers: the client's timeout must fire
      if (state.answer === 'redirect' && !req.url?.includes('moved')) {
        // Redirects to a perfectly valid JWKS: only not following it keeps us on the jwks_uri.
        res.writeHead(302, { location: '/moved' }).end();
        return;
      }
      if (state.answer === 'redirect') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(validJwks));
        return;
      }
      const body = typeof state.answer === 'string' ? state.answer : JSON.stringify(state.answer);
      res.writeHead(state.status, { 'content-type': 'application/json' }).end(body);
    };
    if (state.delayMs > 0) setTimeout(send, state.delayMs);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/jwks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  }) as JwksServer;
}

const loopbackFetch: IdpFetch = (url, init) => fetch(url, init as RequestInit);

function recorder(): JwksCacheEvents & { failed: number; ok: number } {
  const r = {
    failed: 0,
    ok: 0,
    refreshFailed: () => {
      r.failed++;
    },
    refreshed: () => {
      r.ok++;
    },
  };
  return r;
}

interface Signer {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signer(
  alg: 'ES256' | 'PS256' | 'ES384',
  kid: string,
  extra: Partial<JWK> = {},
): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig', ...extra } };
}

function token(s: Signer, alg = s.jwk.alg ?? 'ES256', kid = s.jwk.kid ?? 'k'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISS, aud: AUD, iat: now, exp: now + 60 })
    .setProtectedHeader({ alg, kid })
    .sign(s.privateKey);
}

const policy: JwtPolicy = { algorithms: ['ES256', 'PS256', 'ES384'], issuer: ISS, audience: AUD };

/** Waits (polling) until `done()` holds, at most `boundMs`: background work is slow on a loaded machine. */
async function eventually(done: () => boolean, boundMs = 5_000): Promise<void> {
  const until = Date.now() + boundMs;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}

async function rejectsWith(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof JwtPolicyError, `expected JwtPolicyError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return true;
  });
}

let server: JwksServer;
let es: Signer;
let ps: Signer;

before(async () => {
  server = await startJwksServer();
  es = await signer('ES256', 'k1');
  ps = await signer('PS256', 'k1'); // same kid, other kty: selection must use kty/alg too
});
after(() => server.close());
beforeEach(() => {
  server.hits = 0;
  server.status = 200;
  server.delayMs = 0;
  server.answer = { keys: [es.jwk] };
});

function cache(extra: Partial<ConstructorParameters<typeof JwksCache>[0]> = {}) {
  return new JwksCache({ jwksUri: server.url, fetch: loopbackFetch, timeoutMs: 2_000, ...extra });
}

describe('JwksCache: key selection (FAPI 2.0 SP §5.4.3)', () => {
  it('picks the real key among decoys sharing its kid', async () => {
    const decoyEc = await signer('ES384', 'k1'); // EC, other curve
    const decoyRsaNoAlg = await signer('PS256', 'k1', { alg: undefined }); // RSA, no alg
    const decoyRs256 = await signer('PS256', 'k1', { alg: 'RS256' });
    const encKey = { ...(await signer('PS256', 'k1')).jwk, use: 'enc', alg: 'RSA-OAEP-256' };
    server.answer = { keys: [decoyEc.jwk, decoyRsaNoAlg.jwk, decoyRs256.jwk, encKey, es.jwk, ps.jwk] };
    const c = cache();
    assert.equal((await verifyJws(await token(es), c, policy)).header.alg, 'ES256');
    assert.equal((await verifyJws(await token(ps), c, policy)).header.alg, 'PS256');
    assert.equal((await verifyJws(await token(decoyEc), c, policy)).header.alg, 'ES384');
    assert.equal(server.hits, 1);
  });

  it('selects keys without alg by kty and crv', async () => {
    const rsa = await signer('PS256', 'n', { alg: undefined });
    const p256 = await signer('ES256', 'n', { alg: undefined });
    const p384 = await signer('ES384', 'n', { alg: undefined });
    server.answer = { keys: [rsa.jwk, p256.jwk, p384.jwk] };
    const c = cache();
    assert.equal((await verifyJws(await token(rsa, 'PS256', 'n'), c, policy)).header.alg, 'PS256');
    assert.equal((await verifyJws(await token(p256, 'ES256', 'n'), c, policy)).header.alg, 'ES256');
    assert.equal((await verifyJws(await token(p384, 'ES384', 'n'), c, policy)).header.alg, 'ES384');
  });

  it('never uses a key with another alg, even of the right type (RFC 8725 §3.1)', async () => {
    const rs256Only = await signer('PS256', 'r', { alg: 'RS256' });
    server.answer = { keys: [rs256Only.jwk] };
    await rejectsWith(verifyJws(await token(rs256Only, 'PS256', 'r'), cache(), policy), 'kid_unknown');
  });

  it('refuses when two keys fit equally well', async () => {
    const a = await signer('PS256', 'dup', { alg: undefined });
    const b = await signer('PS256', 'dup', { alg: undefined });
    server.answer = { keys: [a.jwk, b.jwk] };
    await rejectsWith(verifyJws(await token(a, 'PS256', 'dup'), cache(), policy), 'kid_ambiguous');
  });

  it('refuses a header without kid, and an alg it cannot map to a key type', async () => {
    const c = cache();
    await rejectsWith(c.resolve({ alg: 'ES256' }), 'kid_missing');
    await rejectsWith(c.resolve({ alg: 'HS256', kid: 'k1' }), 'alg');
    assert.equal(server.hits, 0);
  });

  it('exposes only public keys, frozen', async () => {
    const c = cache();
    await c.refresh();
    const keys = c.keys();
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.kid, 'k1');
    assert.equal((keys[0] as { d?: string }).d, undefined);
    assert.ok(Object.isFrozen(keys) && Object.isFrozen(keys[0]));
  });
});

describe('JwksCache: unknown kid and rollover', () => {
  it('refreshes exactly once for an unknown kid, then refuses; rate-limited afterwards', async () => {
    let now = 1_000_000;
    const c = cache({ clock: () => now, unknownKidRefreshIntervalMs: 60_000 });
    await c.refresh();
    assert.equal(server.hits, 1);
    now += 61_000;
    await rejectsWith(c.resolve({ alg: 'ES256', kid: 'nope' }), 'kid_unknown');
    assert.equal(server.hits, 2, 'one refresh for the unknown kid');
    await rejectsWith(c.resolve({ alg: 'ES256', kid: 'nope-2' }), 'kid_unknown');
    now += 30_000;
    await rejectsWith(c.resolve({ alg: 'ES256', kid: 'nope-3' }), 'kid_unknown');
    assert.equal(server.hits, 2, 'no further fetch within the interval');
    now += 31_000;
    await rejectsWith(c.resolve({ alg: 'ES256', kid: 'nope-4' }), 'kid_unknown');
    assert.equal(server.hits, 3, 'allowed again after the interval');
  });

  it('shares one refresh between concurrent callers (single-flight)', async () => {
    let now = 1_000_000;
    const c = cache({ clock: () => now });
    await c.refresh();
    now += 120_000;
    const rolled = await signer('ES256', 'k-rolled');
    server.answer = { keys: [es.jwk, rolled.jwk] };
    server.delayMs = 50;
    const tokens = await Promise.all(Array.from({ length: 20 }, () => token(rolled)));
    // Every caller waits for the one refresh and then finds the new key.
    await Promise.all(tokens.map((t) => verifyJws(t, c, policy)));
    assert.equal(server.hits, 2);
    const ghosts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => c.resolve({ alg: 'ES256', kid: `ghost-${i}` })),
    );
    assert.ok(ghosts.every((r) => r.status === 'rejected'));
    assert.equal(server.hits, 2, 'rate-limited right after the refresh');
  });

  it('refresh() itself is single-flight', async () => {
    server.delayMs = 50;
    const c = cache();
    assert.deepEqual(await Promise.all([c.refresh(), c.refresh(), c.refresh()]), [true, true, true]);
    assert.equal(server.hits, 1);
  });

  it('finds a rolled-over key after one refresh', async () => {
    let now = 1_000_000;
    const events = recorder();
    const c = cache({ clock: () => now, events });
    await c.refresh();
    const next = await signer('ES256', 'k2');
    server.answer = { keys: [es.jwk, next.jwk] };
    now += 61_000;
    await verifyJws(await token(next), c, policy);
    assert.equal(server.hits, 2);
    assert.equal(events.ok, 2);
    assert.deepEqual(
      c.keys().map((k) => k.kid),
      ['k1', 'k2'],
    );
  });

  it('fetches on first use, and concurrent first uses share the fetch', async () => {
    const c = cache();
    server.delayMs = 30;
    await Promise.all(Array.from({ length: 5 }, async () => verifyJws(await token(es), c, policy)));
    assert.equal(server.hits, 1);
  });
});

describe('JwksCache: IdP trouble keeps stale keys', () => {
  it('serves stale keys when the refresh fails, and reports it', async () => {
    let now = 1_000_000;
    const events = recorder();
    const c = cache({ clock: () => now, events, ttlMs: 10_000 });
    assert.equal(await c.refresh(), true);
    for (const failure of [
      () => {
        server.status = 500;
      },
      () => {
        server.answer = 'not json';
      },
      () => {
        server.answer = { keys: [{ ...es.jwk, d: 'secret' }] };
      },
    ]) {
      failure();
      now += 120_000;
      assert.equal(await c.refresh(), false);
      await verifyJws(await token(es), c, policy);
      server.status = 200;
    }
    assert.equal(events.failed, 3);
    assert.equal(events.ok, 1);
    assert.equal(c.ageSeconds(), 360);
  });

  it('serves stale keys past the TTL and refreshes behind the request', async () => {
    let now = 1_000_000;
    const c = cache({ clock: () => now, ttlMs: 10_000 });
    await c.refresh();
    now += 11_000;
    await server.close();
    // The IdP is gone: the read must not wait for it.
    await verifyJws(await token(es), c, policy);
    server = await startJwksServer();
  });

  it('refreshes in the background when stale', async () => {
    let now = 1_000_000;
    const c = cache({ clock: () => now, ttlMs: 10_000 });
    await c.refresh();
    now += 11_000;
    await verifyJws(await token(es), c, policy);
    await eventually(() => server.hits >= 2 && c.ageSeconds() === 0);
    assert.equal(server.hits, 2);
    assert.equal(c.ageSeconds(), 0);
  });

  it('with no keys at all, an outage surfaces as BFF_IDP_UNAVAILABLE / BFF_IDP_ERROR', async () => {
    server.status = 503;
    await assert.rejects(cache().resolve({ alg: 'ES256', kid: 'k1' }), (err: unknown) => {
      assert.ok(err instanceof BffError);
      assert.equal(err.code, 'BFF_IDP_UNAVAILABLE');
      return true;
    });
    server.status = 404;
    await assert.rejects(cache().resolve({ alg: 'ES256', kid: 'k1' }), (err: unknown) => {
      assert.ok(err instanceof BffError);
      assert.equal(err.code, 'BFF_IDP_ERROR');
      return true;
    });
    server.status = 200;
    server.answer = { nokeys: true };
    await assert.rejects(cache().resolve({ alg: 'ES256', kid: 'k1' }), (err: unknown) => {
      assert.ok(err instanceof BffError);
      assert.equal(err.code, 'BFF_IDP_ERROR');
      assert.equal(err.reason, 'jwks_invalid');
      return true;
    });
  });

  it('bounds a hanging IdP by timeoutMs', async () => {
    server.answer = 'hang';
    const events = recorder();
    const c = cache({ timeoutMs: 150, events });
    const started = Date.now();
    await assert.rejects(c.resolve({ alg: 'ES256', kid: 'k1' }), (err: unknown) => {
      assert.ok(err instanceof BffError);
      assert.equal(err.code, 'BFF_IDP_UNAVAILABLE');
      return true;
    });
    assert.ok(Date.now() - started < 1_500);
    assert.equal(events.failed, 1);
  });

  it('does not follow redirects', async () => {
    validJwks = { keys: [es.jwk] };
    server.answer = 'redirect';
    assert.equal(await cache().refresh(), false);
  });

  it('refuses a second fetch within 1 s while it has never succeeded', async () => {
    let now = 1_000_000;
    server.status = 500;
    const c = cache({ clock: () => now });
    await assert.rejects(c.resolve({ alg: 'ES256', kid: 'k1' }), BffError);
    await assert.rejects(c.resolve({ alg: 'ES256', kid: 'k1' }), BffError);
    assert.equal(server.hits, 1);
    now += 1_000;
    server.status = 200;
    assert.ok(await c.resolve({ alg: 'ES256', kid: 'k1' }));
    assert.equal(server.hits, 2);
  });
});

describe('JwksCache: document validation', () => {
  it('refuses documents that are not { keys: [...] }', () => {
    for (const body of [null, [], 'x', {}, { keys: {} }, { keys: [null] }, { keys: ['x'] }]) {
      assert.throws(() => parseJwks(body), Error, JSON.stringify(body));
    }
  });

  it('refuses private or symmetric key material', () => {
    assert.throws(() => parseJwks({ keys: [{ ...es.jwk, d: 'AAAA' }] }), /secret/);
    assert.throws(() => parseJwks({ keys: [es.jwk, { kty: 'oct', kid: 'h', k: 'AAAA' }] }), /secret/);
  });

  it('caps the number of keys', () => {
    const many = Array.from({ length: 101 }, (_, i) => ({ ...es.jwk, kid: `k${i}` }));
    assert.throws(() => parseJwks({ keys: many }), /more than 100/);
    assert.equal(parseJwks({ keys: many.slice(0, 100) }).length, 100);
  });

  it('drops RSA keys under 2048 bits, enc keys and unknown key types', async () => {
    // jose refuses to generate one, so node:crypto makes the weak key.
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weak = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak', alg: 'PS256' };
    const keys = parseJwks({
      keys: [weak, { ...es.jwk, kid: 'e', use: 'enc' }, { kty: 'XYZ', kid: 'x' }, es.jwk, ps.jwk],
    });
    assert.deepEqual(
      keys.map((k) => `${k.kid}/${k.kty}`),
      ['k1/EC', 'k1/RSA'],
    );
    server.answer = { keys: [weak, es.jwk] };
    await rejectsWith(cache().resolve({ alg: 'PS256', kid: 'weak' }), 'kid_unknown');
  });

  it('refuses an oversized document', async () => {
    server.answer = { keys: [es.jwk], padding: 'x'.repeat(300_000) };
    assert.equal(await cache().refresh(), false);
  });

  it('refuses a document with no usable signing key (keeps the previous keys)', async () => {
    const c = cache();
    await c.refresh();
    server.answer = { keys: [{ ...es.jwk, use: 'enc' }] };
    assert.equal(await c.refresh(), false);
    assert.equal(c.keys().length, 1);
  });
});

describe('JwksCache: background refresh', () => {
  it('start() fetches at once and again before the TTL; stop() ends it', async () => {
    const c = cache({ ttlMs: 100 });
    assert.equal(c.ageSeconds(), Number.POSITIVE_INFINITY);
    c.start();
    c.start(); // idempotent
    // Three fetches take ~200 ms; the bound only absorbs a loaded machine's scheduling delays.
    await eventually(() => server.hits >= 3);
    c.stop();
    const hits = server.hits;
    assert.ok(hits >= 3, `expected >= 3 fetches, got ${hits}`);
    assert.ok(c.ageSeconds() < 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(server.hits, hits, 'no fetch after stop()');
  });

  it('retries sooner after a failed background refresh', async () => {
    server.status = 500;
    const events = recorder();
    const c = cache({ ttlMs: 10_000, unknownKidRefreshIntervalMs: 50, events });
    c.start();
    // Within 5 s, well inside the 10 s TTL: only the sooner retry can make the second attempt.
    await eventually(() => events.failed >= 2);
    c.stop();
    assert.ok(events.failed >= 2, `expected >= 2 failures, got ${events.failed}`);
  });
});
