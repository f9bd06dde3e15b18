/**
 * Attack: DPoP jti replay-cache flooding (security review, finding 1).
 *
 * A service route (`serviceAudience`) used to record a proof's `jti` as soon as the proof's
 * signature checked out, before the access token and its `cnf.jkt` binding were verified. The
 * signature is checked with the key the proof itself carries, so anyone could write replay entries
 * at request rate: with Redis one key per request, and with the in-memory store junk entries
 * evicted genuine ones (eviction was shared with sessions, locks and nonces), after which a proof
 * refused as a replay was accepted again.
 *
 * Fixed when: 10,000 junk proofs (a forged token, and a genuine token stolen by a caller with a key
 * of its own) leave the replay store's size unchanged, and a genuine replay is still refused.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { freePort, makeClientKey, type RunningBff, startBff } from '../helpers/bff-harness.js';
import type { HostileIdp } from '../helpers/hostile-idp.js';
import { startHostileIdpFor } from '../helpers/stack.js';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/upstream.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const AUDIENCE = 'urn:test:orders';
const JUNK = 10_000;
/** Smaller than the flood: before the fix the genuine replay entry was evicted by it. */
const MAX_ENTRIES = 2_000;

describe('regression: DPoP jti replay-cache flooding', () => {
  let idp: HostileIdp;
  let bff: RunningBff;
  let upstream: RecordingUpstream;
  let store: MemoryStore;
  // A frozen clock (for the BFF, its store and every proof) so the flood's duration on a loaded
  // machine cannot move a proof out of its iat window: the replay verdict is the only variable.
  const nowMs = Date.now();
  const clock = () => nowMs;
  const iat = Math.floor(nowMs / 1000);

  before(async () => {
    const port = await freePort();
    const key = await makeClientKey('ES256');
    idp = await startHostileIdpFor('bff-flood', port, key);
    upstream = await startRecordingUpstream();
    store = new MemoryStore({ maxEntries: MAX_ENTRIES, clock, sweepIntervalMs: 0 });
    bff = await startBff({
      port,
      issuer: idp.issuer,
      clientId: 'bff-flood',
      key,
      store,
      clock,
      routes: { orders: { url: upstream.url, serviceAudience: AUDIENCE } },
    });
  });
  after(async () => {
    await bff?.close();
    await store?.close();
    await upstream?.close();
    await idp?.close();
  });

  async function caller() {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
  }

  const proofFor = (token: string, key: CryptoKey, jwk: JWK, htu: string) =>
    new SignJWT({
      htm: 'GET',
      htu,
      jti: randomUUID(),
      iat,
      ath: createHash('sha256').update(token).digest('base64url'),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(key);

  const inject = (path: string, token: string, proof: string) =>
    bff.app.inject({ method: 'GET', url: path, headers: { authorization: `DPoP ${token}`, dpop: proof } });

  it('10,000 junk proofs write nothing, and a genuine replay is still refused', async () => {
    const path = '/api/orders/list';
    const htu = `${bff.url}${path}`;
    const genuine = await caller();
    const token = await idp.signJwt(
      {
        iss: idp.issuer,
        aud: AUDIENCE,
        sub: 'svc',
        iat,
        exp: iat + 600,
        jti: randomUUID(),
        cnf: { jkt: genuine.jkt },
      },
      { header: { typ: 'at+jwt' } },
    );
    const proof = await proofFor(token, genuine.privateKey, genuine.jwk, htu);
    const first = await inject(path, token, proof);
    assert.equal(first.statusCode, 200, first.body);

    const sizeBefore = store.sizeOf('replay');
    assert.equal(sizeBefore, 1, 'the genuine proof is recorded');

    // Junk: a token the IdP never issued, and the genuine token with the attacker's own key.
    const attacker = await caller();
    const forged = await idp.signJwt(
      { iss: idp.issuer, aud: AUDIENCE, sub: 'x', iat, exp: iat + 600, cnf: { jkt: attacker.jkt } },
      { header: { typ: 'at+jwt' }, unpublishedKey: true },
    );
    const deadline = Date.now() + 300_000;
    const statuses = new Map<number, number>();
    const batch = 50;
    for (let sent = 0; sent < JUNK && Date.now() < deadline; sent += batch) {
      const results = await Promise.all(
        Array.from({ length: batch }, async (_, i) => {
          const junkToken = (sent + i) % 2 === 0 ? forged : token;
          return inject(path, junkToken, await proofFor(junkToken, attacker.privateKey, attacker.jwk, htu));
        }),
      );
      for (const r of results) statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
    }
    assert.deepEqual([...statuses], [[401, JUNK]], 'every junk proof refused (and the flood finished)');
    assert.equal(store.sizeOf('replay'), sizeBefore, 'no junk proof reached the replay cache');
    assert.equal(store.size, sizeBefore, 'nor anything else in the store');

    const replay = await inject(path, token, proof);
    assert.equal(replay.statusCode, 401, 'the genuine proof, replayed, is still refused');
    assert.match(String(replay.headers['www-authenticate']), /already used/);
    assert.equal(upstream.requests.length, 1, 'only the genuine first call reached the upstream');
  });
});
