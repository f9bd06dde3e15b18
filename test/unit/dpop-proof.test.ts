/**
 * DPoP proofs signed with node:crypto (RFC 9449 §4.2): every alg we can produce verifies with jose
 * against the jwk embedded in its header, carries exactly the claims of the request, and never
 * leaks the private key into the header.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { type DpopAlg, DpopKey, generateDpopKey } from '../../src/dpop/client.js';

const ALGS: DpopAlg[] = ['ES256', 'PS256', 'EdDSA'];

describe('DPoP proofs signed with node:crypto', () => {
  for (const alg of ALGS) {
    it(`${alg}: verifies with jose, typ dpop+jwt, public jwk only, request claims`, async () => {
      const stored = await generateDpopKey(alg);
      const key = await DpopKey.import(stored);
      const token = 'at-' + 'x'.repeat(40);
      const proof = await key.proof({
        htm: 'POST',
        htu: new URL('https://api.example/v1/things?q=1#frag'),
        nonce: 'n-123',
        accessToken: token,
      });
      assert.equal(proof.split('.').length, 3);
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: [alg],
      });
      assert.equal(protectedHeader.alg, alg);
      const jwk = protectedHeader.jwk ?? {};
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi'])
        assert.equal(secret in jwk, false, `no ${secret}`);
      assert.equal(await calculateJwkThumbprint(jwk, 'sha256'), stored.jkt, 'header jwk is the session key');
      assert.equal(payload.htm, 'POST');
      assert.equal(payload.htu, 'https://api.example/v1/things', 'htu without query and fragment');
      assert.equal(payload.nonce, 'n-123');
      assert.equal(payload.ath, createHash('sha256').update(token).digest('base64url'));
      assert.ok(typeof payload.iat === 'number' && Math.abs(payload.iat - Date.now() / 1000) < 5);
      assert.match(String(payload.jti), /^[A-Za-z0-9_-]{22}$/);
    });
  }

  it('a new jti for every proof, and a tampered proof fails verification', async () => {
    const key = await DpopKey.import(await generateDpopKey('ES256'));
    const a = await key.proof({ htm: 'GET', htu: new URL('https://api.example/') });
    const b = await key.proof({ htm: 'GET', htu: new URL('https://api.example/') });
    const jti = async (p: string) => (await jwtVerify(p, EmbeddedJWK)).payload.jti;
    assert.notEqual(await jti(a), await jti(b));
    const [h, p, s] = a.split('.') as [string, string, string];
    const forged = Buffer.from(p, 'base64url').toString().replace('"GET"', '"PUT"');
    await assert.rejects(jwtVerify(`${h}.${Buffer.from(forged).toString('base64url')}.${s}`, EmbeddedJWK));
    assert.equal(decodeProtectedHeader(a).typ, 'dpop+jwt');
  });
});
